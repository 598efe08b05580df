"""Servers: the auto HTTP/1.1 + HTTP/2 connection, graceful shutdown, ``serve()``, workers.

What belongs here: the public re-exports of ``hyper_util.server``.
:func:`serve` is the one-call server; :mod:`.conn.auto` and :mod:`.graceful`
are the pieces it is built from, for callers with their own accept loop.
:func:`run_workers` runs a server in several processes on sockets bound once
(:func:`bind_sockets`; each worker turns them into a listener with
:func:`listen_on`), with ``--reload`` for development; HTTP/3 gives each
worker a UDP socket of its own (:func:`bind_udp_sockets`, :func:`split_sockets`).
"""

from __future__ import annotations

from hyper_util.server import conn
from hyper_util.server._access_log import ACCESS_LOGGER
from hyper_util.server._bind import bind_sockets, bind_udp_sockets, listen_on, split_sockets
from hyper_util.server._limits import limit_requests
from hyper_util.server._run import RELOAD_UNAVAILABLE, run_workers
from hyper_util.server._serve import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SHUTDOWN_TIMEOUT,
    SERVER_LOGGER,
    serve,
    startup_line,
)
from hyper_util.server._supervisor import (
    DEFAULT_STARTUP_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    Supervisor,
)
from hyper_util.server._worker import EXIT_STARTUP_FAILED, WorkerTarget, worker_ready
from hyper_util.server.graceful import GracefulShutdown, Watched

__all__ = [
    "ACCESS_LOGGER",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_STARTUP_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "EXIT_STARTUP_FAILED",
    "RELOAD_UNAVAILABLE",
    "SERVER_LOGGER",
    "GracefulShutdown",
    "Supervisor",
    "Watched",
    "WorkerTarget",
    "bind_sockets",
    "bind_udp_sockets",
    "conn",
    "limit_requests",
    "listen_on",
    "run_workers",
    "serve",
    "split_sockets",
    "startup_line",
    "worker_ready",
]
