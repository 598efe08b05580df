"""The events that cross the HTTP/1 codec seam, in both directions.

What belongs here: plain value classes with no behaviour and no h11 types, so
that any codec (the h11 one, a future accelerated one) produces and accepts
the same objects and the dispatchers never see a codec's internals.

Strategy: ``__slots__`` classes with positional constructors, because the
server builds one or two of them per request on its hot path. Header lists
are ``list[tuple[bytes, bytes]]`` with names in the case they had on the wire
(received) or that the user gave (sent); they are handed to
``Headers._from_trusted`` without a copy. Events are treated as immutable
once made: a codec may return a shared instance (for example an
``EndOfMessage`` without trailers).
"""

from __future__ import annotations

import enum
from typing import Final, final

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "RequestHead",
    "ResponseHead",
    "Sentinel",
]

HeaderList = list[tuple[bytes, bytes]]


class Sentinel(enum.Enum):
    """What :meth:`Codec.next_event` returns when it has no event to give."""

    #: More bytes are needed before the next event can be parsed.
    NEED_DATA = "NEED_DATA"
    #: The peer finished its message and the codec will not parse the bytes
    #: after it until ``start_next_cycle()`` (pipelining) or ever (upgrade).
    PAUSED = "PAUSED"


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED


@final
class RequestHead:
    """A request line and its header fields.

    Attributes:
        method: The method token, e.g. ``b"GET"``.
        target: The request target exactly as on the wire, e.g. ``b"/a?b"``.
        version: ``b"1.1"`` or ``b"1.0"``.
        headers: ``(name, value)`` pairs in order, names in original case.
    """

    __slots__ = ("headers", "method", "target", "version")

    def __init__(self, method: bytes, target: bytes, version: bytes, headers: HeaderList) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers

    def __repr__(self) -> str:
        return (
            f"RequestHead(method={self.method!r}, target={self.target!r}, "
            f"version={self.version!r}, headers={self.headers!r})"
        )


@final
class ResponseHead:
    """A status line and its header fields (also used for 1xx responses).

    Attributes:
        status: The status code, 100-999.
        reason: The reason phrase (may be empty).
        version: ``b"1.1"`` or ``b"1.0"``.
        headers: ``(name, value)`` pairs in order, names in original case.
    """

    __slots__ = ("headers", "reason", "status", "version")

    def __init__(self, status: int, reason: bytes, version: bytes, headers: HeaderList) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers

    def __repr__(self) -> str:
        return (
            f"ResponseHead(status={self.status!r}, reason={self.reason!r}, "
            f"version={self.version!r}, headers={self.headers!r})"
        )


@final
class Data:
    """A piece of a message body (never empty when received)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Data(<{len(self.data)} bytes>)"


@final
class EndOfMessage:
    """The end of a message body, with its trailer fields (chunked only)."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: HeaderList | None = None) -> None:
        self.trailers: HeaderList = trailers if trailers is not None else []

    def __repr__(self) -> str:
        return f"EndOfMessage(trailers={self.trailers!r})"


@final
class ConnectionClosed:
    """The peer closed its sending side at a message boundary."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ConnectionClosed()"


Event = RequestHead | ResponseHead | Data | EndOfMessage | ConnectionClosed
