"""``run_workers``: the supervisor, and with ``reload=True`` a file watcher that reloads it.

What belongs here: the one call a command line makes for ``--workers N``
and ``--reload``, and the ``--reload`` watcher.

Strategy: ``--reload`` is the supervisor of :mod:`._supervisor` in its
development mode (a worker that fails to start waits for the next change
instead of backing off), plus a thread that runs ``watchfiles.watch`` over
the watched folders (``.py`` files, minus caches, virtualenvs and VCS
folders: ``watchfiles.PythonFilter``) and calls
:meth:`~hyper_util.server.Supervisor.reload` on each batch of changes. So
a reload is a SIGHUP: the new worker imports the changed code and serves
before the old one is stopped, and if the new code does not start, the old
worker keeps serving while the traceback is on the terminal. watchfiles
(Rust, inotify on Linux) is an optional dependency, ``hyper-util[reload]``:
reloading is for development only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Final

from hyper_util.server._serve import SERVER_LOGGER
from hyper_util.server._supervisor import (
    DEFAULT_STARTUP_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    Supervisor,
    WorkerTarget,
)

__all__ = ["RELOAD_UNAVAILABLE", "run_workers"]

#: The message of the RuntimeError raised when ``reload=True`` finds no watchfiles.
RELOAD_UNAVAILABLE: Final = (
    "--reload needs watchfiles, which is not installed: pip install 'hyper-util[reload]'"
)
# Changed paths named in the log line of one reload; more are counted.
_NAMED_CHANGES = 3

_log = logging.getLogger(SERVER_LOGGER)


def run_workers(
    target: WorkerTarget,
    sockets: Sequence[socket.socket],
    *,
    workers: int = 1,
    reload: bool = False,
    reload_dirs: Sequence[str | os.PathLike[str]] = (),
    stop_timeout: float | None = DEFAULT_STOP_TIMEOUT,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    handle_signals: bool = True,
    worker_sockets: Sequence[socket.socket] = (),
) -> int:
    """Run ``target`` in ``workers`` processes sharing ``sockets``, until stopped.

    This is what ``--workers N`` and ``--reload`` do; see
    :class:`~hyper_util.server.Supervisor` for the signals and the restart
    policy. The target runs in fresh (spawned) processes, so a script that
    calls this needs the usual ``if __name__ == "__main__":`` guard.

    Example, the sockets bound once and each worker serving them::

        def work(sockets: list[socket.socket]) -> None:
            async def main() -> None:
                async with anyio.create_task_group() as tg:
                    await tg.start(partial(serve, app, listener=await listen_on(sockets)))
                    worker_ready()

            anyio.run(main)

        if __name__ == "__main__":
            sys.exit(run_workers(work, bind_sockets("127.0.0.1", 8000), workers=4))

    Args:
        target: What each worker runs, with the sockets (see
            :data:`~hyper_util.server.WorkerTarget`).
        sockets: Bound, listening sockets (:func:`~hyper_util.server.bind_sockets`);
            closed when the shutdown begins.
        workers: How many worker processes.
        reload: Development only: replace the workers whenever a ``.py``
            file under ``reload_dirs`` changes (needs watchfiles:
            ``hyper-util[reload]``); a worker that fails to start waits for
            the next change.
        reload_dirs: The folders to watch (default: the current directory).
        stop_timeout: Seconds a worker gets after SIGTERM before SIGKILL.
        startup_timeout: Seconds a new worker gets to call
            :func:`~hyper_util.server.worker_ready`.
        handle_signals: Stop on SIGTERM/SIGINT, replace workers on SIGHUP.
        worker_sockets: One socket per worker, after ``sockets`` (HTTP/3's
            UDP sockets: :func:`~hyper_util.server.bind_udp_sockets`).

    Returns:
        The exit status: 0 after SIGTERM or SIGINT, 3 if a worker could not
        start (it exited with ``EXIT_STARTUP_FAILED``).

    Raises:
        RuntimeError: ``reload`` without watchfiles (``RELOAD_UNAVAILABLE``).
        ValueError: An option is out of range, or a ``reload_dirs`` entry is
            not a directory.
        TypeError: ``target`` cannot be pickled.
    """
    dirs = [os.path.abspath(d) for d in reload_dirs] or [os.getcwd()]
    if reload:
        try:
            import watchfiles
        except ImportError:
            raise RuntimeError(RELOAD_UNAVAILABLE) from None
        for folder in dirs:
            if not os.path.isdir(folder):
                raise ValueError(f"--reload-dir {folder}: not a directory")
    supervisor = Supervisor(
        target,
        sockets,
        workers=workers,
        stop_timeout=stop_timeout,
        startup_timeout=startup_timeout,
        wait_for_changes=reload,
        handle_signals=handle_signals,
        worker_sockets=worker_sockets,
    )
    if not reload:
        return supervisor.run()
    stop = threading.Event()

    def watch() -> None:
        for changes in watchfiles.watch(
            *dirs,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=stop,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            for _, path in changes:
                _forget_bytecode(path)
            paths = sorted({os.path.relpath(path) for _, path in changes})
            named = ", ".join(paths[:_NAMED_CHANGES])
            more = len(paths) - _NAMED_CHANGES
            _log.warning("%s%s changed; reloading", named, f" and {more} more" if more > 0 else "")
            supervisor.reload()

    watcher = threading.Thread(target=watch, name="hyper-util-reload", daemon=True)
    watcher.start()
    _log.info("reloading on changes to .py files under %s", ", ".join(dirs))
    try:
        return supervisor.run()
    finally:
        stop.set()
        watcher.join(timeout=5)


def _forget_bytecode(path: str) -> None:
    """Remove ``path``'s cached bytecode, so the next worker compiles the edit.

    A .pyc is trusted while the source's size and mtime (whole seconds) are
    unchanged, which an edit of the same length within a second keeps: the
    new worker would run the old code.
    """
    if not path.endswith(".py"):
        return
    for optimization in ("", 1, 2):
        with contextlib.suppress(OSError, ValueError):
            os.remove(importlib.util.cache_from_source(path, optimization=optimization))
