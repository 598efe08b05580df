"""The adapter's cache of checked response header lists: the same answers as without it.

What belongs here: the equivalence test the one-path rule asks of a
shortcut. ``http.response.start`` header lists seen before are taken from a
cache instead of being checked again; each test sends a list twice or more
(the first time checked, then from the cache, or never cached) and the wire
must be the same each time, and what must be refused is refused every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from asgi_helpers import running

from hyper_util.asgi import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio

CASES: dict[str, list[Any]] = {
    "tuples": [(b"content-type", b"text/plain"), (b"content-length", b"2"), (b"x-a", b"1")],
    "lists": [[b"content-type", b"text/plain"], [b"content-length", b"2"]],
    "transfer-encoding dropped": [(b"transfer-encoding", b"chunked"), (b"content-length", b"2")],
    "duplicate names kept": [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"X-Case", b"1")],
}


async def _raw_exchanges(url: str, paths: list[str]) -> list[bytes]:
    port = int(url.rsplit(":", 1)[1])
    answers = []
    async with await anyio.connect_tcp("127.0.0.1", port) as sock:
        for path in paths:
            await sock.send(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            received = b""
            with anyio.fail_after(10):
                while b"\r\n\r\n" not in received or not received.endswith(b"ok"):
                    received += await sock.receive()
            head, _, body = received.partition(b"\r\n\r\n")
            lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
            answers.append(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    return answers


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_header_list_sent_again_gives_the_same_head(case: str) -> None:
    headers = CASES[case]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        # A fresh list of the same fields each time, then the same object.
        fields = headers
        if scope["path"] == "/copy":
            fields = [list(item) if isinstance(item, list) else tuple(item) for item in headers]
        await send({"type": "http.response.start", "status": 200, "headers": fields})
        await send({"type": "http.response.body", "body": b"ok"})

    async with running(app, lifespan="off") as url:
        answers = await _raw_exchanges(url, ["/same", "/same", "/copy", "/same"])
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert answers == [answers[0]] * 4
    head = answers[0].lower()
    assert b"transfer-encoding" not in head
    if case == "duplicate names kept":
        assert b"set-cookie: a=1\r\nset-cookie: b=2\r\nx-case: 1" in head


async def test_a_list_changed_in_place_is_checked_again() -> None:
    fields: list[tuple[bytes, bytes]] = [(b"content-length", b"2"), (b"x-n", b"0")]
    count = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal count
        if scope["type"] != "http":
            return
        fields[1] = (b"x-n", str(count).encode())
        if count == 2:
            fields[1] = (b"x-n", b"bad\r\nvalue")  # refused, cached or not
        count += 1
        await send({"type": "http.response.start", "status": 200, "headers": fields})
        await send({"type": "http.response.body", "body": b"ok"})

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        statuses = []
        for _ in range(4):
            async with await anyio.connect_tcp("127.0.0.1", port) as sock:
                await sock.send(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                received = b""
                with anyio.fail_after(10):
                    while True:
                        try:
                            received += await sock.receive()
                        except anyio.EndOfStream:
                            break
            statuses.append(received.split(b"\r\n", 1)[0])
            if b" 200 " in statuses[-1]:
                assert f"x-n: {count - 1}\r\n".encode() in received.lower()
    assert statuses == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 500 Internal Server Error",
        b"HTTP/1.1 200 OK",
    ]


async def test_invalid_lists_are_refused_every_time() -> None:
    bad: list[Message] = [
        {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\nb")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"v")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"x")]},
        {"type": "http.response.start", "status": 200, "headers": [("str", "value")]},
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send(bad[int(scope["path"][1:])])
        await send({"type": "http.response.body", "body": b"ok"})

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        for index in list(range(len(bad))) * 2:
            async with await anyio.connect_tcp("127.0.0.1", port) as sock:
                await sock.send(f"GET /{index} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                received = b""
                with anyio.fail_after(10):
                    while b"\r\n\r\n" not in received:
                        received += await sock.receive()
            assert received.startswith(b"HTTP/1.1 500 "), (index, received)


async def test_pathsend_after_a_cached_start(tmp_path: Path) -> None:
    # pathsend adds Content-Length to the started response's fields: the
    # cached list must not take it in.
    path = tmp_path / "file.txt"
    path.write_bytes(b"file body")
    fields = [(b"content-type", b"text/plain")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": fields})
        if scope["path"] == "/file":
            await send({"type": "http.response.pathsend", "path": str(path)})
        else:
            await send({"type": "http.response.body", "body": b"ok"})

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        heads = []
        async with await anyio.connect_tcp("127.0.0.1", port) as sock:
            for target, end in (("/file", b"file body"), ("/file", b"file body"), ("/", b"ok")):
                await sock.send(f"GET {target} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                received = b""
                with anyio.fail_after(10):
                    while not received.endswith(end):
                        received += await sock.receive()
                heads.append(received.lower())
    assert heads[0].count(b"content-length: 9\r\n") == 1
    assert heads[1].count(b"content-length: 9\r\n") == 1
    assert b"content-length: 9" not in heads[2]
    assert b"transfer-encoding: chunked" in heads[2] or b"content-length: 2" in heads[2]
