"""The WebSocket client against our own ASGI server, over HTTP/1.1 and HTTP/2.

What belongs here: ``hyper_util.ws.connect`` with ``hyper_util.asgi.serve``
as the server, on every path the client can take: HTTP/1.1 on a connection
of its own, HTTP/2 (RFC 8441) on a pooled ``Client``'s connection (chosen
because the pool already holds one, or asked for), HTTP/2 on a connection of
its own (h2c, or ALPN ``h2``), each in clear text and over TLS (trustme);
refusals on HTTP/2; the pool's accounting while a WebSocket holds a stream;
and flow control in both directions (a server that stops reading, a client
that stops reading) over HTTP/2. The ASGI scope the app saw says which
protocol was used, so each choice is checked from the server's side.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest
from asgi_helpers import TlsSetup, running

from hyper_core.body import collect
from hyper_core.http import Version
from hyper_tls import HttpsConnector, client_ssl_context
from hyper_util.asgi import ClientDisconnected, Receive, Scope, Send
from hyper_util.client.legacy import Client
from hyper_util.ws import (
    ConnectionClosedError,
    HandshakeError,
    HandshakeRefusedError,
    connect,
)

pytestmark = pytest.mark.anyio


class EchoApp:
    """Accepts (``chat`` if offered), echoes; ``/refuse`` is refused; records the scopes."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.disconnects: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["http_version"].encode()})
            return
        if scope["type"] != "websocket":
            return
        self.scopes.append(scope)
        await receive()
        if scope["path"] == "/refuse":
            await send({"type": "websocket.close"})
            return
        if scope["path"] == "/deny":
            await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"log in first"})
            return
        subprotocol = "chat" if "chat" in scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
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


def ws_url(url: str, path: str = "/ws") -> str:
    return url.replace("http", "ws", 1) + path


async def exchange(url: str, **options: Any) -> tuple[Version, str | None]:
    """Open, echo text, binary and a fragmented message, close with 4000."""
    async with connect(url, subprotocols=["chat"], **options) as ws:
        await ws.send("hello")
        assert await ws.receive() == "hello"
        await ws.send(b"\x00" * 100_000)
        assert await ws.receive() == b"\x00" * 100_000
        await ws.send_fragments(["a", "b", "c"])
        assert await ws.receive() == "abc"
        assert await ws.ping(b"over the wire") >= 0
        assert ws.compression == "permessage-deflate"
        await ws.close(4000, "bye")
        return ws.http_version, ws.subprotocol


async def test_http11_on_its_own_connection() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url:
        assert await exchange(ws_url(url) + "?q=1") == (Version.HTTP_11, "chat")
    (scope,) = app.scopes
    assert (scope["http_version"], scope["scheme"], scope["query_string"]) == ("1.1", "ws", b"q=1")
    assert scope["subprotocols"] == ["chat"]
    assert app.disconnects == [{"type": "websocket.disconnect", "code": 4000, "reason": "bye"}]


async def test_http2_h2c_on_its_own_connection() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url:
        assert await exchange(ws_url(url), http2=True) == (Version.HTTP_2, "chat")
    assert app.scopes[0]["http_version"] == "2"
    assert app.disconnects[0]["code"] == 4000


async def test_the_pooled_clients_http2_connection_is_used_when_it_has_one() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url, Client(http2_only=True) as client:
        assert not client.is_extended_connect_protocol_enabled(url + "/")
        response = await client.get(url + "/")
        assert (await collect(response.body)).to_bytes() == b"2"
        assert client.is_extended_connect_protocol_enabled(url + "/")
        async with (
            connect(ws_url(url, "/one"), client=client) as one,
            connect(ws_url(url, "/two"), client=client) as two,
        ):
            assert one.http_version is two.http_version is Version.HTTP_2
            assert one.response.status == 200
            await one.send("one")
            await two.send("two")
            response = await client.get(url + "/")  # beside them, on the same connection
            assert (await collect(response.body)).to_bytes() == b"2"
            assert await two.receive() == "two"
            assert await one.receive() == "one"
        assert client.statistics().connections_opened == 1
    assert [s["http_version"] for s in app.scopes] == ["2", "2"]
    assert [d["code"] for d in app.disconnects] == [1000, 1000]


async def test_without_an_http2_connection_the_client_opens_http11() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url, Client() as client:
        await collect((await client.get(url + "/")).body)  # an HTTP/1.1 pooled connection
        assert not client.is_extended_connect_protocol_enabled(url + "/")
        assert await exchange(ws_url(url), client=client) == (Version.HTTP_11, "chat")
        with pytest.raises(HandshakeError, match="HTTP/2 was asked for"):
            async with connect(ws_url(url), client=client, http2=True):
                raise AssertionError("not reached")  # pragma: no cover
    assert app.scopes[0]["http_version"] == "1.1"


async def test_http2_on_the_pool_can_be_asked_for_before_any_request() -> None:
    app = EchoApp()
    async with running(app, lifespan="off") as url, Client(http2_only=True) as client:
        # The pool opens the connection; the request waits for the server's
        # SETTINGS to learn that extended CONNECT is allowed.
        assert await exchange(ws_url(url), client=client, http2=True) == (Version.HTTP_2, "chat")
    assert app.scopes[0]["http_version"] == "2"


