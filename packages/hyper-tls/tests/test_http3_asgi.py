"""ASGI apps over HTTP/3, unchanged: ``hyper_util.asgi.serve(http3=True)`` and ``run --http3``.

What belongs here: a Starlette app served over TCP (TLS) and QUIC at once,
reached over HTTP/3 by our pooled ``Client`` and by niquests (qh3, a QUIC
stack no one here wrote); the scope an app sees over HTTP/3
(``http_version`` "3", ``https``, ``host`` from ``:authority``, the ``tls``
extension); early hints (103) and ``http.disconnect`` over HTTP/3;
WebSockets over HTTP/3 (RFC 9220 extended CONNECT) with our WebSocket
client and with a client written here on aioquic's H3 API and wsproto; and
the command line's ``run --http3`` with its usage errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from tls_helpers import CertFiles

from hyper_core import ext
from hyper_core.body import collect
from hyper_core.http import Request, Version
from hyper_tls import HttpsConnector, TlsAcceptor
from hyper_util import asgi
from hyper_util.cli import main
from hyper_util.client.legacy import Client
from hyper_util.ws import connect as ws_connect

pytestmark = pytest.mark.anyio


class Disconnects:
    """What ``Endless`` saw when its client left."""

    messages: list[str] = []  # noqa: RUF012 - one test at a time
    event: anyio.Event | None = None


async def scope_info(request: StarletteRequest) -> JSONResponse:
    scope = request.scope
    tls = scope["extensions"].get("tls")
    return JSONResponse(
        {
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "host": request.headers.get("host"),
            "pseudo": [n for n, _ in scope["headers"] if n.startswith(b":")],
            "tls_version": None if tls is None else tls["tls_version"],
            "cipher_suite": None if tls is None else tls["cipher_suite"],
            "client": scope["client"][0],
        }
    )


async def echo(request: StarletteRequest) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def stream(request: StarletteRequest) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(5):
            yield b"line %d\n" % i

    return StreamingResponse(lines())


class Hint:
    """A raw ASGI endpoint: 103 Early Hints, then the page."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.early_hint", "links": ["</style.css>; rel=preload; as=style"]}
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})


