"""An ASGI app behind ``ProxyHeadersMiddleware``, for uvicorn in test_asgi_proxy_headers_e2e.py.

Answers every HTTP request, and every WebSocket after accepting it, with
JSON: the ``client``, ``scheme`` and ``host`` header the app saw. The allow
list comes from ``$FORWARDED_ALLOW_IPS`` (the middleware's default).
"""

from __future__ import annotations

import json
from typing import Any

from hyper_util.asgi._proxy_headers import ProxyHeadersMiddleware


def _seen(scope: Any) -> bytes:
    host = [value.decode() for name, value in scope["headers"] if name == b"host"]
    return json.dumps({"client": scope["client"], "scheme": scope["scheme"], "host": host}).encode()


async def report(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": _seen(scope)})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": _seen(scope)})
        await send({"type": "websocket.close", "code": 1000})


app = ProxyHeadersMiddleware(report)
