"""Helpers for the HTTP/3 tests: in-memory pairs, certificates, a loopback server, a lossy relay.

What belongs here: only what several HTTP/3 test files need: our client and
server over the in-memory QUIC double (``h3``), our HTTP/3 server on a real
UDP socket (``serve_h3``), certificates from trustme, and
:class:`LossyRelay`, a UDP relay that drops and reorders a fraction of
datagrams (seeded, so a failure replays). Every socket is on
127.0.0.1; every loop is bounded by the test's timeouts.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import trustme

from hyper_core import quic
from hyper_core.body import Body, Incoming
from hyper_core.client.conn import http3 as client_http3
from hyper_core.http import Request, Response
from hyper_core.server.conn import http3
from hyper_core.testing import quic_pair

Service = Callable[[Request[Incoming]], Awaitable[Response[Body]]]

#: Seconds a peer client run in a worker thread (aioquic's own, on its own
#: event loop) may take in all: a bug then fails the test with TimeoutError
#: instead of leaving a thread that never returns (the run would hang).
PEER_TIMEOUT = 30.0


class Served:
    """What happened to the server connection."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.done = anyio.Event()
        self.connection: http3.Connection | None = None


@asynccontextmanager
async def h3(
    service: Service,
    *,
    server: dict[str, Any] | None = None,
    stream_window: int = 65536,
    max_streams: int = 100,
) -> AsyncIterator[tuple[client_http3.SendRequest, Served]]:
    client_quic, server_quic = quic_pair(stream_window=stream_window, max_streams=max_streams)
    served = Served()

    async def run_server() -> None:
        conn = http3.Builder(**(server or {})).serve_connection(server_quic, service)
        served.connection = conn
        try:
            await conn
        except Exception as exc:
            served.error = exc
        finally:
            served.done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server)
        sender, driver = await client_http3.handshake(client_quic)
        tg.start_soon(driver.serve)
        try:
            yield sender, served
        finally:
            await sender.aclose()
            with anyio.move_on_after(5):
                await served.done.wait()
            tg.cancel_scope.cancel()


@dataclass
class Certs:
    """A CA and a certificate for ``localhost`` and 127.0.0.1, as files."""

    ca_file: str
    cert_file: str
    key_file: str


def make_certs(directory: Path) -> Certs:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = Certs(
        str(directory / "ca.pem"), str(directory / "cert.pem"), str(directory / "key.pem")
    )
    ca.cert_pem.write_to_path(paths.ca_file)
    for blob in cert.cert_chain_pems:
        blob.write_to_path(paths.cert_file, append=True)
    cert.private_key_pem.write_to_path(paths.key_file)
    return paths


@dataclass
class H3Server:
    """A running HTTP/3 server: its port, and how each connection ended."""

    port: int
    endings: list[BaseException | None] = field(default_factory=list)
    connections: list[http3.Connection] = field(default_factory=list)
    ended: anyio.Event = field(default_factory=anyio.Event)


@asynccontextmanager
async def serve_h3(
    service: Service,
    certs: Certs,
    *,
    builder: dict[str, Any] | None = None,
    endpoint: dict[str, Any] | None = None,
) -> AsyncIterator[H3Server]:
    async with quic.listen(
        "127.0.0.1", 0, certfile=certs.cert_file, keyfile=certs.key_file, **(endpoint or {})
    ) as listener:
        server = H3Server(listener.local_address[1])

        async def serve_one(connection: quic.AioquicConnection) -> None:
            conn = http3.Builder(**(builder or {})).serve_connection(connection, service)
            server.connections.append(conn)
            try:
                await conn
            except Exception as exc:
                server.endings.append(exc)
            else:
                server.endings.append(None)
            server.ended.set()
            server.ended = anyio.Event()

        async with anyio.create_task_group() as tg:

            async def accept() -> None:
                async for connection in listener:
                    tg.start_soon(serve_one, connection)

            tg.start_soon(accept)
            yield server
            tg.cancel_scope.cancel()


class LossyRelay:
    """Forwards UDP datagrams between one client and a server, dropping and reordering some.

    Args:
        target_port: The server's port on 127.0.0.1.
        drop: Fraction of datagrams dropped, each direction.
        reorder: Fraction held back and sent after the next datagram.
        seed: For the random choices (a failing run replays).
    """

    def __init__(self, target_port: int, *, drop: float, reorder: float, seed: int = 7) -> None:
        self.target_port = target_port
        self.drop = drop
        self.reorder = reorder
        self.random = random.Random(seed)
        self.dropped = 0
        self.reordered = 0
        self.forwarded = 0
        self.blackhole = False  # drop everything (a vanished peer)
        self.blackhole_downstream = False  # drop everything the server sends
        self.port = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LossyRelay]:
        front = await anyio.create_udp_socket(local_host="127.0.0.1", local_port=0)
        back = await anyio.create_connected_udp_socket("127.0.0.1", self.target_port)
        self.port = front.extra(anyio.abc.SocketAttribute.local_port)
        client: list[tuple[str, int]] = []
        async with front, back, anyio.create_task_group() as tg:

            async def upstream() -> None:
                held: bytes | None = None
                async for data, addr in front:
                    if not client:
                        client.append((addr[0], addr[1]))
                    packets, held = self._shuffle(data, held, self.blackhole)
                    for packet in packets:
                        await back.send(packet)

            async def downstream() -> None:
                held: bytes | None = None
                async for data in back:
                    if not client:
                        continue
                    lost = self.blackhole or self.blackhole_downstream
                    packets, held = self._shuffle(data, held, lost)
                    for packet in packets:
                        await front.sendto(packet, *client[0])

            tg.start_soon(upstream)
            tg.start_soon(downstream)
            yield self
            tg.cancel_scope.cancel()

    def _shuffle(
        self, data: bytes, held: bytes | None, lost: bool
    ) -> tuple[list[bytes], bytes | None]:
        """What to forward now, and the datagram held back (each direction holds its own)."""
        if lost:
            self.dropped += 1
            return [], held
        roll = self.random.random()
        if roll < self.drop:
            self.dropped += 1
            return ([held] if held is not None else []), None
        if roll < self.drop + self.reorder and held is None:
            self.reordered += 1
            return [], data
        self.forwarded += 1
        return ([data, held] if held is not None else [data]), None
