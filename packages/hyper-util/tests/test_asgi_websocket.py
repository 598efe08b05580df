"""The ASGI ``websocket`` scope over HTTP/1.1 Upgrade and HTTP/2 extended CONNECT.

What belongs here: the WebSocket side of hyper_util.asgi, with clients no
one here wrote: the ``websockets`` library over HTTP/1.1 (in a thread, on its
own asyncio loop, while the server runs on the test's backend), python-h2
driven by hand with wsproto frames over HTTP/2 (RFC 8441), and hyper-core's
own extended CONNECT client. Covered: accept with subprotocol and headers,
text and binary, fragmented messages, ping/pong, close codes and reasons
both ways, refusal (403) and ``websocket.http.response`` denial,
permessage-deflate, the message size limit (1009), keep-alive ping timeout
(1011), and backpressure against a client that stops reading.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
import websockets.exceptions
import websockets.sync.client
from asgi_helpers import running
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, TextMessage

from hyper_core import upgrade
from hyper_core.client.conn import http2 as client_http2
from hyper_core.http import Request
from hyper_util.asgi import ClientDisconnected, Receive, Scope, Send, WebSocketOptions

pytestmark = pytest.mark.anyio


class EchoApp:
    """Accepts (with ``chat`` if offered and a custom header), echoes, records what it saw."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.disconnects: list[Any] = []
        self.closed = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        self.scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        subprotocol = "chat" if "chat" in scope["subprotocols"] else None
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": [(b"x-app", b"yes")],
            }
        )
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    self.disconnects.append(message)
                    return
                text = message.get("text")
                if text == "close-me":
                    await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
                    return
                if text is not None:
                    await send({"type": "websocket.send", "text": text})
                else:
                    await send({"type": "websocket.send", "bytes": message["bytes"]})
        finally:
            self.closed.set()


def _ws_url(url: str, path: str = "/ws") -> str:
    return url.replace("http://", "ws://") + path


# -- HTTP/1.1 with the websockets library ---------------------------------------------


def _echo_session(url: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with websockets.sync.client.connect(
        url,
        subprotocols=["chat", "other"],  # type: ignore[list-item]
        compression="deflate",
        additional_headers={"X-Client": "ws"},
    ) as ws:
        seen["subprotocol"] = ws.subprotocol
        seen["x-app"] = ws.response.headers.get("x-app") if ws.response else None
        seen["extensions"] = (
            ws.response.headers.get("sec-websocket-extensions") if ws.response else None
        )
        ws.send("hello")
        seen["text"] = ws.recv(timeout=5)
        ws.send(b"\x00\xff")
        seen["bytes"] = ws.recv(timeout=5)
        ws.send(["frag", "mented ", "message"])  # one message in three frames
        seen["fragmented"] = ws.recv(timeout=5)
        pong = ws.ping(b"are you there")
        seen["pong"] = pong.wait(timeout=5)
        ws.close(code=4000, reason="client bye")
    return seen


async def test_http11_echo_subprotocol_headers_deflate_fragments_ping() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url:
        seen = await anyio.to_thread.run_sync(_echo_session, _ws_url(url) + "?q=1")
        with anyio.fail_after(5):
            await app.closed.wait()
    assert seen == {
        "subprotocol": "chat",
        "x-app": "yes",
        "extensions": seen["extensions"],
        "text": "hello",
        "bytes": b"\x00\xff",
        "fragmented": "fragmented message",
        "pong": True,
    }
    assert seen["extensions"] is not None
    assert "permessage-deflate" in seen["extensions"]
    (scope,) = app.scopes
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/ws"
    assert scope["query_string"] == b"q=1"
    assert scope["subprotocols"] == ["chat", "other"]
    assert scope["http_version"] == "1.1"
    assert (b"x-client", b"ws") in scope["headers"]
    assert "websocket.http.response" in scope["extensions"]
    assert app.disconnects == [
        {"type": "websocket.disconnect", "code": 4000, "reason": "client bye"}
    ]


def _server_closes(url: str) -> tuple[int | None, str | None]:
    with websockets.sync.client.connect(url) as ws:
        ws.send("close-me")
        try:
            ws.recv(timeout=5)
        except websockets.exceptions.ConnectionClosed as exc:
            return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None)
    return None, None


async def test_app_close_code_and_reason_reach_the_client() -> None:
    async with running(EchoApp(), lifespan="off") as url:
        assert await anyio.to_thread.run_sync(_server_closes, _ws_url(url)) == (4001, "asked to")


