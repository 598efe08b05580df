"""HTTP/3 interoperability with implementations no one here wrote.

What belongs here: our server answering aioquic's own HTTP/3 client (written
here directly on ``aioquic.h3.connection.H3Connection``) and niquests (its
HTTP/3 is qh3, a separate QUIC stack); our client against hypercorn's
HTTP/3 server (``hypercorn[h3]``, a subprocess). Loopback UDP, certificates
from trustme. A missing peer is a failure, never a skip.

The peers are asyncio or thread based; they run in a worker thread (with
their own event loop) so our side runs on every backend.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 - aioquic's own client is asyncio-only; it runs in a thread
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from h3_support import PEER_TIMEOUT, Certs, LossyRelay, make_certs, serve_h3

from hyper_core import quic
from hyper_core.body import Body, Full, Incoming, collect
from hyper_core.client.conn import http3 as client_http3
from hyper_core.http import Headers, Request, Response, Version

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(Path(tmp_path_factory.mktemp("h3interop")))


async def echo(request: Request[Incoming]) -> Response[Body]:
    body = await collect(request.body)
    headers = Headers({"x-path": request.uri.path_and_query, "x-version": str(request.version)})
    if body.trailers is not None:
        headers.append("x-trailer", body.trailers.get("x-check") or "")
    return Response(200, headers=headers, body=Full(body.to_bytes()))


# -- aioquic's own HTTP/3 client --------------------------------------------------------


def aioquic_client(port: int, ca_file: str, count: int) -> list[dict[str, Any]]:
    """Send ``count`` concurrent POSTs (the last with trailers) with aioquic's H3 API."""
    from aioquic.asyncio.client import connect
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import QuicEvent

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)
            self.events: dict[int, list[H3Event]] = {}
            self.waiters: dict[int, asyncio.Future[list[H3Event]]] = {}

        def quic_event_received(self, event: QuicEvent) -> None:
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived | DataReceived):
                    sid = h3_event.stream_id
                    self.events.setdefault(sid, []).append(h3_event)
                    if h3_event.stream_ended:
                        self.waiters.pop(sid).set_result(self.events.pop(sid))

        async def post(self, path: bytes, body: bytes, trailers: bool) -> list[H3Event]:
            sid = self._quic.get_next_available_stream_id()
            future: asyncio.Future[list[H3Event]] = asyncio.get_running_loop().create_future()
            self.waiters[sid] = future
            self.h3.send_headers(
                sid,
                [
                    (b":method", b"POST"),
                    (b":scheme", b"https"),
                    (b":authority", b"localhost"),
                    (b":path", path),
                ],
            )
            self.h3.send_data(sid, body, end_stream=not trailers)
            if trailers:
                self.h3.send_headers(sid, [(b"x-check", b"ok")], end_stream=True)
            self.transmit()
            return await future

    async def main() -> list[dict[str, Any]]:
        config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
        config.load_verify_locations(ca_file)
        async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as c:
            client: Any = c
            replies = await asyncio.gather(
                *(
                    client.post(f"/{i}".encode(), b"d" * (i * 1000), i == count - 1)
                    for i in range(count)
                )
            )
        results = []
        for events in replies:
            head = next(e for e in events if isinstance(e, HeadersReceived))
            data = b"".join(e.data for e in events if isinstance(e, DataReceived))
            results.append({"headers": dict(head.headers), "body": data})
        return results

    return asyncio.run(asyncio.wait_for(main(), PEER_TIMEOUT))


async def test_aioquic_h3_client_against_our_server(certs: Certs) -> None:
    async with serve_h3(echo, certs) as server:
        results = await anyio.to_thread.run_sync(aioquic_client, server.port, certs.ca_file, 30)
    for i, result in enumerate(results):
        headers = result["headers"]
        assert headers[b":status"] == b"200"
        assert headers[b"x-path"] == f"/{i}".encode()
        assert headers[b"x-version"] == b"HTTP/3"
        assert result["body"] == b"d" * (i * 1000)
    assert results[-1]["headers"][b"x-trailer"] == b"ok"
    assert server.endings in ([], [None])


async def test_aioquic_h3_client_through_a_lossy_path(certs: Certs) -> None:
    """A tenth of the datagrams lost and as many reordered, each way: all 30 exchanges finish."""
    async with serve_h3(echo, certs) as server:
        relay = LossyRelay(server.port, drop=0.1, reorder=0.1, seed=11)
        async with relay.running():
            results = await anyio.to_thread.run_sync(aioquic_client, relay.port, certs.ca_file, 30)
    assert [result["body"] for result in results] == [b"d" * (i * 1000) for i in range(30)]
    assert relay.dropped > 10


