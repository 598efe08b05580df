"""hyper-core's HTTP/1 server over hyper_util.rt's streams, answered by httpx.

What belongs here: the end-to-end check that the IO the listener hands out
(the asyncio fast path on asyncio, anyio's stream on trio) carries real HTTP
traffic: small answers, a 1 MiB upload echoed back (backpressure both ways),
keep-alive reuse, and connection info read from the stream.

Strategy: ``create_tcp_listener("127.0.0.1", 0)`` with the default
``fast=None`` serves in the test's task group; each connection runs
``http1.Builder().serve_connection(stream, service)``. httpx's
``AsyncClient`` (which runs on both backends) is the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx
import pytest
from anyio.abc import SocketAttribute

from hyper_core.body import Body, Full, Incoming, collect
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1
from hyper_util.rt import AsyncioSocketStream, create_tcp_listener

pytestmark = pytest.mark.anyio

UPLOAD = bytes(range(256)) * 4096  # 1 MiB
CLIENT_TIMEOUT = 30.0


class Server:
    def __init__(self) -> None:
        self.connections: list[anyio.abc.SocketStream] = []
        self.peers: list[str] = []
        self.errors: list[HyperError] = []

    async def service(self, request: Request[Incoming]) -> Response[Body]:
        if request.uri.path == "/echo":
            data = (await collect(request.body)).to_bytes()
            return Response(200, body=Full(data))
        return Response(200, headers={"content-type": "text/plain"}, body=Full(b"Hello, World!"))

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections.append(stream)
        self.peers.append(stream.extra(SocketAttribute.remote_address)[0])
        try:
            await http1.Builder().serve_connection(stream, self.service)
        except HyperError as exc:
            self.errors.append(exc)


@asynccontextmanager
async def running(server: Server) -> AsyncIterator[str]:
    async with (
        await create_tcp_listener("127.0.0.1", 0) as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, server.handle)
        yield f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
        tg.cancel_scope.cancel()


async def test_http1_server_over_the_runtime_io(anyio_backend_name: str) -> None:
    server = Server()
    async with (
        running(server) as base,
        httpx.AsyncClient(base_url=base, trust_env=False, timeout=CLIENT_TIMEOUT) as client,
    ):
        for _ in range(3):
            response = await client.get("/")
            assert response.status_code == 200
            assert response.text == "Hello, World!"
            assert response.headers["content-type"] == "text/plain"
        echoed = await client.post("/echo", content=UPLOAD)
        assert echoed.status_code == 200
        assert echoed.content == UPLOAD
    # Keep-alive: one connection carried all four exchanges.
    assert len(server.connections) == 1
    assert isinstance(server.connections[0], AsyncioSocketStream) is (
        anyio_backend_name == "asyncio"
    )
    assert server.peers == ["127.0.0.1"]
    assert server.errors == []


async def test_many_concurrent_clients() -> None:
    server = Server()
    async with (
        running(server) as base,
        httpx.AsyncClient(
            base_url=base,
            trust_env=False,
            timeout=CLIENT_TIMEOUT,
            limits=httpx.Limits(max_connections=20),
        ) as client,
    ):
        bodies: list[bytes] = []

        async def fetch(i: int) -> None:
            response = await client.post("/echo", content=str(i).encode() * 1000)
            bodies.append(response.content)

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(fetch, i)
    assert sorted(bodies) == sorted(str(i).encode() * 1000 for i in range(100))
    assert 1 <= len(server.connections) <= 20
    assert server.errors == []
