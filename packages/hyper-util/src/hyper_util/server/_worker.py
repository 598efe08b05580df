"""The worker side of :mod:`._supervisor`: the process bootstrap and ``worker_ready``.

What belongs here: what runs inside a worker process before and around its
target: SIGINT blocked (the supervisor owns Ctrl-C), a thread that sends the
worker SIGTERM when the supervisor dies, the target called with the
inherited sockets and its result made the exit status, and
:func:`worker_ready`, the one message a worker sends its supervisor.

Strategy: the supervisor passes the write end of a pipe with the target;
:func:`worker_ready` writes one byte on it and closes it, so the supervisor
sees "ready" as data and "ended without a word" as end of file. Outside a
supervised worker the pipe is ``None`` and the call does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Final

from hyper_util.server._serve import SERVER_LOGGER

__all__ = ["EXIT_STARTUP_FAILED", "WorkerTarget", "worker_main", "worker_ready"]

#: The exit status with which a worker says "I cannot start; neither will a
#: replacement" (the app does not import, its startup failed). uvicorn's
#: ``STARTUP_FAILURE`` and gunicorn's ``WORKER_BOOT_ERROR`` use 3 too.
EXIT_STARTUP_FAILED: Final = 3

#: What each worker runs: called with the inherited listening sockets, in a
#: fresh process. It serves until SIGTERM, then returns (an int return value
#: is the exit status). It must be picklable: a module-level function, or a
#: ``functools.partial`` of one with picklable arguments.
WorkerTarget = Callable[[list[socket.socket]], object]

_log = logging.getLogger(SERVER_LOGGER)

# In a worker: the pipe to the supervisor, until worker_ready() is called.
_ready_pipe: multiprocessing.connection.Connection | None = None


def worker_ready() -> None:
    """Tell the supervisor that this worker serves (call it once startup is done).

    The supervisor waits for it before retiring the worker this one replaces
    (SIGHUP, ``--reload``), and counts a worker that ends before calling it
    as a failed start. Outside a supervised worker, and after the first
    call, it does nothing.
    """
    global _ready_pipe
    pipe, _ready_pipe = _ready_pipe, None
    if pipe is not None:
        with contextlib.suppress(OSError), pipe:
            pipe.send_bytes(b"r")


def worker_main(
    target: WorkerTarget,
    sockets: list[socket.socket],
    ready_pipe: multiprocessing.connection.Connection,
) -> None:
    """The worker process: run ``target`` on the sockets, exit with its status."""
    global _ready_pipe
    _ready_pipe = ready_pipe
    _block_sigint()
    threading.Thread(target=_stop_with_parent, name="hyper-util-parent-watch", daemon=True).start()
    try:
        status = target(sockets)
    except Exception:
        _log.exception("worker %d failed", os.getpid())
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)


def _stop_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - always set in a spawned child
        return
    multiprocessing.connection.wait([parent.sentinel])
    _log.warning("worker %d: the supervisor is gone; shutting down", os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)


def _block_sigint() -> None:
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
