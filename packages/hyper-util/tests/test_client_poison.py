"""Poisoned connections (hyper-util's ``Connected::poison``) never leave the pool again.

A poison mark set by the application (through the response's
``Connected``) or by a connector (on the ``Connected`` it returns) must
keep the pool from handing that connection out again, on HTTP/1 and on
shared HTTP/2 connections, whether it is marked mid-body, idle in the
pool, or in use by other streams; and the connection must be closed, its
slot given to whoever waits. The server is hyper-core's own, counting the
connections it accepted and still has open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import pytest

from hyper_core.body import Body, Full, Incoming, StreamBody, collect
from hyper_core.http import Request, Response, Uri
from hyper_core.rt import IO
from hyper_core.server.conn import http1, http2
from hyper_core.testing import FakeTimer
from hyper_util.client.legacy import Client, Connected, HttpConnector

pytestmark = pytest.mark.anyio


@dataclass
class Server:
    port: int
    accepted: int = 0
    open: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


async def service(request: Request[Incoming]) -> Response[Body]:
    await collect(request.body)
    if request.uri.path == "/stream":

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 65536
                await anyio.sleep(0.001)

        return Response(200, body=StreamBody(chunks()))
    return Response(200, body=Full(b"hello"))


@asynccontextmanager
async def serve(*, h2: bool = False) -> AsyncIterator[Server]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server = Server(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server.accepted += 1
        server.open += 1
        try:
            builder: Any = http2.Builder() if h2 else http1.Builder()
            await builder.serve_connection(stream, service)
        except Exception:
            pass
        finally:
            server.open -= 1

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield server
        tg.cancel_scope.cancel()


async def closed_by_the_client(server: Server, expected_open: int) -> None:
    with anyio.fail_after(10):
        while server.open != expected_open:  # noqa: ASYNC110 - the count has no event
            await anyio.sleep(0.001)


async def get(client: Client, url: str) -> Connected:
    response = await client.get(url)
    await collect(response.body)
    connected = response.extensions.get(Connected)
    assert connected is not None
    return connected


class Poisoning:
    """A connector that marks every connection it opens as not reusable."""

    def __init__(self) -> None:
        self._inner = HttpConnector()

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        io, connected = await self._inner.connect(uri)
        connected.poison()
        return io, connected


def test_the_mark_is_shared_by_copies() -> None:
    connected = Connected(remote_addr=("127.0.0.1", 80))
    copy = connected.replace(alpn_h2=True)
    before = connected.is_poisoned
    copy.poison()
    assert (before, connected.is_poisoned, copy.is_poisoned) == (False, True, True)
    assert connected == Connected(remote_addr=("127.0.0.1", 80))  # not part of equality


async def test_poisoned_after_the_body_the_idle_connection_is_closed() -> None:
    async with serve() as server, Client(timer=FakeTimer()) as client:
        first = await get(client, server.url)
        assert await get(client, server.url) is not None
        assert server.accepted == 1  # reused while healthy
        first.poison()  # now idle in the pool
        again = await get(client, server.url)
        assert not again.is_poisoned
        assert server.accepted == 2
        await closed_by_the_client(server, 1)
        assert client.statistics().open_connections == 1


async def test_poisoned_mid_body_the_body_finishes_then_the_connection_closes() -> None:
    async with serve() as server, Client(timer=FakeTimer()) as client:
        response = await client.get(server.url + "stream")
        connected = response.extensions.get(Connected)
        assert connected is not None
        connected.poison()
        assert len((await collect(response.body)).data) == 4 * 65536
        await closed_by_the_client(server, 0)
        await get(client, server.url)
        assert server.accepted == 2
        assert client.statistics().reused == 0


async def test_a_connector_can_poison_every_connection() -> None:
    async with serve() as server, Client(Poisoning(), timer=FakeTimer()) as client:
        for _ in range(3):
            assert (await get(client, server.url)).is_poisoned
        assert server.accepted == 3
        await closed_by_the_client(server, 0)
        assert client.statistics().open_connections == 0


async def test_the_freed_slot_goes_to_a_waiting_request() -> None:
    async with (
        serve() as server,
        Client(timer=FakeTimer(), max_connections=1) as client,
    ):
        holding = await client.get(server.url + "stream")
        results: list[Connected] = []

        async def waiting() -> None:
            results.append(await get(client, server.url))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiting)
                await anyio.wait_all_tasks_blocked()
                assert client.statistics().waiting == 1
                connected = holding.extensions.get(Connected)
                assert connected is not None
                connected.poison()
                await collect(holding.body)
        assert len(results) == 1
        assert server.accepted == 2


async def test_http2_streams_in_flight_finish_and_new_ones_go_elsewhere() -> None:
    async with serve(h2=True) as server, Client(timer=FakeTimer(), http2_only=True) as client:
        streaming = await client.get(server.url + "stream")
        connected = streaming.extensions.get(Connected)
        assert connected is not None
        connected.poison()
        fresh = await get(client, server.url)  # while the first stream is still open
        assert not fresh.is_poisoned
        assert server.accepted == 2
        assert len((await collect(streaming.body)).data) == 4 * 65536
        await closed_by_the_client(server, 1)
        assert await get(client, server.url) is fresh  # the healthy one is shared
        assert server.accepted == 2
