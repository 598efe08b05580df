"""The ASGI ``http`` scope on hyper_util.asgi: scope contents, bodies, disconnects, extensions.

What belongs here: raw ASGI applications (no framework) checked against the
spec (asgiref ``specs/www.rst``, version 2.4): the exact scope, the request
body streamed with ``more_body`` and backpressure, ``http.disconnect`` and
``ClientDisconnected`` when the client leaves, trailers, early hints
(103), ``http.response.pathsend`` and the ``tls`` extension. Wrong messages
and app failures are in ``test_asgi_errors.py``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from asgi_helpers import TlsSetup, running

from hyper_util.asgi import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


async def _read_all(receive: Receive) -> bytes:
    body: list[bytes] = []
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body.append(message["body"])
        if not message["more_body"]:
            return b"".join(body)


async def _ok(send: Send, body: bytes = b"ok") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _raw_h1(port: int, request: bytes, *, until: bytes = b"\r\n0\r\n\r\n") -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as sock:
        await sock.send(request)
        received = b""
        with anyio.fail_after(10):
            while until not in received:
                try:
                    received += await sock.receive()
                except anyio.EndOfStream:
                    break
        return received


class Recorder:
    """An app that records each scope, then answers ``ok``."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["shared"] = {"counter": 0}
            scope["state"]["name"] = "lifespan"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.scopes.append(scope)
        scope["state"]["name"] = "changed by a request"  # a copy: never seen by others
        await _read_all(receive)
        await _ok(send)


async def test_http11_scope_is_complete_and_exact() -> None:
    app = Recorder()
    async with running(app, root_path="/mount") as url:
        port = int(url.rsplit(":", 1)[1])
        raw = await _raw_h1(
            port,
            b"POST /caf%C3%A9/a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\n"
            b"X-Dup: 1\r\nContent-Length: 3\r\nx-dup: 2\r\n\r\nabc",
            until=b"ok",
        )
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        await _raw_h1(port, b"GET / HTTP/1.0\r\n\r\n", until=b"ok")
    scope, second = app.scopes
    client = scope.pop("client")
    server = scope.pop("server")
    assert client[0] == "127.0.0.1"
    assert isinstance(client[1], int)
    assert server == ("127.0.0.1", port)
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/café/a/b",
        "raw_path": b"/caf%C3%A9/a%2Fb",
        "query_string": b"x=1&y=%20",
        "root_path": "/mount",
        "headers": [
            (b"host", b"example.com"),
            (b"x-dup", b"1"),
            (b"content-length", b"3"),
            (b"x-dup", b"2"),
        ],
        "state": {"shared": {"counter": 0}, "name": "changed by a request"},
        "extensions": {
            "http.response.trailers": {},
            "http.response.early_hint": {},
            "http.response.pathsend": {},
        },
    }
    assert second["http_version"] == "1.0"
    assert second["method"] == "GET"
    # Shallow copies: each request's own dict, the values shared.
    assert second["state"]["name"] == "changed by a request"
    assert second["state"] is not scope["state"]
    assert second["state"]["shared"] is scope["state"]["shared"]


async def test_http2_scope_has_host_from_authority_first() -> None:
    app = Recorder()
    async with running(app) as url, httpx.AsyncClient(http1=False, http2=True) as client:
        response = await client.get(f"{url}/p%20q?a=b", headers={"X-One": "1"})
        assert response.status_code == 200
    (scope,) = app.scopes
    assert scope["http_version"] == "2"
    assert scope["path"] == "/p q"
    assert scope["raw_path"] == b"/p%20q"
    assert scope["headers"][0] == (b"host", url.removeprefix("http://").encode())
    assert [n for n, _ in scope["headers"]].count(b"host") == 1
    assert (b"x-one", b"1") in scope["headers"]
    assert not any(name.startswith(b":") for name, _ in scope["headers"])


async def test_request_body_arrives_in_chunks_with_more_body() -> None:
    messages: list[Message] = []
    arrived = [anyio.Event()]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            messages.append(message)
            arrived[0].set()
            if not message.get("more_body"):
                break
        await _ok(send)

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as sock:
            await sock.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"first", b"second"):
                await sock.send(b"%x\r\n%s\r\n" % (len(part), part))
                with anyio.fail_after(5):
                    # Each chunk reaches the app before the next is sent.
                    while not any(m.get("body") == part for m in messages):
                        await arrived[0].wait()
                        arrived[0] = anyio.Event()
            await sock.send(b"0\r\n\r\n")
            with anyio.fail_after(5):
                assert b"ok" in await sock.receive()
    bodies = [m["body"] for m in messages]
    assert b"".join(bodies) == b"firstsecond"
    assert all(m["more_body"] for m in messages[:-1])
    assert messages[-1]["more_body"] is False
    assert all(m["type"] == "http.request" for m in messages)


async def test_unread_body_holds_the_client_back() -> None:
    # Backpressure: while the app does not call receive(), the server reads
    # at most what fits its buffers, so a big upload stalls in the client.
    total = 16 * 1024 * 1024
    release = anyio.Event()
    received = [0]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await release.wait()
        received[0] = len(await _read_all(receive))
        await _ok(send)

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        sent = [0]
        async with (
            await anyio.connect_tcp("127.0.0.1", port) as sock,
            anyio.create_task_group() as tg,
        ):
            raw = sock.extra(anyio.abc.SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)

            async def upload() -> None:
                await sock.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
                chunk = b"x" * 65536
                while sent[0] < total:
                    await sock.send(chunk)
                    sent[0] += len(chunk)

            tg.start_soon(upload)
            await anyio.sleep(1.0)
            stalled_at = sent[0]
            assert stalled_at < total // 2, f"the server read {stalled_at} bytes ahead of the app"
            release.set()
            with anyio.fail_after(30):
                reply = b""
                while b"ok" not in reply:
                    reply += await sock.receive()
    assert received[0] == total


