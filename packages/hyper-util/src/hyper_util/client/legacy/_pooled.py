"""The pool's records: one connection, one waiting request, one checkout decision.

What belongs here: :data:`PoolKey` (an origin), :class:`PooledConn` (what
the pool knows of one connection), :class:`Waiter` (a request waiting for a
connection or a slot), and :class:`Checkout` with :class:`CheckoutKind`
(what :meth:`~._pool.Pool.checkout` decided). The client, the request
rules and the connecting code use them without the pool's logic, which is
in ``_pool``.

Strategy: plain records with ``__slots__`` that the pool and the client
read and write directly on every request (no properties on the hot fields).
Nothing here awaits or does I/O; a connection's sender is only queried.
"""

from __future__ import annotations

import enum
from typing import TypeAlias, final

import anyio

from hyper_core.client.conn import http1, http2
from hyper_util.client.legacy._wrappers import TimedWriteIO
from hyper_util.client.legacy.connect._http import Connected

__all__ = ["Checkout", "CheckoutKind", "PoolKey", "PooledConn", "Sender", "Waiter"]

#: ``(scheme, host, port)``: connections are shared only within one origin.
PoolKey: TypeAlias = tuple[str, str, int]

Sender: TypeAlias = http1.SendRequest | http2.SendRequest


@final
class PooledConn:
    """The pool's record of one connection (no I/O; the sender is only queried)."""

    __slots__ = (
        "connected",
        "counted",
        "http2",
        "idle_since",
        "in_flight",
        "key",
        "pooled",
        "requests",
        "sender",
        "write_io",
    )

    def __init__(
        self,
        key: PoolKey,
        sender: Sender,
        connected: Connected,
        *,
        h2: bool,
        write_io: TimedWriteIO | None = None,
    ) -> None:
        self.key = key
        self.sender = sender
        self.connected = connected
        self.http2 = h2
        self.idle_since = 0.0
        self.in_flight = 0  # requests using it now (HTTP/1: 0 or 1)
        self.requests = 0  # requests it has carried, for statistics
        self.counted = True  # counts against max_connections (_pool rule 2)
        self.pooled = False  # in the idle list (HTTP/1) or the shared list (HTTP/2)
        self.write_io = write_io  # the client sets its write timeout per exchange

    def is_closed(self) -> bool:
        """Whether the connection can never carry another request."""
        return self.sender.is_closed()

    def has_tunnels(self) -> bool:
        """HTTP/2: whether streams stay open with no request counted (CONNECT tunnels).

        A tunnel's response came with an empty body, so its request gave its
        slot back at once; the stream (a WebSocket, say) lives on.
        """
        sender = self.sender
        return isinstance(sender, http2.SendRequest) and sender.active_streams > self.in_flight

    @property
    def poisoned(self) -> bool:
        """Marked unusable (``Connected.poison()``): never handed out again."""
        return self.connected.is_poisoned

    def has_free_slot(self) -> bool:
        """HTTP/2: whether a new request would get a stream without waiting."""
        sender = self.sender
        assert isinstance(sender, http2.SendRequest)
        return self.in_flight < sender.current_max_send_streams

    def __repr__(self) -> str:
        version = "h2" if self.http2 else "h1"
        return f"<PooledConn {version} {self.key} in_flight={self.in_flight}>"


class CheckoutKind(enum.Enum):
    """What :meth:`Pool.checkout` decided."""

    REUSE = "reuse"  # use ``conn`` now
    CONNECT = "connect"  # open a new connection (a slot is reserved)
    WAIT = "wait"  # wait on ``waiter``, then look at its result


@final
class Waiter:
    """A request waiting for a connection or a slot; the pool fills it in."""

    __slots__ = ("event", "granted_connect", "h2_only", "key", "result")

    def __init__(self, key: PoolKey, *, h2_only: bool) -> None:
        self.key = key
        self.h2_only = h2_only  # waits for an HTTP/2 connection being opened
        self.event = anyio.Event()
        self.result: PooledConn | None = None
        self.granted_connect = False

    @property
    def served(self) -> bool:
        """Whether the pool gave this waiter a connection or a connect slot."""
        return self.result is not None or self.granted_connect


@final
class Checkout:
    """The decision of :meth:`Pool.checkout` and what to close because of it."""

    __slots__ = ("conn", "kind", "to_close", "waiter")

    def __init__(
        self,
        kind: CheckoutKind,
        to_close: list[PooledConn],
        conn: PooledConn | None = None,
        waiter: Waiter | None = None,
    ) -> None:
        self.kind = kind
        self.to_close = to_close
        self.conn = conn
        self.waiter = waiter