class Endless:
    """A raw ASGI endpoint streaming until the client leaves; records the disconnect."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def watch() -> None:
            while (message := await receive())["type"] == "http.request":
                pass  # the (empty) request body
            Disconnects.messages.append(message["type"])
            if Disconnects.event is not None:
                Disconnects.event.set()
            tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            while True:
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                await anyio.sleep(0.01)


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat" if websocket.scope["subprotocols"] else None)
    await websocket.send_text(f"http {websocket.scope['http_version']} {websocket.url.scheme}")
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


app = Starlette(
    routes=[
        Route("/scope", scope_info),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/hint", Hint()),
        Route("/endless", Endless()),
        WebSocketRoute("/ws", ws_echo),
    ]
)


@asynccontextmanager
async def asgi_h3(certs: CertFiles, **options: Any) -> AsyncIterator[int]:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            lambda task_status: asgi.serve(
                app,
                port=0,
                tls=TlsAcceptor(certs.server_context()),
                http3=True,
                certfile=str(certs.certfile),
                keyfile=str(certs.keyfile),
                handle_signals=False,
                shutdown_event=stop,
                timeout_graceful_shutdown=5,
                task_status=task_status,
                **options,
            )
        )
        try:
            yield address[1]
        finally:
            stop.set()


def h3_client(certs: CertFiles, port: int) -> Client:
    return Client(
        HttpsConnector(ssl_context=certs.client_context()),
        http3=True,
        http3_origins=[f"localhost:{port}"],
        http3_cafile=str(certs.cafile),
    )


async def test_starlette_over_http3_with_the_pooled_client(certs: CertFiles) -> None:
    async with asgi_h3(certs) as port, h3_client(certs, port) as client:
        base = f"https://localhost:{port}"
        response = await client.get(f"{base}/scope")
        assert response.version is Version.HTTP_3
        scope = json.loads((await collect(response.body)).to_bytes())
        assert scope["http_version"] == "3"
        assert scope["scheme"] == "https"
        assert scope["host"] == f"localhost:{port}"  # from :authority
        assert scope["pseudo"] == []
        assert scope["tls_version"] == 0x0304
        assert scope["cipher_suite"] in (0x1301, 0x1302, 0x1303)
        assert scope["client"] == "127.0.0.1"

        payload = bytes(range(256)) * 400
        echoed = await client.post(f"{base}/echo", payload)
        assert echoed.version is Version.HTTP_3
        assert (await collect(echoed.body)).to_bytes() == payload

        lines = await client.get(f"{base}/stream")
        assert (await collect(lines.body)).to_bytes() == b"".join(
            b"line %d\n" % i for i in range(5)
        )

        hints: list[ext.InformationalResponse] = []
        request = Request("GET", f"{base}/hint")
        ext.on_informational(request, hints.append)
        page = await client.request(request)
        assert (await collect(page.body)).to_bytes() == b"page"
        assert [(h.status, h.version, h.headers["link"]) for h in hints] == [
            (103, Version.HTTP_3, "</style.css>; rel=preload; as=style")
        ]


async def test_tcp_responses_advertise_http3(certs: CertFiles) -> None:
    async with (
        asgi_h3(certs) as port,
        Client(HttpsConnector(ssl_context=certs.client_context())) as client,
    ):
        response = await client.get(f"https://localhost:{port}/scope")
        assert response.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
        assert json.loads((await collect(response.body)).to_bytes())["http_version"] in ("1.1", "2")


async def test_the_app_hears_of_a_client_that_leaves_over_http3(certs: CertFiles) -> None:
    Disconnects.messages = []
    Disconnects.event = left = anyio.Event()
    async with asgi_h3(certs) as port, h3_client(certs, port) as client:
        response = await client.get(f"https://localhost:{port}/endless")
        assert response.version is Version.HTTP_3
        assert len(await response.body.__anext__()) > 0
        await response.body.aclose()  # STOP_SENDING
        with anyio.fail_after(5):
            await left.wait()
    assert Disconnects.messages == ["http.disconnect"]


def niquests_requests(port: int, cafile: str) -> list[tuple[int | None, Any]]:
    import niquests

    with niquests.Session(disable_http1=True, disable_http2=True) as session:
        cache: Any = session.quic_cache_layer
        cache.add_domain("localhost", port)  # prior knowledge: HTTP/3 on this port
        scope = session.get(f"https://localhost:{port}/scope", verify=cafile, timeout=10)
        echoed = session.post(
            f"https://localhost:{port}/echo", data=b"n" * 30_000, verify=cafile, timeout=10
        )
        return [
            (scope.http_version, scope.json()["http_version"]),
            (echoed.http_version, echoed.content == b"n" * 30_000),
        ]


async def test_starlette_over_http3_with_niquests(certs: CertFiles) -> None:
    async with asgi_h3(certs) as port:
        results = await anyio.to_thread.run_sync(niquests_requests, port, str(certs.cafile))
    assert results == [(30, "3"), (30, True)]


async def test_websocket_over_http3_with_our_websocket_client(certs: CertFiles) -> None:
    async with asgi_h3(certs) as port, h3_client(certs, port) as client:
        url = f"wss://localhost:{port}/ws"
        # Nothing open yet: asked for extended CONNECT, the pool sends it over HTTP/3.
        async with ws_connect(url, client=client, http2=True, subprotocols=["chat"]) as ws:
            assert ws.http_version is Version.HTTP_3
            assert ws.subprotocol == "chat"
            assert await ws.receive() == "http 3 wss"
            await ws.send("hello")
            assert await ws.receive() == "hello"
            await ws.send(b"\x00\x01" * 5000)
            assert await ws.receive() == b"\x00\x01" * 5000
        # The HTTP/3 connection is open now: chosen without asking.
        assert client.is_extended_connect_protocol_enabled(url.replace("wss", "https"))
        async with ws_connect(url, client=client) as ws:
            assert ws.http_version is Version.HTTP_3
            assert await ws.receive() == "http 3 wss"


#: Seconds aioquic's client (in a worker thread) may take in all: a bug fails
#: the test instead of leaving a thread that never returns.
PEER_TIMEOUT = 30.0


def aioquic_websocket(port: int, cafile: str) -> list[Any]:
    """Extended CONNECT on aioquic's H3 API, frames by wsproto's bare connection."""
    from aioquic.asyncio.client import connect
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import QuicEvent
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import BytesMessage, CloseConnection, Message, TextMessage

    seen: list[Any] = []
    ws = Connection(ConnectionType.CLIENT)

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)
            self.messages: asyncio.Queue[Any] = asyncio.Queue()

        def quic_event_received(self, event: QuicEvent) -> None:
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived):
                    self.messages.put_nowait(dict(h3_event.headers))
                elif isinstance(h3_event, DataReceived):
                    ws.receive_data(h3_event.data)
                    for ws_event in ws.events():
                        self.messages.put_nowait(ws_event)

    async def main() -> None:
        config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
        config.load_verify_locations(cafile)
        async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as c:
            client: Any = c
            # The server's SETTINGS (ENABLE_CONNECT_PROTOCOL) first, as RFC 9220 asks.
            # Polled: aioquic's protocol offers no event for it.
            while client.h3.received_settings is None:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # bounded by PEER_TIMEOUT
            seen.append(client.h3.received_settings.get(0x8))
            sid = client._quic.get_next_available_stream_id()
            client.h3.send_headers(
                sid,
                [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"https"),
                    (b":authority", b"localhost"),
                    (b":path", b"/ws"),
                    (b"sec-websocket-version", b"13"),
                ],
            )
            client.transmit()
            head = await asyncio.wait_for(client.messages.get(), 10)
            seen.append(head[b":status"])
            greeting = await asyncio.wait_for(client.messages.get(), 10)
            seen.append(greeting.data if isinstance(greeting, TextMessage) else greeting)
            client.h3.send_data(sid, ws.send(Message(data="over quic")), end_stream=False)
            client.transmit()
            answer = await asyncio.wait_for(client.messages.get(), 10)
            seen.append(answer.data if isinstance(answer, TextMessage | BytesMessage) else answer)
            client.h3.send_data(sid, ws.send(CloseConnection(code=1000)), end_stream=False)
            client.transmit()
            closing = await asyncio.wait_for(client.messages.get(), 10)
            seen.append(closing.code if isinstance(closing, CloseConnection) else closing)

    asyncio.run(asyncio.wait_for(main(), PEER_TIMEOUT))
    return seen


async def test_websocket_over_http3_with_aioquics_h3_client(certs: CertFiles) -> None:
    async with asgi_h3(certs) as port:
        seen = await anyio.to_thread.run_sync(aioquic_websocket, port, str(certs.cafile))
    assert seen == [1, b"200", "http 3 wss", "over quic", 1000]


# -- the command line -----------------------------------------------------------------------

RAW_APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        body = f"{scope['http_version']} {scope['scheme']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


def test_cli_run_http3_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, certs: CertFiles
) -> None:
    (tmp_path / "rawapp.py").write_text(RAW_APP)
    base = ["run", "--app-dir", str(tmp_path), "rawapp:app", "--port", "0"]
    assert main([*base, "--http3"]) == 2
    assert "--http3 needs --certfile" in capsys.readouterr().err
    tls = ["--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile), "--http3"]
    assert main([*base, *tls, "--uds", str(tmp_path / "s.sock")]) == 2
    assert "not with --uds or --fd" in capsys.readouterr().err


async def test_cli_run_http3_serves_the_app(certs: CertFiles, tmp_path: Path) -> None:
    (tmp_path / "rawapp.py").write_text(RAW_APP)
    args = ["--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile), "--http3"]
    command = [sys.executable, "-m", "hyper_util", "run", "--app-dir", str(tmp_path), "rawapp:app"]
    command += ["--port", "0", "--loop", "asyncio", "--no-access-log", *args]
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; its output is read in a thread
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        udp_port = None
        with anyio.fail_after(20):
            while udp_port is None:
                line = await anyio.to_thread.run_sync(proc.stderr.readline)
                assert line, f"no HTTP/3 line; exit {proc.poll()}"
                match = re.search(r"HTTP/3 on UDP port (\d+)", line)
                if match:
                    udp_port = int(match.group(1))
        async with h3_client(certs, udp_port) as client:
            response = await client.get(f"https://localhost:{udp_port}/")
            assert response.version is Version.HTTP_3
            assert (await collect(response.body)).to_bytes() == b"3 https"
        proc.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


PID_APP = textwrap.dedent(
    """
    import os

    async def app(scope, receive, send):
        assert scope["type"] == "http"
        body = f"{scope['http_version']} {os.getpid()}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


