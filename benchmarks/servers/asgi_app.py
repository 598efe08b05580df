"""The one ASGI 3 application every server runs in ``asgi.py``.

Routes, each answered the same way on every server:

* ``GET /``: 200, ``Content-Type: text/plain``, the 13-byte body
  ``Hello, World!`` (the hello-world of ``run.py``);
* ``GET /json``: 200, ``Content-Type: application/json``, a small object
  serialised with ``json.dumps`` on each request (what a JSON API does);
* ``GET /headers``: 200, a 4 KiB body and ten response header fields
  (``Content-Type``, ``Content-Length`` and eight more: what a page with
  caching and security headers looks like);
* ``POST /echo``: the request body read to its end (``more_body``) and sent
  back, ``Content-Type: application/octet-stream``, with its length;
* WebSocket ``/ws``: accepted, then every message echoed back as it came
  (text as text, bytes as bytes) until the client closes.

Anything else is 404. Lifespan events are acknowledged, so servers that run
the lifespan protocol start cleanly.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HELLO = b"Hello, World!"
HELLO_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
HELLO_BODY: Message = {"type": "http.response.body", "body": HELLO, "more_body": False}
PAGE = b"x" * 4096
PAGE_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain"),
        (b"content-length", b"4096"),
        (b"cache-control", b"no-cache, no-store, must-revalidate"),
        (b"etag", b'"33a64df551425fcc55e4d42a148795d9f25f89d4"'),
        (b"last-modified", b"Wed, 21 Oct 2015 07:28:00 GMT"),
        (b"vary", b"Accept-Encoding"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
        (b"x-request-id", b"f058ebd6-02f7-4d3f-942e-904344e8cde5"),
    ],
}
PAGE_BODY: Message = {"type": "http.response.body", "body": PAGE, "more_body": False}
NOT_FOUND_START: Message = {
    "type": "http.response.start",
    "status": 404,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")],
}
NOT_FOUND_BODY: Message = {"type": "http.response.body", "body": b"not found"}


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    method = scope["method"]
    if path == "/" and method == "GET":
        await send(HELLO_START)
        await send(HELLO_BODY)
    elif path == "/headers" and method == "GET":
        await send(PAGE_START)
        await send(PAGE_BODY)
    elif path == "/json" and method == "GET":
        body = json.dumps({"message": "Hello, World!", "id": 1, "ok": True}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    elif path == "/echo" and method == "POST":
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    else:
        await send(NOT_FOUND_START)
        await send(NOT_FOUND_BODY)


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        await http(scope, receive, send)
    elif kind == "websocket":
        await websocket(scope, receive, send)
    elif kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
