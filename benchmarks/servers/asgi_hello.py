"""The hello-world ASGI 3 application served by uvicorn, hypercorn and granian.

It answers every HTTP request with the benchmark's fixed response: status 200,
``Content-Type: text/plain`` and the 13-byte body ``Hello, World!`` (each
server adds its own ``Content-Length``-independent headers such as ``Date`` and
``Server``). Lifespan events are acknowledged so that servers which run the
lifespan protocol start cleanly. The request body is not read: the load is
bodiless ``GET`` requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = b"Hello, World!"
START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
BODY_MESSAGE: Message = {"type": "http.response.body", "body": BODY, "more_body": False}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send(START)
        await send(BODY_MESSAGE)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
