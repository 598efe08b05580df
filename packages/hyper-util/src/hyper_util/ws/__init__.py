"""WebSockets over hyper IO (wsproto): the connection both roles share.

What belongs here: the public re-exports of ``hyper_util.ws``. The ASGI
server (:mod:`hyper_util.asgi`) is the server role; a WebSocket client over
HTTP/1.1 Upgrade and HTTP/2 extended CONNECT is planned on the same
:class:`WebSocketConnection`.
"""

from __future__ import annotations

from hyper_util.ws._connection import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Closed,
    WebSocketConnection,
    WebSocketOptions,
    accept_token,
    negotiate_deflate,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "Closed",
    "WebSocketConnection",
    "WebSocketOptions",
    "accept_token",
    "negotiate_deflate",
]
