"""The ASGI 3 application of ``run.py``'s workloads, served by uvicorn, hypercorn and granian.

Routes (``_workloads.py`` has the bytes): ``GET /`` hello world, ``GET
/headers`` a 4 KiB body with ten header fields, ``POST /upload`` the request
body read whole (``more_body``) and its length answered. Lifespan events are
acknowledged so that servers which run the lifespan protocol start cleanly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from _workloads import CONTENT_TYPE, HELLO, PAGE, PAGE_HEADERS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _start(headers: list[tuple[bytes, bytes]], length: int) -> Message:
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [*headers, (b"content-length", str(length).encode())],
    }


HELLO_START = _start([CONTENT_TYPE], len(HELLO))
HELLO_BODY: Message = {"type": "http.response.body", "body": HELLO, "more_body": False}
PAGE_START = _start(PAGE_HEADERS, len(PAGE))
PAGE_BODY: Message = {"type": "http.response.body", "body": PAGE, "more_body": False}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        path = scope["path"]
        if path == "/headers":
            await send(PAGE_START)
            await send(PAGE_BODY)
        elif path == "/upload":
            size = 0
            while True:
                message = await receive()
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            answer = str(size).encode()
            await send(_start([CONTENT_TYPE], len(answer)))
            await send({"type": "http.response.body", "body": answer, "more_body": False})
        else:
            await send(HELLO_START)
            await send(HELLO_BODY)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
