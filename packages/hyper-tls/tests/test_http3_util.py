"""HTTP/3 in hyper-util, end to end with real TLS and QUIC on loopback.

What belongs here: ``serve(http3=True)`` (UDP beside TCP, ``Alt-Svc`` on
TCP responses, one graceful shutdown for both), the pooled ``Client``
speaking HTTP/3 by prior knowledge or after Alt-Svc discovery (one QUIC
connection per origin), its fallback to TCP when nothing answers on UDP,
and the command line's ``--http3`` for ``get`` and ``serve``. They live
with hyper-tls because discovery happens on HTTPS responses.
"""

from __future__ import annotations

import io
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute
from tls_helpers import CertFiles, version_app

from hyper_core import quic
from hyper_core.body import Full, Incoming, collect
from hyper_core.client.conn import http3
from hyper_core.http import Request, Response, Version
from hyper_tls import HttpsConnector, TlsAcceptor
from hyper_util.cli import main
from hyper_util.cli._get import GetOptions, run_get
from hyper_util.client.legacy import Client, ReadTimeoutError
from hyper_util.client.legacy._h3 import parse_alt_svc
from hyper_util.server import Supervisor, bind_udp_sockets, serve, split_sockets

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def h3_server(
    certs: CertFiles, service: Any = version_app, **options: Any
) -> AsyncIterator[tuple[int, anyio.Event]]:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            lambda task_status: serve(
                service,
                port=0,
                handle_signals=False,
                shutdown_event=stop,
                shutdown_timeout=10,
                tls=TlsAcceptor(certs.server_context()),
                http3=True,
                certfile=str(certs.certfile),
                keyfile=str(certs.keyfile),
                task_status=task_status,
                **options,
            )
        )
        try:
            yield address[1], stop
        finally:
            stop.set()


async def test_serve_listens_on_udp_and_advertises_it_on_tcp(certs: CertFiles) -> None:
    async with h3_server(certs) as (port, _):
        async with Client(HttpsConnector(ssl_context=certs.client_context())) as client:
            response = await client.get(f"https://localhost:{port}/")
            assert response.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
            assert (await collect(response.body)).to_bytes().startswith(b"HTTP/")
        async with (
            quic.connect("127.0.0.1", port, server_name="localhost", cafile=str(certs.cafile)) as q,
            anyio.create_task_group() as tg,
        ):
            sender, driver = await http3.handshake(q)
            tg.start_soon(driver.serve)
            reply = await sender.send_request(
                Request("POST", "https://localhost/", body=Full(b"x"))
            )
            assert (await collect(reply.body)).to_bytes() == b"HTTP/3 1"
            assert "alt-svc" not in reply.headers  # only TCP responses advertise it
            await sender.aclose()


async def test_graceful_shutdown_covers_http3_requests_in_flight(certs: CertFiles) -> None:
    started = anyio.Event()

    async def slow(request: Request[Incoming]) -> Response[Full]:
        started.set()
        await anyio.sleep(0.3)
        return Response(200, body=Full(b"finished"))

    async with h3_server(certs, slow) as (port, stop):  # noqa: SIM117 - port is needed below
        async with (
            quic.connect("127.0.0.1", port, server_name="localhost", cafile=str(certs.cafile)) as q,
            anyio.create_task_group() as tg,
        ):
            sender, driver = await http3.handshake(q)
            tg.start_soon(driver.serve)

            async def stop_when_started() -> None:
                await started.wait()
                stop.set()

            tg.start_soon(stop_when_started)
            reply = await sender.send_request(Request("GET", "https://localhost/"))
            assert (await collect(reply.body)).to_bytes() == b"finished"


async def test_client_discovers_http3_from_alt_svc_and_pools_one_connection(
    certs: CertFiles,
) -> None:
    async with (
        h3_server(certs) as (port, _),
        Client(
            HttpsConnector(ssl_context=certs.client_context()),
            http3=True,
            http3_cafile=str(certs.cafile),
        ) as client,
    ):
        first = await client.get(f"https://localhost:{port}/")
        assert first.version is not Version.HTTP_3  # nothing known yet: TCP
        await collect(first.body)
        versions: list[bytes] = []
        with anyio.fail_after(10):
            while not versions or not versions[-1].startswith(b"HTTP/3"):
                response = await client.get(f"https://localhost:{port}/")
                versions.append((await collect(response.body)).to_bytes())
                await anyio.sleep(0.02)  # the QUIC handshake runs meanwhile

        async def one() -> None:
            response = await client.get(f"https://localhost:{port}/")
            assert (await collect(response.body)).to_bytes() == b"HTTP/3 0"

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(one)
        h3 = client._h3
        assert h3 is not None
        assert h3.open_connections == 1


async def test_client_falls_back_to_tcp_when_udp_is_silent(certs: CertFiles) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            lambda task_status: serve(
                version_app,
                port=0,
                handle_signals=False,
                shutdown_event=stop,
                tls=TlsAcceptor(certs.server_context()),
                task_status=task_status,
            )
        )
        port = address[1]
        async with Client(
            HttpsConnector(ssl_context=certs.client_context()),
            http3=True,
            http3_origins=["*"],  # prior knowledge, but nothing listens on UDP
            http3_cafile=str(certs.cafile),
        ) as client:
            with anyio.fail_after(10):
                response = await client.get(f"https://localhost:{port}/")
            assert (await collect(response.body)).to_bytes() in (b"HTTP/2 0", b"HTTP/1.1 0")
            with anyio.fail_after(1):  # now known broken: straight to TCP
                again = await client.get(f"https://localhost:{port}/")
            await collect(again.body)
        stop.set()


