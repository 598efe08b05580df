"""Runtime interfaces: how hyper-core spawns tasks, tells time and does I/O.

hyper-core never starts a task, sleeps, or touches a socket on its own. It
goes through three small interfaces, each with a working default built on
anyio:

* :class:`Executor` spawns background tasks; default :class:`TaskGroupExecutor`.
* :class:`Timer` reads the clock, sleeps, and makes :class:`Deadline` scopes;
  default :class:`AnyioTimer` (:func:`default_timer`). Tests use
  :class:`hyper_core.testing.FakeTimer`.
* :class:`IO` is the byte stream a connection runs over. Every anyio byte
  stream satisfies it without a wrapper; so does
  :func:`hyper_core.testing.memory_pipe`.
* :class:`SupportsReceiveWatch` is the optional IO capability of watching
  the read side with a callback (:class:`WatchableIO`: an IO that has it);
  :class:`ReceiveWatcher` gives it to any IO (:func:`as_watchable` picks).
* :class:`QuicConnection` (with :class:`QuicStream` and its halves) is what
  HTTP/3 runs over: a connection that opens and accepts streams. aioquic
  backs it in :mod:`hyper_core.quic`; :func:`hyper_core.testing.quic_pair`
  is the in-memory test double.
"""

from __future__ import annotations

from hyper_core.rt._executor import Executor, TaskGroupExecutor
from hyper_core.rt._io import (
    IO,
    SupportsFlush,
    SupportsSendMany,
    flush,
    receive_or_eof,
    send_all,
)
from hyper_core.rt._quic import (
    QuicConnection,
    QuicConnectionClosed,
    QuicReceiveStream,
    QuicSendStream,
    QuicStream,
    QuicStreamReset,
    is_unidirectional,
)
from hyper_core.rt._timer import AnyioTimer, Deadline, Timer, default_timer
from hyper_core.rt._watch import (
    ReceiveWatcher,
    SupportsReceiveWatch,
    WatchableIO,
    as_watchable,
    supports_receive_watch,
)

__all__ = [
    "IO",
    "AnyioTimer",
    "Deadline",
    "Executor",
    "QuicConnection",
    "QuicConnectionClosed",
    "QuicReceiveStream",
    "QuicSendStream",
    "QuicStream",
    "QuicStreamReset",
    "ReceiveWatcher",
    "SupportsFlush",
    "SupportsReceiveWatch",
    "SupportsSendMany",
    "TaskGroupExecutor",
    "Timer",
    "WatchableIO",
    "as_watchable",
    "default_timer",
    "flush",
    "is_unidirectional",
    "receive_or_eof",
    "send_all",
    "supports_receive_watch",
]