def _handshake_status(url: str) -> tuple[int, bytes]:
    try:
        with websockets.sync.client.connect(url, open_timeout=5):
            return 101, b""
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code, bytes(exc.response.body or b"")


async def test_close_before_accept_is_403_and_http_response_denial() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        if scope["path"] == "/refuse":
            await send({"type": "websocket.close"})
            return
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"x-why", b"auth")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"log in", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b" first"})

    async with running(app, lifespan="off") as url:
        refused = await anyio.to_thread.run_sync(_handshake_status, _ws_url(url, "/refuse"))
        denied = await anyio.to_thread.run_sync(_handshake_status, _ws_url(url, "/deny"))
    assert refused == (403, b"")
    assert denied == (401, b"log in first")


async def test_app_error_before_accept_is_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            raise RuntimeError("broken app")

    async with running(app, lifespan="off") as url:
        assert (await anyio.to_thread.run_sync(_handshake_status, _ws_url(url)))[0] == 500


def _send_big(url: str, size: int) -> tuple[int | None, str]:
    with websockets.sync.client.connect(url, max_size=None, compression=None) as ws:
        ws.send(b"x" * size)
        try:
            ws.recv(timeout=5)
        except websockets.exceptions.ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else None), ""
    return None, "not closed"


async def test_message_larger_than_the_limit_closes_with_1009() -> None:
    options = WebSocketOptions(max_message_size=64 * 1024)
    app = EchoApp()
    async with running(app, lifespan="off", websocket=options) as url:
        code, _ = await anyio.to_thread.run_sync(_send_big, _ws_url(url), 100_000)
        with anyio.fail_after(5):
            await app.closed.wait()
    assert code == 1009
    assert app.disconnects[0]["code"] == 1009