async def pids_over_quic(port: int, cafile: str, connections: int) -> list[set[int]]:
    """For each of ``connections`` new QUIC connections, the worker PIDs that answered it."""
    from hyper_core import quic
    from hyper_core.client.conn import http3

    answered: list[set[int]] = []
    for _ in range(connections):
        async with (
            quic.connect("127.0.0.1", port, server_name="localhost", cafile=cafile) as q,
            anyio.create_task_group() as tg,
        ):
            sender, driver = await http3.handshake(q)
            tg.start_soon(driver.serve)
            pids = set()
            for _ in range(3):
                response = await sender.send_request(Request("GET", f"https://localhost:{port}/"))
                version, pid = (await collect(response.body)).to_bytes().split()
                assert version == b"3"
                pids.add(int(pid))
            answered.append(pids)
            await sender.aclose()
    return answered


async def test_cli_run_http3_with_two_workers(certs: CertFiles, tmp_path: Path) -> None:
    """Each worker serves its own UDP socket; a client's packets all reach one worker."""
    (tmp_path / "pidapp.py").write_text(PID_APP)
    command = [sys.executable, "-m", "hyper_util", "run", "--app-dir", str(tmp_path), "pidapp:app"]
    command += ["--port", "0", "--workers", "2", "--no-access-log", "--http3"]
    command += ["--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile)]
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; its output is read in a thread
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stderr is not None
        ready = 0
        port = 0
        with anyio.fail_after(30):
            while ready < 2:  # both workers listen on UDP
                line = await anyio.to_thread.run_sync(proc.stderr.readline)
                assert line, f"exited with {proc.poll()}"
                match = re.search(r"HTTP/3 on UDP port (\d+)", line)
                if match:
                    port = int(match.group(1))
                    ready += 1
        with anyio.fail_after(60):
            answered = await pids_over_quic(port, str(certs.cafile), 16)
        # Every connection stayed with one worker; the two shared the clients.
        assert all(len(pids) == 1 for pids in answered)
        workers = set().union(*answered)
        assert len(workers) == 2
        # A worker that dies is replaced on its socket: new clients are served.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        with anyio.fail_after(60):
            answered = await pids_over_quic(port, str(certs.cafile), 16)
        assert all(len(pids) == 1 for pids in answered)
        now = set().union(*answered)
        assert victim not in now
        assert len(now) == 2
        proc.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
