"""WebSockets over hyper (wsproto): the client, and the connection both roles share.

What belongs here: the public names of ``hyper_util.ws``. The client is
:func:`connect` (HTTP/1.1 Upgrade, or HTTP/2 extended CONNECT per RFC 8441)
and the :class:`WebSocket` it opens, with its errors. The ASGI server
(``hyper_util.asgi``) is the server role; both roles run frames through
the same :class:`WebSocketConnection`.

Usage::

    from hyper_util.ws import connect

    async with connect("ws://127.0.0.1:8000/chat", subprotocols=["chat"]) as ws:
        await ws.send("hello")
        async for message in ws:
            print(message)
"""

from __future__ import annotations

from hyper_util.ws._client import (
    DEFAULT_CLIENT_MAX_MESSAGE_SIZE,
    DEFAULT_CLIENT_MAX_QUEUE,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_OPEN_TIMEOUT,
    connect,
)
from hyper_util.ws._connection import WebSocketConnection
from hyper_util.ws._errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    HandshakeRefusedError,
    OpenTimeoutError,
    WebSocketError,
    WebSocketProtocolError,
    close_code_name,
)
from hyper_util.ws._handshake import MAX_REFUSED_BODY_SIZE, accept_token, negotiate_deflate
from hyper_util.ws._options import DEFAULT_MAX_MESSAGE_SIZE, Closed, WebSocketOptions
from hyper_util.ws._websocket import WebSocket

__all__ = [
    "DEFAULT_CLIENT_MAX_MESSAGE_SIZE",
    "DEFAULT_CLIENT_MAX_QUEUE",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_OPEN_TIMEOUT",
    "MAX_REFUSED_BODY_SIZE",
    "Closed",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "HandshakeRefusedError",
    "OpenTimeoutError",
    "WebSocket",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketOptions",
    "WebSocketProtocolError",
    "accept_token",
    "close_code_name",
    "connect",
    "negotiate_deflate",
]