async def test_bad_handshakes_are_refused() -> None:
    async with running(EchoApp(), lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        for request, status in (
            (
                b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                b"426",
            ),
            (b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n", b"400"),
            (b"Sec-WebSocket-Version: 13\r\n", b"400"),
        ):
            async with await anyio.connect_tcp("127.0.0.1", port) as sock:
                await sock.send(
                    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n" + request + b"\r\n"
                )
                with anyio.fail_after(5):
                    head = await sock.receive()
            assert head.startswith(b"HTTP/1.1 " + status), head


async def _raw_h1_websocket(port: int) -> tuple[anyio.abc.SocketStream, Connection]:
    sock = await anyio.connect_tcp("127.0.0.1", port)
    await sock.send(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    head = b""
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in head:
            head += await sock.receive()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455's example key and accept
    return sock, Connection(ConnectionType.CLIENT)


async def test_upgrade_after_a_request_on_the_same_connection() -> None:
    # The first request's app waits, so the connection's reader task watches
    # for a client that leaves; the upgrade must take the IO back from it,
    # with the first frame that came in the same packet as the upgrade.
    echo = EchoApp()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await anyio.lowlevel.checkpoint()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain"})
        else:
            await echo(scope, receive, send)

    async with running(app, lifespan="off") as url:
        sock = await anyio.connect_tcp("127.0.0.1", int(url.rsplit(":", 1)[1]))
        client = Connection(ConnectionType.CLIENT)
        async with sock:
            received = b""
            with anyio.fail_after(5):
                await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                while not received.endswith(b"plain"):
                    received += await sock.receive()
                await sock.send(
                    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                    + client.send(TextMessage(data="first"))
                )
                received = b""
                while b"\r\n\r\n" not in received:
                    received += await sock.receive()
                head, _, rest = received.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101 ")
                client.receive_data(rest)
                events = list(client.events())
                while not events:
                    client.receive_data(await sock.receive())
                    events = list(client.events())
    assert events == [TextMessage(data="first")]


async def test_keepalive_ping_unanswered_closes_with_1011() -> None:
    app = EchoApp()
    options = WebSocketOptions(ping_interval=0.2, ping_timeout=0.3)
    async with running(app, lifespan="off", websocket=options) as url:
        sock, _ = await _raw_h1_websocket(int(url.rsplit(":", 1)[1]))
        async with sock:
            # A client that never answers pings (it reads nothing): closed.
            with anyio.fail_after(5):
                await app.closed.wait()
    assert app.disconnects[0]["code"] == 1011


async def test_a_client_that_stops_reading_blocks_send_not_memory() -> None:
    sent = [0]
    blocked = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        chunk = b"x" * 65536
        try:
            while True:
                with anyio.move_on_after(1) as scope_:
                    await send({"type": "websocket.send", "bytes": chunk})
                if scope_.cancelled_caught:
                    blocked.set()  # send() waits: the socket is full and nothing queues
                    return
                sent[0] += len(chunk)
        except ClientDisconnected:
            return

    async with running(app, lifespan="off") as url:
        sock, _ = await _raw_h1_websocket(int(url.rsplit(":", 1)[1]))
        async with sock:
            with anyio.fail_after(20):
                await blocked.wait()
    # What went out before send() blocked fits in the kernel's socket buffers.
    assert sent[0] < 32 * 1024 * 1024


# -- HTTP/2 (RFC 8441) ------------------------------------------------------------------


async def test_http2_extended_connect_with_python_h2_and_wsproto() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        conn = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding=None))
        conn.initiate_connection()
        ws = Connection(ConnectionType.CLIENT)
        events: list[Any] = []
        async with await anyio.connect_tcp("127.0.0.1", port) as sock:
            await sock.send(conn.data_to_send())

            async def pump(until: Any) -> None:
                with anyio.fail_after(5):
                    while not until():
                        for event in conn.receive_data(await sock.receive()):
                            events.append(event)
                            if isinstance(event, h2.events.DataReceived):
                                conn.acknowledge_received_data(
                                    event.flow_controlled_length or 0, event.stream_id or 0
                                )
                                ws.receive_data(event.data)
                                events.extend(ws.events())
                        data = conn.data_to_send()
                        if data:
                            await sock.send(data)

            def settings_enabled() -> bool:
                return bool(
                    conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                )

            await pump(settings_enabled)
            conn.send_headers(
                1,
                [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"http"),
                    (b":path", b"/chat?room=1"),
                    (b":authority", b"localhost"),
                    (b"sec-websocket-version", b"13"),
                    (b"sec-websocket-protocol", b"chat"),
                ],
            )
            await sock.send(conn.data_to_send())
            await pump(lambda: any(isinstance(e, h2.events.ResponseReceived) for e in events))
            response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
            assert (b":status", b"200") in (response.headers or [])
            assert (b"sec-websocket-protocol", b"chat") in (response.headers or [])
            assert not any(n == b"sec-websocket-accept" for n, _ in response.headers or [])

            for message in (TextMessage(data="over h2"), BytesMessage(data=b"\x01\x02")):
                conn.send_data(1, ws.send(message))
                await sock.send(conn.data_to_send())
                await pump(
                    lambda m=message: any(
                        isinstance(e, type(m)) and e.data == m.data for e in events
                    )
                )
            conn.send_data(1, ws.send(CloseConnection(code=1000, reason="done")))
            await sock.send(conn.data_to_send())
            await pump(lambda: any(isinstance(e, CloseConnection) for e in events))
            with anyio.fail_after(5):
                await app.closed.wait()
    (scope,) = app.scopes
    assert scope["http_version"] == "2"
    assert scope["path"] == "/chat"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["chat"]
    assert app.disconnects == [{"type": "websocket.disconnect", "code": 1000, "reason": "done"}]
    assert [e.data for e in events if isinstance(e, Message)] == ["over h2", b"\x01\x02"]


async def test_http2_extended_connect_with_hyper_cores_client() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as sock:
            sender, connection = await client_http2.handshake(sock)
            async with anyio.create_task_group() as tg:
                tg.start_soon(connection.serve)
                with anyio.fail_after(5):
                    # The server's SETTINGS arrive in the connection task.
                    while not sender.is_extended_connect_protocol_enabled():  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                request: Request[Any] = Request("CONNECT", f"{url}/ws")
                request.extensions.insert(client_http2.Protocol("websocket"))
                request.headers["sec-websocket-version"] = "13"
                response = await sender.send_request(request)
                assert response.status == 200
                tunnel = await upgrade.on(response)
                ws = Connection(ConnectionType.CLIENT)
                await tunnel.send(ws.send(TextMessage(data="hyper client")))
                received: list[Any] = []
                with anyio.fail_after(5):
                    while not received:
                        ws.receive_data(await tunnel.receive())
                        received.extend(e for e in ws.events() if isinstance(e, Message))
                assert received[0].data == "hyper client"
                await tunnel.send(ws.send(CloseConnection(code=1001, reason="going away")))
                with anyio.fail_after(5):
                    await app.closed.wait()
                tg.cancel_scope.cancel()
    assert app.disconnects == [
        {"type": "websocket.disconnect", "code": 1001, "reason": "going away"}
    ]
