"""The plain values of a WebSocket connection: its options and how it closed.

What belongs here: :class:`WebSocketOptions` (the limits and keep-alive a
:class:`~hyper_util.ws.WebSocketConnection` is made with) with its defaults,
and :class:`Closed` (what the connection ended with). Both roles use them
(the ASGI server, the client), and the command line builds the options;
nothing here does I/O.

Strategy: plain classes with ``__slots__``, checked once when made: the
connection reads their fields on its hot path, so no property or lookup
stands between it and a value.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_QUEUE",
    "Closed",
    "WebSocketOptions",
]

#: Largest message accepted, in bytes (16 MiB: uvicorn's ``--ws-max-size``
#: default; larger messages close the connection with 1009).
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
#: Whole messages queued for an application that does not read (uvicorn's
#: ``ws_max_queue`` default of 32 messages; memory is at most this many times
#: the message size limit).
DEFAULT_MAX_QUEUE: Final = 32
#: Seconds :meth:`WebSocketConnection.close` waits for the peer's answer.
DEFAULT_CLOSE_TIMEOUT: Final = 5.0


class WebSocketOptions:
    """Limits and keep-alive of WebSocket connections.

    Args:
        max_message_size: Largest message accepted, in bytes (default 16 MiB);
            a larger one closes the connection with 1009 (message too big).
        max_queue: Whole received messages queued before reading stops
            (default 32).
        ping_interval: Seconds between keep-alive pings; ``None`` (default
            20 s as in uvicorn) disables them.
        ping_timeout: Seconds a ping may go unanswered before the
            connection is closed with 1011 (default 20 s).
        per_message_deflate: Accept ``permessage-deflate`` (RFC 7692) when
            the client offers it (default on).
        close_timeout: Seconds :meth:`WebSocketConnection.close` waits for
            the peer's closing answer before it drops the connection
            (default 5 s; ``None``: no limit).

    Raises:
        ValueError: an option is out of range.
    """

    __slots__ = (
        "close_timeout",
        "max_message_size",
        "max_queue",
        "per_message_deflate",
        "ping_interval",
        "ping_timeout",
    )

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        per_message_deflate: bool = True,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be at least 1 byte")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if ping_interval is not None and not ping_interval > 0:
            raise ValueError("ping_interval must be a positive number of seconds or None")
        if ping_timeout is not None and not ping_timeout > 0:
            raise ValueError("ping_timeout must be a positive number of seconds or None")
        if close_timeout is not None and not close_timeout > 0:
            raise ValueError("close_timeout must be a positive number of seconds or None")
        self.max_message_size = max_message_size
        self.max_queue = max_queue
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.per_message_deflate = per_message_deflate
        self.close_timeout = close_timeout


class Closed:
    """The connection closed: the peer's (or our) close code and reason.

    Attributes:
        code: The close code (1006 when the connection was lost without a
            closing handshake).
        reason: The close reason.
        by_peer: The peer started the closing handshake with this code; false
            when this side did (including for a protocol violation this side
            detected, a message over the size limit, a keep-alive timeout) or
            when the connection was simply lost.
    """

    __slots__ = ("by_peer", "code", "reason")

    def __init__(self, code: int, reason: str = "", *, by_peer: bool = False) -> None:
        self.code = code
        self.reason = reason
        self.by_peer = by_peer

    def __repr__(self) -> str:
        return f"Closed(code={self.code}, reason={self.reason!r}, by_peer={self.by_peer})"