@pytest.mark.parametrize("path", ["/refuse", "/deny"])
async def test_refusals_over_http2_and_the_pool_goes_on(path: str) -> None:
    async with running(EchoApp(), lifespan="off") as url, Client(http2_only=True) as client:
        with pytest.raises(HandshakeRefusedError) as caught:
            async with connect(ws_url(url, path), client=client, http2=True):
                raise AssertionError("not reached")  # pragma: no cover
        response = await client.get(url + "/")
        assert (await collect(response.body)).to_bytes() == b"2"
        assert client.statistics().connections_opened == 1
    error = caught.value
    assert error.version is Version.HTTP_2
    assert (error.status, error.body) == (
        (403, b"") if path == "/refuse" else (401, b"log in first")
    )


async def test_server_close_code_over_http2() -> None:
    async with (
        running(EchoApp(), lifespan="off") as url,
        connect(ws_url(url), http2=True) as ws,
    ):
        await ws.send("close-me")
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.receive()
    assert (caught.value.code, caught.value.reason, caught.value.by_peer) == (
        4001,
        "asked to",
        True,
    )


async def test_a_websocket_keeps_its_pooled_connection_busy() -> None:
    # The idle reaper must not retire an HTTP/2 connection that carries an
    # open WebSocket (its CONNECT request ended with the response head).
    app = EchoApp()
    async with (
        running(app, lifespan="off") as url,
        Client(http2_only=True, pool_idle_timeout=0.2) as client,
        connect(ws_url(url), client=client, http2=True) as ws,
    ):
        await anyio.sleep(0.7)  # several idle timeouts
        await ws.send("still here")
        assert await ws.receive() == "still here"
        response = await client.get(url + "/")
        await collect(response.body)
        assert client.statistics().connections_opened == 1
    assert app.disconnects[0]["code"] == 1000


# -- TLS ---------------------------------------------------------------------------------


async def test_wss_http11_on_its_own_connection(tmp_path: Path) -> None:
    tls = TlsSetup(tmp_path)
    app = EchoApp()
    async with running(app, lifespan="off", tls=tls.hook) as url:
        context = ssl.create_default_context(cafile=str(tls.ca_file))  # no ALPN: HTTP/1.1
        assert await exchange(ws_url(url), ssl_context=context) == (Version.HTTP_11, "chat")
    assert (app.scopes[0]["http_version"], app.scopes[0]["scheme"]) == ("1.1", "wss")


async def test_wss_http2_on_its_own_connection_by_alpn(tmp_path: Path) -> None:
    tls = TlsSetup(tmp_path)
    app = EchoApp()
    async with running(app, lifespan="off", tls=tls.hook) as url:
        context = client_ssl_context(cafile=tls.ca_file, http2=True)
        assert await exchange(ws_url(url), ssl_context=context) == (Version.HTTP_2, "chat")
        with pytest.raises(HandshakeError, match="http2=False"):
            async with connect(ws_url(url), ssl_context=context, http2=False):
                raise AssertionError("not reached")  # pragma: no cover
    assert (app.scopes[0]["http_version"], app.scopes[0]["scheme"]) == ("2", "wss")


async def test_wss_on_the_pooled_clients_http2_connection(tmp_path: Path) -> None:
    tls = TlsSetup(tmp_path)
    app = EchoApp()
    connector = HttpsConnector(ssl_context=client_ssl_context(cafile=tls.ca_file))
    async with running(app, lifespan="off", tls=tls.hook) as url, Client(connector) as client:
        await collect((await client.get(url + "/")).body)  # ALPN h2: a shared connection
        assert await exchange(ws_url(url), client=client) == (Version.HTTP_2, "chat")
        assert client.statistics().connections_opened == 1
    assert (app.scopes[0]["http_version"], app.scopes[0]["scheme"]) == ("2", "wss")


# -- flow control over HTTP/2 -------------------------------------------------------------


async def test_a_server_that_stops_reading_blocks_send_over_http2() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        await anyio.sleep_forever()  # never receives again

    chunk = bytes(65536)
    sent = 0
    async with (
        running(app, lifespan="off") as url,
        connect(ws_url(url), http2=True, per_message_deflate=False) as ws,
    ):
        with anyio.fail_after(30):
            while True:
                with anyio.move_on_after(1) as scope:
                    await ws.send(chunk)
                if scope.cancelled_caught:
                    break  # HTTP/2 flow control holds the send
                sent += len(chunk)
    # The server's queue (32 messages) plus its stream and connection windows.
    assert 0 < sent < 32 * 1024 * 1024


async def test_a_client_that_stops_reading_holds_the_server_back_over_http2() -> None:
    sent = [0]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": bytes(65536)})
                sent[0] += 1
        except ClientDisconnected:
            return

    async with (
        running(app, lifespan="off") as url,
        connect(ws_url(url), http2=True, max_queue=4, per_message_deflate=False) as ws,
    ):
        before = -1
        with anyio.fail_after(20):
            while sent[0] != before:  # until the server's sends stop going through
                before = sent[0]
                await anyio.sleep(0.5)
        # Four queued messages and the client's stream window (2 MiB).
        assert sent[0] * 65536 < 8 * 1024 * 1024
        for _ in range(sent[0]):
            assert await ws.receive() == bytes(65536)
