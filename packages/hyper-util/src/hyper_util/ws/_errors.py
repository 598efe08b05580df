"""The errors of the WebSocket client.

What belongs here: :class:`WebSocketError`, the root of every error that
:func:`hyper_util.ws.connect` and the :class:`~hyper_util.ws.WebSocket` raise
themselves, and one subclass per kind a caller branches on: a handshake that
failed (refused by the server, invalid, too slow) and a connection that
closed (normally, with an error code, or because the server broke the
protocol).

Rules (those of ``hyper_core.error``):

1. Errors from opening the connection (``ConnectError`` and its kinds from
   the connector, hyper-tls's certificate errors) and from the HTTP exchange
   (``hyper_core.error.ParseError``...) pass through unchanged: they are not
   WebSocket errors.
2. ``str()`` says only this error's part; the cause is ``__cause__``.
3. The names of the closed kinds follow the ``websockets`` library's
   (``ConnectionClosed``, ``ConnectionClosedOK``, ``ConnectionClosedError``),
   which is what Python WebSocket code already catches.
"""

from __future__ import annotations

from typing import Final

from hyper_core.error import ClosedError, HyperError
from hyper_core.error import TimeoutError as HyperTimeoutError
from hyper_core.http import Headers, Version

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "HandshakeRefusedError",
    "OpenTimeoutError",
    "WebSocketError",
    "WebSocketProtocolError",
    "close_code_name",
]

#: Close codes that mean the connection ended as both sides meant it to
#: (1005: the close frame carried no code).
OK_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})
#: Codes this side closes with when the peer sent what it refuses.
PROTOCOL_CLOSE_CODES: Final = frozenset({1002, 1007, 1009})

_NAMES: Final = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status",
    1006: "connection lost",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}


def close_code_name(code: int) -> str:
    """A short name for a close code (RFC 6455 section 7.4, IANA registry)."""
    name = _NAMES.get(code)
    if name is not None:
        return name
    if 3000 <= code <= 3999:
        return "registered"
    if 4000 <= code <= 4999:
        return "private use"
    return "unknown"


class WebSocketError(HyperError):
    """Root of the errors raised by the WebSocket client."""


class HandshakeError(WebSocketError):
    """The opening handshake failed: the response did not open a WebSocket.

    Raised when the answer breaks RFC 6455 or RFC 8441 (a wrong
    ``Sec-WebSocket-Accept``, a subprotocol or extension that was not
    offered), when an HTTP/2 server does not allow WebSockets, or when
    HTTP/2 was required and the server speaks HTTP/1.1.
    """


class HandshakeRefusedError(HandshakeError):
    """The server answered the handshake with an HTTP response instead of a WebSocket.

    Attributes:
        status: The response status (not 101 on HTTP/1.1, not 2xx on HTTP/2).
        headers: The response header fields.
        body: The start of the response body (at most
            ``hyper_util.ws.MAX_REFUSED_BODY_SIZE`` bytes).
        version: The HTTP version of the response.
    """

    def __init__(self, status: int, headers: Headers, body: bytes, version: Version) -> None:
        super().__init__(f"the server refused the WebSocket handshake with status {status}")
        self.status = status
        self.headers = headers
        self.body = body
        self.version = version


class OpenTimeoutError(HandshakeError, HyperTimeoutError):
    """Connecting and the opening handshake took longer than ``open_timeout``."""


class ConnectionClosed(WebSocketError, ClosedError):
    """The WebSocket is closed; raised by receiving and sending once it is.

    Attributes:
        code: The close code (1006: the connection was lost without a
            closing handshake).
        reason: The close reason.
        by_peer: The server started the closing handshake with this code;
            false when this side did, or when the connection was lost.
    """

    def __init__(self, code: int, reason: str = "", *, by_peer: bool = False) -> None:
        self.code = code
        self.reason = reason
        self.by_peer = by_peer
        super().__init__(self._describe())

    def _describe(self) -> str:
        what = f"{self.code} ({close_code_name(self.code)})"
        if self.code == 1006:
            text = "the WebSocket connection was lost without a closing handshake (1006)"
        elif self.by_peer:
            text = f"the server closed the WebSocket with {what}"
        else:
            text = f"the WebSocket was closed with {what}"
        return f"{text}: {self.reason}" if self.reason else text

    @classmethod
    def of(cls, code: int, reason: str = "", *, by_peer: bool = False) -> ConnectionClosed:
        """The right subclass for a close code and who sent it."""
        if code in OK_CLOSE_CODES:
            return ConnectionClosedOK(code, reason, by_peer=by_peer)
        if code in PROTOCOL_CLOSE_CODES and not by_peer:
            return WebSocketProtocolError(code, reason, by_peer=by_peer)
        return ConnectionClosedError(code, reason, by_peer=by_peer)


class ConnectionClosedOK(ConnectionClosed):
    """The WebSocket closed normally (1000 normal closure, 1001 going away, 1005 no code).

    Iterating over a :class:`~hyper_util.ws.WebSocket` simply ends then.
    """


class ConnectionClosedError(ConnectionClosed):
    """The WebSocket closed with an error code, or the connection was lost (1006)."""


class WebSocketProtocolError(ConnectionClosedError):
    """The server sent what this side refuses, so it closed the WebSocket.

    ``code`` says why: 1002 (the server broke the WebSocket protocol), 1007
    (invalid data, such as a text message that is not UTF-8) or 1009 (a
    message larger than ``max_message_size``).
    """
