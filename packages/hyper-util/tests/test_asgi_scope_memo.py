"""The scope's header memo: the same scopes as without it.

What belongs here: the equivalence test the one-path rule asks of a
shortcut. On HTTP/1.1, a request whose header fields equal the previous
``http`` request's on the connection gets a copy of that request's scope
header list, and is not examined for a WebSocket upgrade again
(``http_scope`` and ``ASGIService.__call__``). Each test sends requests on
one keep-alive connection, alternating fields, and checks every scope
against the fields it sent, lower-cased here.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from asgi_helpers import running

from hyper_util.asgi import Receive, Scope, Send

pytestmark = pytest.mark.anyio

PLAIN = [(b"Host", b"x"), (b"User-Agent", b"memo"), (b"Accept", b"*/*")]
OTHER = [(b"HOST", b"x"), (b"X-Dup", b"1"), (b"x-dup", b"2"), (b"Accept", b"*/*")]
UPGRADE = [
    (b"Host", b"x"),
    (b"Connection", b"Upgrade"),
    (b"Upgrade", b"WebSocket"),
    (b"Sec-WebSocket-Version", b"13"),
    (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
]


def _request(fields: list[tuple[bytes, bytes]]) -> bytes:
    head = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    return b"GET / HTTP/1.1\r\n" + head + b"\r\n"


async def _exchange(sock: Any, fields: list[tuple[bytes, bytes]]) -> bytes:
    await sock.send(_request(fields))
    received = b""
    with anyio.fail_after(10):
        while b"\r\n\r\n" not in received or not received.endswith((b"ok", b"\r\n\r\n")):
            received += await sock.receive()
    return received


async def test_scopes_on_one_connection_match_the_fields_sent() -> None:
    seen: list[tuple[str, list[Any]]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            seen.append(("websocket", list(scope["headers"])))
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})  # denied: 403, the connection goes on
            return
        if scope["type"] != "http":
            return
        seen.append(("http", list(scope["headers"])))
        scope["headers"].append((b"x-added-by-app", b"1"))  # never seen by the next request
        scope["headers"][0] = (b"changed", b"1")
        fields = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": fields})
        await send({"type": "http.response.body", "body": b"ok"})

    sequence = [PLAIN, PLAIN, OTHER, OTHER, PLAIN, UPGRADE, UPGRADE, PLAIN]
    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as sock:
            answers = [await _exchange(sock, fields) for fields in sequence]
    expected = [
        ("websocket" if fields is UPGRADE else "http", [(n.lower(), v) for n, v in fields])
        for fields in sequence
    ]
    assert seen == expected
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [
        b"HTTP/1.1 403 Forbidden" if fields is UPGRADE else b"HTTP/1.1 200 OK"
        for fields in sequence
    ]
