"""Runtime adapters: executor, timer, and fast IO for the running event loop.

hyper-core talks to the runtime through :mod:`hyper_core.rt` (``Executor``,
``Timer``, ``IO``). This package provides what a program plugs in:

* :class:`AnyioExecutor`: spawns into a task group that you own.
* :class:`AnyioTimer`: hyper-core's anyio timer, re-exported.
* IO: any anyio byte stream already is an ``IO``. On asyncio,
  :class:`AsyncioSocketStream` drives the socket with an asyncio transport and
  protocol directly, which is faster (see ``benchmarks/io_paths.py``).
  :func:`connect_tcp`, :func:`create_tcp_listener` and their Unix and
  wrap-a-socket siblings choose it on asyncio and anyio streams elsewhere
  (``fast=False`` forces anyio streams).
* :func:`run`: ``anyio.run`` on uvloop when it is installed (``loop="auto"``),
  else asyncio; :func:`loop_backend` names the backend for other entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyper_core.rt import AnyioTimer

from ._asyncio_stream import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_READ_HIGH_WATER,
    DEFAULT_WRITE_HIGH_WATER,
    AsyncioSocketStream,
    AsyncioStreamStatistics,
)
from ._backend import current_library
from ._connect import (
    DEFAULT_BACKLOG,
    DEFAULT_HAPPY_EYEBALLS_DELAY,
    connect_tcp,
    connect_unix,
    create_tcp_listener,
    create_unix_listener,
    wrap_connected_socket,
    wrap_socket_listener,
)
from ._executor import AnyioExecutor
from ._listener import AsyncioSocketListener, StreamListener, TrioSocketListener
from ._run import LOOPS, Loop, loop_backend, run

if TYPE_CHECKING:
    from ._trio_stream import TrioSocketStream, TrioStreamStatistics


def __getattr__(name: str) -> object:
    # The trio stream needs trio, an optional dependency: imported on use.
    if name in ("TrioSocketStream", "TrioStreamStatistics"):
        from . import _trio_stream

        return getattr(_trio_stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_HAPPY_EYEBALLS_DELAY",
    "DEFAULT_READ_HIGH_WATER",
    "DEFAULT_WRITE_HIGH_WATER",
    "LOOPS",
    "AnyioExecutor",
    "AnyioTimer",
    "AsyncioSocketListener",
    "AsyncioSocketStream",
    "AsyncioStreamStatistics",
    "Loop",
    "StreamListener",
    "TrioSocketListener",
    "TrioSocketStream",
    "TrioStreamStatistics",
    "connect_tcp",
    "connect_unix",
    "create_tcp_listener",
    "create_unix_listener",
    "current_library",
    "loop_backend",
    "run",
    "wrap_connected_socket",
    "wrap_socket_listener",
]