# -- niquests (qh3) ---------------------------------------------------------------------


def niquests_client(port: int, ca_file: str) -> list[tuple[int, int | None, str, bytes]]:
    import niquests

    out = []
    with niquests.Session(disable_http1=True, disable_http2=True) as session:
        cache: Any = session.quic_cache_layer
        cache.add_domain("localhost", port)  # prior knowledge: HTTP/3 on this port
        for i in range(5):
            response = session.post(
                f"https://localhost:{port}/n{i}", data=b"q" * 5000 * i, verify=ca_file, timeout=10
            )
            out.append(
                (
                    response.status_code or 0,
                    response.http_version,
                    response.headers.get("x-path", ""),
                    response.content or b"",
                )
            )
    return out


async def test_niquests_against_our_server(certs: Certs) -> None:
    async with serve_h3(echo, certs) as server:
        results = await anyio.to_thread.run_sync(niquests_client, server.port, certs.ca_file)
    assert results == [(200, 30, f"/n{i}", b"q" * 5000 * i) for i in range(5)]


# -- hypercorn's HTTP/3 server --------------------------------------------------------------

APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"x-http-version", scope["http_version"].encode()),
                (b"x-path", scope["path"].encode()),
            ],
        })
        await send({"type": "http.response.body", "body": body or b"hello from hypercorn"})
    """
)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_hypercorn(certs: Certs, directory: Path, tcp: int, udp: int) -> subprocess.Popen[bytes]:
    (directory / "h3app.py").write_text(APP)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "--bind",
            f"127.0.0.1:{tcp}",
            "--quic-bind",
            f"127.0.0.1:{udp}",
            "--certfile",
            certs.cert_file,
            "--keyfile",
            certs.key_file,
            "h3app:app",
        ],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(directory)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


async def wait_for_quic(port: int, certs: Certs) -> None:
    """Wait until a QUIC handshake with ``port`` succeeds (the server started)."""
    with anyio.fail_after(20):
        while True:
            try:
                async with quic.connect(
                    "127.0.0.1", port, cafile=certs.ca_file, handshake_timeout=0.5
                ):
                    return
            except quic.QuicConnectionClosed:
                await anyio.sleep(0.2)


async def test_our_client_against_hypercorn(certs: Certs, tmp_path: Path) -> None:
    udp = _free_port(socket.SOCK_DGRAM)
    process = start_hypercorn(certs, tmp_path, _free_port(socket.SOCK_STREAM), udp)
    try:
        await wait_for_quic(udp, certs)
        async with (
            quic.connect("127.0.0.1", udp, cafile=certs.ca_file) as q,
            anyio.create_task_group() as tg,
        ):
            sender, driver = await client_http3.handshake(q)
            tg.start_soon(driver.serve)
            response = await sender.send_request(Request("GET", f"https://localhost:{udp}/hi"))
            assert response.version is Version.HTTP_3
            assert response.headers["x-http-version"] == "3"
            assert (await collect(response.body)).to_bytes() == b"hello from hypercorn"
            payload = bytes(range(256)) * 2048  # 512 KiB
            bodies: dict[int, bytes] = {}

            async def post(i: int) -> None:
                reply = await sender.send_request(
                    Request("POST", f"https://localhost:{udp}/p{i}", body=Full(payload))
                )
                assert reply.headers["x-path"] == f"/p{i}"
                bodies[i] = (await collect(reply.body)).to_bytes()

            with anyio.fail_after(30):
                async with anyio.create_task_group() as requests:
                    for i in range(10):
                        requests.start_soon(post, i)
            assert bodies == dict.fromkeys(range(10), payload)
            await sender.aclose()
    finally:
        stop(process)


# -- the extra is optional ----------------------------------------------------------------

MISSING = textwrap.dedent(
    """
    import sys
    sys.modules["aioquic"] = None  # as if not installed
    import hyper_core, hyper_core.quic, hyper_core.server.conn.http3, hyper_core.client.conn.http3
    import anyio
    async def main():
        try:
            async with hyper_core.quic.listen("127.0.0.1", 0, certfile="x"):
                pass
        except ImportError as exc:
            print(exc)
    anyio.run(main)
    """
)


def test_without_aioquic_import_works_and_use_names_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", MISSING], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'hyper-core[http3]'" in result.stdout