def test_alt_svc_parsing() -> None:
    assert parse_alt_svc('h3=":443"; ma=3600, h3-29=":443"') == [("h3", "", 443, 3600.0)]
    assert parse_alt_svc('h2="alt.example:8443", h3="alt.example:8443"') == [
        ("h3", "alt.example", 8443, 86400.0)
    ]
    assert parse_alt_svc("clear") is None
    assert parse_alt_svc('h3=":notaport"') == []


async def test_cli_get_http3_against_cli_style_server(certs: CertFiles) -> None:
    async with h3_server(certs) as (port, _):
        out = io.BytesIO()
        err = io.StringIO()
        options = GetOptions(
            url=f"https://localhost:{port}/",
            http3=True,
            verbose=True,
            cacert=str(certs.cafile),
            progress=False,
        )
        status = await run_get(options, stdout=out, stderr=err)
        assert status == 0
        assert out.getvalue() == b"HTTP/3 0"
        assert "< HTTP/3 200" in err.getvalue()


def test_cli_serve_http3_needs_a_certificate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--http3", "--port", "0"]) == 2
    assert "--http3 needs --certfile" in capsys.readouterr().err
    assert main(["get", "--http3", "http://localhost/"]) == 2
    assert "https://" in capsys.readouterr().err


async def test_read_timeout_applies_to_http3_requests(certs: CertFiles) -> None:
    async def slow(request: Request[Incoming]) -> Response[Full]:
        await anyio.sleep(5)
        return Response(200, body=Full(b"late"))

    async with h3_server(certs, slow) as (port, _):  # noqa: SIM117 - port is needed below
        async with Client(
            HttpsConnector(ssl_context=certs.client_context()),
            http3=True,
            http3_origins=[f"localhost:{port}"],
            http3_cafile=str(certs.cafile),
            read_timeout=0.3,
        ) as client:
            with anyio.fail_after(5), pytest.raises(ReadTimeoutError):
                await client.get(f"https://localhost:{port}/")
            assert client._h3 is not None
            assert client._h3.open_connections == 1  # it went over HTTP/3


async def test_make_service_sees_the_quic_connection_like_a_tcp_stream(certs: CertFiles) -> None:
    seen: list[tuple[str, int]] = []

    def make_service(io: Any) -> Any:
        seen.append(io.extra(SocketAttribute.remote_address))
        return version_app

    async with (
        h3_server(certs, make_service=make_service) as (port, _),
        quic.connect("127.0.0.1", port, server_name="localhost", cafile=str(certs.cafile)) as q,
        anyio.create_task_group() as tg,
    ):
        sender, driver = await http3.handshake(q)
        tg.start_soon(driver.serve)
        reply = await sender.send_request(Request("GET", "https://localhost/"))
        assert (await collect(reply.body)).to_bytes() == b"HTTP/3 0"
        await sender.aclose()
    # The service of an HTTP/3 connection was made for it, with the client's address.
    assert len(seen) == 1
    host, client_port = seen[0]
    assert host == "127.0.0.1"
    assert client_port > 0


async def test_cli_serve_http3_with_workers(certs: CertFiles) -> None:
    command = [sys.executable, "-m", "hyper_util", "serve", "--port", "0", "--workers", "2"]
    command += ["--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile), "--http3"]
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; its output is read in a thread
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        match = re.search(
            r"listening on https://127.0.0.1:(\d+) \(.*HTTP/3 on UDP.*2 workers", line
        )
        assert match, line
        port = int(match.group(1))
        with anyio.fail_after(30):
            for _ in range(6):  # new QUIC connections: spread over the workers
                while True:  # until the workers are up
                    try:
                        async with (
                            quic.connect(
                                "127.0.0.1",
                                port,
                                server_name="localhost",
                                cafile=str(certs.cafile),
                                handshake_timeout=1,
                            ) as q,
                            anyio.create_task_group() as tg,
                        ):
                            sender, driver = await http3.handshake(q)
                            tg.start_soon(driver.serve)
                            response = await sender.send_request(
                                Request("GET", f"https://localhost:{port}/x")
                            )
                            head = (await collect(response.body)).to_bytes()
                            assert head.startswith(b"GET /x HTTP/3")
                            await sender.aclose()
                        break
                    except quic.QuicConnectionClosed:
                        await anyio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_bind_udp_sockets_form_one_reuseport_group() -> None:
    with socket.socket() as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = bind_udp_sockets("127.0.0.1", port, 3)
        try:
            assert {s.getsockname() for s in udp} == {("127.0.0.1", port)}
            assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in udp)
            streams, datagram = split_sockets([tcp, udp[0]])
            assert (streams, datagram) == ([tcp], udp[0])
            with pytest.raises(ValueError, match="one UDP socket"):
                split_sockets(udp)
        finally:
            for sock in udp:
                sock.close()
    with pytest.raises(ValueError, match="port number"):
        bind_udp_sockets("127.0.0.1", 0, 2)


def _never_run(sockets: list[socket.socket]) -> None:  # pragma: no cover - not started
    raise AssertionError


def test_supervisor_gives_each_slot_its_own_socket() -> None:
    udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    supervisor = Supervisor(_never_run, [], workers=2, worker_sockets=udp, handle_signals=False)
    slots = supervisor._slots
    assert [slot.own for slot in slots] == [[udp[0]], [udp[1]]]
    supervisor._run("fewer")  # the removed slot's socket waits for the next one
    assert supervisor._spare == [udp[1], udp[2]]
    assert supervisor._new_slot().own == [udp[1]]
    supervisor._close_sockets()
    supervisor._commands.close()
    assert all(sock.fileno() == -1 for sock in udp)