@pytest.mark.parametrize("how", ["h1-close", "h2-reset", "h2-close"])
async def test_client_leaving_mid_stream_ends_the_app(how: str) -> None:
    outcome: list[str] = []
    done = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:  # only sends: the server must notice the client leaving
                await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
                await anyio.sleep(0.05)
        except OSError as exc:  # ClientDisconnected is an OSError (spec 2.4)
            outcome.append(type(exc).__name__)
        finally:
            done.set()

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        sock = await anyio.connect_tcp("127.0.0.1", port)
        if how == "h1-close":
            await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with anyio.fail_after(5):
                while b"tick" not in await sock.receive():
                    pass
        else:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
            conn.initiate_connection()
            conn.send_headers(1, _H2_GET, end_stream=True)
            await sock.send(conn.data_to_send())
            with anyio.fail_after(5):
                while not any(
                    isinstance(e, h2.events.DataReceived)
                    for e in conn.receive_data(await sock.receive())
                ):
                    pass
            if how == "h2-reset":
                conn.reset_stream(1, 8)
                await sock.send(conn.data_to_send())
        if how != "h2-reset":
            await sock.aclose()
        with anyio.fail_after(5):
            await done.wait()
        await sock.aclose()
    assert outcome == ["ClientDisconnected"]


_H2_GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")]


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2c"])
async def test_receive_reports_http_disconnect_when_the_client_leaves(http2: bool) -> None:
    seen: list[Message] = []
    done = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _read_all(receive)
        seen.append(await receive())  # waits: nothing more until the client leaves
        done.set()

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        if http2:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
            conn.initiate_connection()
            conn.send_headers(1, _H2_GET, end_stream=True)
            async with await anyio.connect_tcp("127.0.0.1", port) as sock:
                await sock.send(conn.data_to_send())
                await anyio.sleep(0.3)
        else:
            sock = await anyio.connect_tcp("127.0.0.1", port)
            await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await anyio.sleep(0.3)
            await sock.aclose()
        with anyio.fail_after(5):
            await done.wait()
    assert seen == [{"type": "http.disconnect"}]


async def test_trailers_over_http2() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"trailer", b"x-checksum")]
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
        )
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", b"abc")],
                "more_trailers": False,
            }
        )

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        events = await _h2_get(port)
    kinds = [type(e) for e in events]
    assert h2.events.TrailersReceived in kinds
    trailers = next(e for e in events if isinstance(e, h2.events.TrailersReceived))
    assert (b"x-checksum", b"abc") in (trailers.headers or [])
    data = b"".join(e.data or b"" for e in events if isinstance(e, h2.events.DataReceived))
    assert data == b"data"


async def test_trailers_over_http11_chunked() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"trailer", b"x-checksum")]
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
        )
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        raw = await _raw_h1(
            port, b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n", until=b"abc\r\n\r\n"
        )
    assert b"transfer-encoding: chunked" in raw.lower()
    assert raw.endswith(b"4\r\ndata\r\n0\r\nx-checksum: abc\r\n\r\n")


async def _h2_get(port: int, path: bytes = b"/") -> list[h2.events.Event]:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
    conn.initiate_connection()
    events: list[h2.events.Event] = []
    async with await anyio.connect_tcp("127.0.0.1", port) as sock:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(
            sid,
            [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", path)],
            end_stream=True,
        )
        await sock.send(conn.data_to_send())
        with anyio.fail_after(5):
            while not any(
                isinstance(e, h2.events.StreamEnded | h2.events.StreamReset) for e in events
            ):
                new = conn.receive_data(await sock.receive())
                for event in new:
                    if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                        conn.acknowledge_received_data(event.flow_controlled_length, sid)
                events.extend(new)
                data = conn.data_to_send()
                if data:
                    await sock.send(data)
    return events


async def test_early_hints_reach_the_client_as_103() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        assert "http.response.early_hint" in scope["extensions"]
        await send(
            {
                "type": "http.response.early_hint",
                "links": [
                    "</style.css>; rel=preload; as=style",
                    "</app.js>; rel=preload; as=script",
                ],
            }
        )
        await _ok(send)

    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        raw = await _raw_h1(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", until=b"ok")
        events = await _h2_get(port)
    assert raw.startswith(
        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n"
        b"link: </app.js>; rel=preload; as=script\r\n\r\nHTTP/1.1 200 OK\r\n"
    )
    informational = [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
    assert len(informational) == 1
    assert (b":status", b"103") in (informational[0].headers or [])


async def test_pathsend_streams_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    content = bytes(range(256)) * 4096  # 1 MiB
    path.write_bytes(content)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async with running(app, lifespan="off") as url:
        for http2 in (False, True):
            async with httpx.AsyncClient(http1=not http2, http2=http2) as client:
                response = await client.get(url)
            assert response.content == content
            assert response.headers["content-length"] == str(len(content))


async def test_tls_extension_and_https_scheme(tmp_path: Path) -> None:
    app = Recorder()
    tls = TlsSetup(tmp_path)
    async with (
        running(app, tls=tls.hook) as url,
        httpx.AsyncClient(verify=tls.client_context(), http2=True) as client,
    ):
        assert (await client.get(url)).status_code == 200
    (scope,) = app.scopes
    assert scope["scheme"] == "https"
    extension: Any = scope["extensions"]["tls"]
    assert extension["tls_version"] in (0x0303, 0x0304)
    assert extension["client_cert_chain"] == []
    assert extension["server_cert"] is None
