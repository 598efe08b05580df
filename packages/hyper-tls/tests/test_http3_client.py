"""The pooled client's HTTP/3: the race with TCP, body timeouts, statistics, closing, httpx.

What belongs here: prior knowledge racing QUIC against TCP (happy eyeballs:
QUIC alone for ``RACE_DELAY``, then the first that works), HTTP/3 response
bodies under the read and total timeouts, ``ClientStatistics``' HTTP/3
counters, ``Client.aclose`` closing QUIC connections politely (GOAWAY,
then CONNECTION_CLOSE with H3_NO_ERROR), and the httpx transports over
HTTP/3. A UDP relay that delays datagrams makes QUIC slow on purpose.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import httpx
import pytest
from tls_helpers import CertFiles, version_app

from hyper_core import quic
from hyper_core.body import Body, Incoming, StreamBody, collect
from hyper_core.http import Request, Response, Uri, Version
from hyper_core.rt import IO
from hyper_core.server.conn import http3
from hyper_tls import HttpsConnector, TlsAcceptor
from hyper_util.client.httpx import AsyncHyperTransport, HyperTransport
from hyper_util.client.legacy import Client, ReadTimeoutError, TotalTimeoutError
from hyper_util.client.legacy._h3 import RACE_DELAY
from hyper_util.client.legacy.connect import Connected
from hyper_util.server import serve

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def servers(
    certs: CertFiles, service: Any = version_app, *, http3_: bool = True
) -> AsyncIterator[int]:
    """HTTPS on TCP (and, with ``http3_``, HTTP/3 on UDP) on one port number."""
    stop = anyio.Event()
    options: dict[str, Any] = {}
    if http3_:
        options = {"http3": True, "certfile": str(certs.certfile), "keyfile": str(certs.keyfile)}
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            lambda task_status: serve(
                service,
                port=0,
                handle_signals=False,
                shutdown_event=stop,
                shutdown_timeout=5,
                tls=TlsAcceptor(certs.server_context()),
                task_status=task_status,
                **options,
            )
        )
        try:
            yield address[1]
        finally:
            stop.set()


class DelayRelay:
    """UDP on ``port`` forwarded to 127.0.0.1:``target``, each datagram held ``delay`` s."""

    def __init__(self, port: int, target: int, delay: float) -> None:
        self.port = port
        self.target = target
        self.delay = delay

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        front = await anyio.create_udp_socket(local_host="127.0.0.1", local_port=self.port)
        back = await anyio.create_connected_udp_socket("127.0.0.1", self.target)
        client: list[tuple[str, int]] = []
        up_in, up_out = anyio.create_memory_object_stream[tuple[float, bytes]](1000)
        down_in, down_out = anyio.create_memory_object_stream[tuple[float, bytes]](1000)
        async with front, back, up_in, up_out, down_in, down_out, anyio.create_task_group() as tg:

            async def upstream() -> None:
                async for data, addr in front:
                    client[:] = [(addr[0], addr[1])]
                    up_in.send_nowait((anyio.current_time() + self.delay, data))

            async def downstream() -> None:
                async for data in back:
                    down_in.send_nowait((anyio.current_time() + self.delay, data))

            async def deliver_up() -> None:
                async for due, data in up_out:
                    await anyio.sleep(max(0.0, due - anyio.current_time()))
                    await back.send(data)

            async def deliver_down() -> None:
                async for due, data in down_out:
                    await anyio.sleep(max(0.0, due - anyio.current_time()))
                    await front.sendto(data, *client[0])

            for task in (upstream, downstream, deliver_up, deliver_down):
                tg.start_soon(task)
            yield
            tg.cancel_scope.cancel()


def h3_client(certs: CertFiles, port: int, **options: Any) -> Client:
    return Client(
        options.pop("connector", None) or HttpsConnector(ssl_context=certs.client_context()),
        http3=True,
        http3_origins=[f"localhost:{port}"],
        http3_cafile=str(certs.cafile),
        **options,
    )


async def test_prior_knowledge_sends_the_first_request_over_http3_and_counts_it(
    certs: CertFiles,
) -> None:
    async with servers(certs) as port, h3_client(certs, port) as client:
        for i in range(3):
            response = await client.post(f"https://localhost:{port}/", b"x" * i)
            assert response.version is Version.HTTP_3
            assert (await collect(response.body)).to_bytes() == f"HTTP/3 {i}".encode()
        stats = client.statistics()
        assert (stats.http3_connections, stats.http3_requests) == (1, 3)
        assert stats.open_connections == 0  # no TCP connection was needed


async def test_silent_udp_costs_the_race_delay_not_the_handshake_timeout(
    certs: CertFiles,
) -> None:
    async with servers(certs, http3_=False) as port, h3_client(certs, port) as client:
        start = time.monotonic()
        response = await client.get(f"https://localhost:{port}/")
        elapsed = time.monotonic() - start
        assert response.version is not Version.HTTP_3
        await collect(response.body)
        # TCP joined after RACE_DELAY; the 3 s handshake timeout was not waited for.
        assert RACE_DELAY <= elapsed < 1.5
        assert client.statistics().http3_requests == 0


async def test_tcp_carries_the_request_when_quic_is_slow_then_http3_takes_over(
    certs: CertFiles,
) -> None:
    async with servers(certs, http3_=False) as tcp_port, servers(certs) as quic_port:
        relay = DelayRelay(tcp_port, quic_port, delay=0.5)  # each QUIC round trip: 1 s
        async with relay.running(), h3_client(certs, tcp_port) as client:
            start = time.monotonic()
            first = await client.get(f"https://localhost:{tcp_port}/")
            assert time.monotonic() - start < 0.9
            assert first.version is not Version.HTTP_3
            await collect(first.body)
            with anyio.fail_after(10):  # the handshake went on: later requests use it
                while True:
                    later = await client.get(f"https://localhost:{tcp_port}/")
                    await collect(later.body)
                    if later.version is Version.HTTP_3:
                        break
                    await anyio.sleep(0.05)


class SlowConnector:
    """HTTPS, 2 s late: TCP loses any race."""

    def __init__(self, inner: HttpsConnector) -> None:
        self.inner = inner
        self.cancelled = 0

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        try:
            await anyio.sleep(2)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        return await self.inner.connect(uri)


async def test_quic_wins_the_race_when_tcp_is_slower(certs: CertFiles) -> None:
    async with servers(certs, http3_=False) as tcp_port, servers(certs) as quic_port:
        relay = DelayRelay(tcp_port, quic_port, delay=0.2)  # QUIC done after ~0.4 s
        connector = SlowConnector(HttpsConnector(ssl_context=certs.client_context()))
        async with relay.running(), h3_client(certs, tcp_port, connector=connector) as client:
            start = time.monotonic()
            response = await client.get(f"https://localhost:{tcp_port}/")
            assert response.version is Version.HTTP_3
            assert time.monotonic() - start < 1.8
            await collect(response.body)
            assert connector.cancelled == 1  # the losing TCP connect was stopped
            assert client.statistics().open_connections == 0


async def stalls_after_the_first_chunk(request: Request[Incoming]) -> Response[Body]:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await anyio.sleep(30)
        yield b"never"

    return Response(200, body=StreamBody(chunks()))


async def test_read_timeout_applies_to_each_piece_of_an_http3_body(certs: CertFiles) -> None:
    async with (
        servers(certs, stalls_after_the_first_chunk) as port,
        h3_client(certs, port, read_timeout=0.3) as client,
    ):
        response = await client.get(f"https://localhost:{port}/")
        assert response.version is Version.HTTP_3
        assert await response.body.__anext__() == b"first"
        with anyio.fail_after(5), pytest.raises(ReadTimeoutError):
            await response.body.__anext__()
        # The stream was abandoned, the connection is fine.
        response = await client.get(f"https://localhost:{port}/")
        assert await response.body.__anext__() == b"first"
        await response.body.aclose()


async def test_total_timeout_bounds_an_http3_body(certs: CertFiles) -> None:
    async with (
        servers(certs, stalls_after_the_first_chunk) as port,
        # The total timeout also covers the QUIC handshake, which has taken
        # over 0.5 s on a loaded CI machine; the body stalls for 30 s.
        h3_client(certs, port, timeout=3) as client,
    ):
        response = await client.get(f"https://localhost:{port}/")
        with anyio.fail_after(10), pytest.raises(TotalTimeoutError):
            await collect(response.body)


async def test_aclose_says_goodbye_with_goaway_and_h3_no_error(certs: CertFiles) -> None:
    ended: list[tuple[quic.AioquicConnection, http3.Connection, BaseException | None]] = []
    done = anyio.Event()
    async with (
        quic.listen("127.0.0.1", 0, certfile=certs.certfile, keyfile=certs.keyfile) as listener,
        anyio.create_task_group() as tg,
    ):
        port = listener.local_address[1]

        async def serve_one(connection: quic.AioquicConnection) -> None:
            error: BaseException | None = None
            served = http3.Builder().serve_connection(connection, version_app)
            try:
                await served
            except Exception as exc:
                error = exc
            ended.append((connection, served, error))
            done.set()

        async def accept() -> None:
            async for connection in listener:
                tg.start_soon(serve_one, connection)

        tg.start_soon(accept)
        client = h3_client(certs, port)
        async with client:
            response = await client.get(f"https://localhost:{port}/")
            assert response.version is Version.HTTP_3
            await collect(response.body)
            start = time.monotonic()
        assert time.monotonic() - start < 2  # briefly: the server acknowledged at once
        with anyio.fail_after(5):
            await done.wait()
        tg.cancel_scope.cancel()
    (connection, served, error), *_ = ended
    assert error is None
    assert served._driver._core.goaway_received == 0  # the client's GOAWAY (no push ids)
    closed = connection.closed
    assert closed is not None
    assert (closed.by_peer, closed.application, closed.error_code) == (True, True, 0x100)


async def test_httpx_async_transport_over_http3(certs: CertFiles) -> None:
    async with servers(certs) as port:
        transport = AsyncHyperTransport(
            verify=certs.client_context(), http3=True, http3_origins=[f"localhost:{port}"]
        )
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post(f"https://localhost:{port}/", content=b"abc")
            assert response.extensions["http_version"] == b"HTTP/3"
            assert response.http_version == "HTTP/3"
            assert response.content == b"HTTP/3 3"


def sync_httpx(port: int, cafile: str) -> tuple[bytes, bytes]:
    context = ssl.create_default_context(cafile=cafile)  # httpx's advice for a CA file
    transport = HyperTransport(verify=context, http3=True, http3_origins=["*"])
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(f"https://localhost:{port}/")
        return response.extensions["http_version"], response.content


async def test_httpx_sync_transport_over_http3_trusts_verify(certs: CertFiles) -> None:
    async with servers(certs) as port:
        result = await anyio.to_thread.run_sync(sync_httpx, port, str(certs.cafile))
    assert result == (b"HTTP/3", b"HTTP/3 0")


async def test_httpx_http3_refuses_an_untrusted_certificate(certs: CertFiles) -> None:
    async with servers(certs) as port:
        # Default verify (certifi): our test CA is not trusted, for QUIC nor for TCP.
        transport = AsyncHyperTransport(http3=True, http3_origins=["*"])
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"https://localhost:{port}/")


async def test_an_unexpected_quic_failure_falls_back_to_tcp_and_keeps_the_client(
    certs: CertFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Seen for real: with warnings as errors, aioquic parsing the CA bundle
    # raised a CryptographyDeprecationWarning inside the QUIC task, which
    # ended the client's task group and failed every request after it.
    class Broken:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def __aenter__(self) -> Any:
            raise RuntimeError("a bug inside the QUIC stack")

        async def __aexit__(self, *exc_info: object) -> None:
            pass

    monkeypatch.setattr(quic, "connect", Broken)
    async with servers(certs) as port, h3_client(certs, port) as client:
        for _ in range(2):
            with anyio.fail_after(10):
                response = await client.get(f"https://localhost:{port}/")
            assert response.version is not Version.HTTP_3
            await collect(response.body)
    assert any(
        r.levelname == "WARNING" and "using TCP" in r.getMessage() and r.exc_info
        for r in caplog.records
    )


def test_statistics_default_to_no_http3() -> None:
    stats = Client().statistics()
    assert (stats.http3_connections, stats.http3_requests) == (0, 0)
