"""A gunicorn worker class: gunicorn's process management, hyper's server.

What belongs here: :class:`HyperWorker` (asyncio, uvloop when installed)
and :class:`HyperTrioWorker`, for::

    gunicorn -k hyper_util.asgi.gunicorn.HyperWorker -w 4 main:app

Strategy: gunicorn binds the sockets, forks the workers and loads the
application (``module:app``); each worker then runs
:func:`hyper_util.asgi.serve` on the sockets it inherited, with gunicorn's
settings mapped onto serve's options (``keepalive``,
``graceful_timeout``, ``max_requests``, ``certfile``/``keyfile``). The
worker tells the arbiter it is alive every ``timeout / 2`` seconds and
stops when the arbiter goes away. SIGTERM and SIGINT (sent by gunicorn to
stop workers) are handled by ``serve`` itself: a graceful shutdown. gunicorn
is not a dependency of hyper-util: without it this module still imports,
and its classes are of no use.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, ClassVar, Final

import anyio

try:
    from gunicorn.workers.base import Worker  # type: ignore[import-untyped,unused-ignore]
except ImportError:  # pragma: no cover - gunicorn absent: importable, never used
    Worker = object

from ._lifespan import LifespanFailure
from ._serve import serve

#: gunicorn's ``Arbiter.WORKER_BOOT_ERROR``: the arbiter stops instead of
#: restarting a worker that exits with it.
WORKER_BOOT_ERROR: Final = 3

__all__ = ["WORKER_BOOT_ERROR", "HyperTrioWorker", "HyperWorker"]


class HyperWorker(Worker):  # type: ignore[misc]
    """Serve the ASGI application of a gunicorn worker on asyncio (uvloop when installed)."""

    #: The anyio backend and its options.
    backend: ClassVar[str] = "asyncio"
    backend_options: ClassVar[dict[str, Any]] = {}

    def init_signals(self) -> None:
        """Leave SIGINT/SIGTERM to ``serve`` (graceful shutdown); keep gunicorn's SIGUSR1."""
        # serve() installs its own SIGINT/SIGTERM handlers in the event loop;
        # gunicorn's (set in the parent before the fork) must not run first.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.siginterrupt(signal.SIGUSR1, False)

    def run(self) -> None:
        """Serve until gunicorn stops this worker."""
        options = dict(self.backend_options)
        if self.backend == "asyncio" and "use_uvloop" not in options:
            try:
                import uvloop  # noqa: F401

                options["use_uvloop"] = True
            except ImportError:
                pass
        try:
            anyio.run(self._serve, backend=self.backend, backend_options=options)
        except LifespanFailure as exc:
            self.log.error("%s", exc)
            sys.exit(WORKER_BOOT_ERROR)

    async def _serve(self) -> None:
        cfg = self.cfg
        tls = None
        if cfg.is_ssl:
            from hyper_tls import TlsAcceptor, server_ssl_context

            tls = TlsAcceptor(server_ssl_context(cfg.certfile, cfg.keyfile))
        stop = anyio.Event()
        failure: LifespanFailure | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._heartbeat, stop)
            try:
                await serve(
                    self.wsgi,
                    sockets=[listener.sock for listener in self.sockets],
                    tls=tls,
                    timeout_keep_alive=float(cfg.keepalive) or 5.0,
                    timeout_graceful_shutdown=float(cfg.graceful_timeout),
                    limit_max_requests=int(cfg.max_requests) or None,
                    access_log=bool(cfg.accesslog),
                    shutdown_event=stop,
                )
            except LifespanFailure as exc:
                failure = exc  # raised outside the task group, as itself
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _heartbeat(self, stop: anyio.Event) -> None:
        interval = max(self.timeout / 2, 0.5) if self.timeout else 1.0
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("parent changed, shutting down: %s", self)
                break
            await anyio.sleep(interval)
        stop.set()


class HyperTrioWorker(HyperWorker):
    """:class:`HyperWorker` on trio (``-k hyper_util.asgi.gunicorn.HyperTrioWorker``)."""

    backend: ClassVar[str] = "trio"
