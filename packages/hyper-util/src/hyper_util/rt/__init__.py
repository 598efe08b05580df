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

from importlib.util import find_spec
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
    from ._trio_stream import TrioSocketStream as TrioSocketStream
    from ._trio_stream import TrioStreamStatistics as TrioStreamStatistics


_TRIO_NAMES = ("TrioSocketStream", "TrioStreamStatistics")


def __getattr__(name: str) -> object:
    # The trio stream needs trio, an optional dependency (the ``trio``
    # extra): imported on first use, and absent from __all__ without trio.
    if name in _TRIO_NAMES:
        try:
            from . import _trio_stream
        except ImportError as exc:
            raise AttributeError(
                f"hyper_util.rt.{name} needs trio: pip install 'hyper-util[trio]'"
            ) from exc
        return getattr(_trio_stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
if find_spec("trio") is not None:
    __all__ += _TRIO_NAMES
