"""Servers: the auto HTTP/1.1 + HTTP/2 connection, graceful shutdown, ``serve()``.

What belongs here: the public re-exports of ``hyper_util.server``.
:func:`serve` is the one-call server; :mod:`.conn.auto` and :mod:`.graceful`
are the pieces it is built from, for callers with their own accept loop.
"""

from __future__ import annotations

from hyper_util.server import conn
from hyper_util.server._access_log import ACCESS_LOGGER
from hyper_util.server._serve import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SHUTDOWN_TIMEOUT,
    SERVER_LOGGER,
    serve,
    startup_line,
)
from hyper_util.server.graceful import GracefulShutdown, Watched

__all__ = [
    "ACCESS_LOGGER",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "SERVER_LOGGER",
    "GracefulShutdown",
    "Watched",
    "conn",
    "serve",
    "startup_line",
]
