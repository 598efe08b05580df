"""``serve()`` on real sockets: both versions on one port, peers, limits, logging, signals.

What belongs here: black-box tests of :func:`hyper_util.server.serve` on
127.0.0.1 port 0 (and a Unix socket): hyper-core's clients, httpx (HTTP/1.1
and HTTP/2 prior knowledge), curl and h2load against the same port; the
connection cap; access logging; shutdown by event and by signal. A missing
peer binary fails the test: these peers are part of the test environment.

Strategy: ``await tg.start(serve, ...)`` returns the bound address; each
test stops the server through ``shutdown_event`` and checks that ``serve``
returned. External tools run through ``anyio.run_process`` with a timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from anyio.streams.tls import TLSListener

from hyper_core.body import Full, Incoming, collect
from hyper_core.client.conn import http1 as client_h1
from hyper_core.client.conn import http2 as client_h2
from hyper_core.http import Request, Response
from hyper_util.server import ACCESS_LOGGER, serve
from hyper_util.server.conn import auto

pytestmark = pytest.mark.anyio


async def app(request: Request[Incoming]) -> Response[Full]:
    body = (await collect(request.body)).to_bytes()
    text = f"{request.method} {request.uri.path_and_query} {request.version} {len(body)}"
    return Response(200, headers={"x-served-by": "hyper"}, body=Full(text.encode()))


@asynccontextmanager
async def running(service: Any = app, **options: Any) -> AsyncIterator[Any]:
    options.setdefault("port", 0)
    options.setdefault("handle_signals", False)
    stop = anyio.Event()
    done = anyio.Event()

    async def run(*, task_status: Any) -> None:
        try:
            await serve(service, shutdown_event=stop, task_status=task_status, **options)
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        address = await tg.start(run)
        yield address
        stop.set()
        with anyio.fail_after(10):
            await done.wait()


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is required for the interop tests and was not found"
    return path


async def run_tool(*argv: str) -> str:
    with anyio.fail_after(60):
        result = await anyio.run_process(list(argv), check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


async def test_task_status_reports_the_address() -> None:
    async with running() as address:
        host, port = address
        assert host == "127.0.0.1"
        assert port > 0


async def test_our_clients_http1_and_http2_on_the_same_port() -> None:
    async with running() as (host, port):
        stream = await anyio.connect_tcp(host, port)
        sender, conn = await client_h1.handshake(stream)
        async with anyio.create_task_group() as tg:
            tg.start_soon(conn.serve)
            response = await sender.send_request(
                Request("POST", "/one", headers={"host": "x"}, body=Full(b"12345"))
            )
            assert (await collect(response.body)).to_bytes() == b"POST /one HTTP/1.1 5"
            await sender.aclose()

        stream = await anyio.connect_tcp(host, port)
        sender2, conn2 = await client_h2.handshake(stream)
        async with anyio.create_task_group() as tg:
            tg.start_soon(conn2.serve)
            response = await sender2.send_request(Request("GET", f"http://{host}:{port}/two"))
            assert (await collect(response.body)).to_bytes() == b"GET /two HTTP/2 0"
            await sender2.aclose()
            tg.cancel_scope.cancel()


async def test_httpx_http1_and_http2_prior_knowledge_on_the_same_port() -> None:
    async with (
        running() as (host, port),
        httpx.AsyncClient() as h1,
        httpx.AsyncClient(http1=False, http2=True) as h2,
    ):
        url = f"http://{host}:{port}/p?q=1"
        r1 = await h1.post(url, content=b"x" * 1000)
        r2 = await h2.post(url, content=b"y" * 100_000)
        assert (r1.http_version, r1.text) == ("HTTP/1.1", "POST /p?q=1 HTTP/1.1 1000")
        assert (r2.http_version, r2.text) == ("HTTP/2", "POST /p?q=1 HTTP/2 100000")


async def test_curl_http1_http2_prior_knowledge_and_h2c_upgrade() -> None:
    builder = auto.Builder(h2c_upgrade=True)
    async with running(builder=builder) as (host, port):
        url = f"http://{host}:{port}/curl"
        out1 = await run_tool(tool("curl"), "-sS", "-i", "--http1.1", url)
        out2 = await run_tool(tool("curl"), "-sS", "-i", "--http2-prior-knowledge", url)
        out3 = await run_tool(tool("curl"), "-sS", "-i", "--http2", url)
        posted = await run_tool(
            tool("curl"), "-sS", "--http2-prior-knowledge", "--data-binary", "z" * 70_000, url
        )
    assert out1.startswith("HTTP/1.1 200")
    assert out1.endswith("GET /curl HTTP/1.1 0")
    assert out2.startswith("HTTP/2 200")
    assert "x-served-by: hyper" in out2
    assert out2.endswith("GET /curl HTTP/2 0")
    # The upgrade: a 101 on HTTP/1.1, then the response on HTTP/2 stream 1.
    assert out3.startswith("HTTP/1.1 101")
    assert "HTTP/2 200" in out3
    assert out3.endswith("GET /curl HTTP/2 0")
    assert posted == "POST /curl HTTP/2 70000"


async def test_h2load() -> None:
    async with running() as (host, port):
        out = await run_tool(tool("h2load"), "-c", "4", "-n", "200", f"http://{host}:{port}/")
    assert "200 succeeded, 0 failed, 0 errored" in out
    assert "status codes: 200 2xx" in out


async def test_h2load_http1() -> None:
    async with running() as (host, port):
        out = await run_tool(
            tool("h2load"), "--h1", "-c", "4", "-n", "200", f"http://{host}:{port}/"
        )
    assert "200 succeeded, 0 failed, 0 errored" in out


async def test_max_connections_backpressure() -> None:
    async with running(max_connections=2) as (host, port):
        request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
        first = await anyio.connect_tcp(host, port)
        second = await anyio.connect_tcp(host, port)
        for stream in (first, second):
            await stream.send(request)
            assert (await stream.receive()).startswith(b"HTTP/1.1 200")
        # The third connects (the kernel queues it) but is not served: no
        # error, no reset, just waiting.
        third = await anyio.connect_tcp(host, port)
        await third.send(request)
        with anyio.move_on_after(0.5) as waited:
            await third.receive()
        assert waited.cancelled_caught
        # A slot frees up: the waiting connection is accepted and served.
        await first.aclose()
        with anyio.fail_after(5):
            assert (await third.receive()).startswith(b"HTTP/1.1 200")
        await second.aclose()
        await third.aclose()


async def test_access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with running(access_log=True) as (host, port), httpx.AsyncClient() as client:
        await client.get(f"http://{host}:{port}/logged?a=b")
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(records) == 1
    record = records[0]
    message = record.getMessage()
    assert '"GET /logged?a=b HTTP/1.1" 200 ' in message
    assert message.startswith("127.0.0.1:")
    assert record.__dict__["status"] == 200
    assert record.__dict__["method"] == "GET"
    assert record.__dict__["size"] == len(b"GET /logged?a=b HTTP/1.1 0")


async def test_access_log_is_off_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with running() as (host, port), httpx.AsyncClient() as client:
        await client.get(f"http://{host}:{port}/")
    assert not [r for r in caplog.records if r.name == ACCESS_LOGGER]


async def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    async with running(uds=path) as address:
        assert address == path
        stream = await anyio.connect_unix(path)
        await stream.send(b"GET /uds HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        received = b""
        async with stream:
            while True:
                try:
                    received += await stream.receive()
                except anyio.EndOfStream:
                    break
        assert received.endswith(b"GET /uds HTTP/1.1 0")
    assert not await anyio.Path(path).exists()


async def test_given_listener() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with running(listener=listener) as (host, port), httpx.AsyncClient() as client:
        response = await client.get(f"http://{host}:{port}/given")
        assert response.text == "GET /given HTTP/1.1 0"


async def test_sigterm_shuts_down_gracefully() -> None:
    done = anyio.Event()

    async def run(*, task_status: Any) -> None:
        await serve(app, port=0, handle_signals=True, task_status=task_status)
        done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            host, port = await tg.start(run)
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://{host}:{port}/")).status_code == 200
            os.kill(os.getpid(), signal.SIGTERM)
            await done.wait()
    with pytest.raises(OSError, match=r"(?i)connect"):
        await anyio.connect_tcp(host, port)


async def test_a_request_arriving_just_after_the_shutdown_began_is_served() -> None:
    # A client's request follows its handshake by a moment; a shutdown that
    # starts in that moment must not close the connection with it unread.
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(
            partial(serve, app, port=0, shutdown_event=stop, handle_signals=False)
        )
        client = await anyio.connect_tcp(host, port)
        await anyio.sleep(0.05)  # accepted, no byte sent yet
        stop.set()
        await anyio.sleep(0.05)  # the shutdown has begun
        await client.send(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        with anyio.fail_after(10):
            with contextlib.suppress(anyio.EndOfStream):
                while True:
                    data += await client.receive()
        await client.aclose()
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert data.endswith(b"GET /late HTTP/1.1 0")


def test_bad_options() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="max_connections"):
            await serve(app, port=0, max_connections=0)

    anyio.run(main)


async def test_tls_listener_alpn_chooses_the_version(tmp_path: Path) -> None:
    # A TLS listener (anyio's, which only has serve()): the ALPN result
    # reaches the auto builder, so h2 is served without sniffing.
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    await run_tool(
        tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener = TLSListener(tcp, server_ctx, standard_compatible=False)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    async with (
        running(listener=listener),
        httpx.AsyncClient(verify=client_ctx, http2=True) as h2,
        httpx.AsyncClient(verify=client_ctx) as h1,
    ):
        r2 = await h2.get(f"https://127.0.0.1:{port}/tls")
        r1 = await h1.get(f"https://127.0.0.1:{port}/tls")
    assert (r2.http_version, r2.text) == ("HTTP/2", "GET /tls HTTP/2 0")
    assert (r1.http_version, r1.text) == ("HTTP/1.1", "GET /tls HTTP/1.1 0")
