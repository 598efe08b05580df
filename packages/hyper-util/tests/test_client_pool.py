"""The pooled Client's pool: reuse, idle expiry, limits, HTTP/2 sharing, retries, leaks.

Servers are hyper-core's own HTTP/1 and HTTP/2 server connections on
loopback sockets in the test's task group (or, where the test must control
the wire exactly, a few lines of raw sockets / h2). The client runs on a
``FakeTimer``, so idle expiry is checked without waiting: the clock moves
only when the test says so. Counts come from both ends: the server counts
the connections it accepted and still has open; the client reports its
pool through ``statistics()``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import pytest

from hyper_core.body import Body, Empty, Full, Incoming, collect
from hyper_core.client.conn import http2 as client_http2
from hyper_core.error import IncompleteMessageError
from hyper_core.http import Request, Response, Uri
from hyper_core.rt import IO
from hyper_core.server.conn import http1, http2
from hyper_core.testing import FakeTimer
from hyper_util.client.legacy import Client, Connected, HttpConnector

pytestmark = pytest.mark.anyio

Service = Callable[[Request[Incoming]], Awaitable[Response[Body]]]


@dataclass
class Server:
    port: int
    accepted: int = 0
    open: int = 0
    peak_open: int = 0
    connections: list[Any] = field(default_factory=list)
    closed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def serve(service: Service, *, h2: bool = False, **options: Any) -> AsyncIterator[Server]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server = Server(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server.accepted += 1
        server.open += 1
        server.peak_open = max(server.peak_open, server.open)
        try:
            builder: Any = http2.Builder(**options) if h2 else http1.Builder(**options)
            connection = builder.serve_connection(stream, service)
            server.connections.append(connection)
            await connection
        except Exception:
            pass
        finally:
            server.open -= 1
            server.closed.set()
            server.closed = anyio.Event()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield server
        tg.cancel_scope.cancel()


async def hello(request: Request[Incoming]) -> Response[Body]:
    await collect(request.body)
    return Response(200, body=Full(b"hello"))


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    # Polling is the point: the predicates read state no event announces.
    with anyio.fail_after(10):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.001)
    assert predicate(), what


async def get_text(client: Client, url: str) -> bytes:
    response = await client.get(url)
    return (await collect(response.body)).data


class Gate:
    """A service that holds every request until released, counting arrivals."""

    def __init__(self) -> None:
        self.arrived = 0
        self.release = anyio.Event()

    async def __call__(self, request: Request[Incoming]) -> Response[Body]:
        self.arrived += 1
        await self.release.wait()
        return Response(200, body=Full(b"done"))


# -- HTTP/1 reuse ---------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    async with serve(hello) as server, Client(timer=FakeTimer()) as client:
        for _ in range(10):
            assert await get_text(client, f"{server.base}/") == b"hello"
        stats = client.statistics()
    assert server.accepted == 1
    assert stats.connections_opened == 1
    assert stats.reused == 9
    assert stats.idle_connections == 1


async def test_unread_body_does_not_return_the_connection() -> None:
    async def big(request: Request[Incoming]) -> Response[Body]:
        return Response(200, body=Full(b"x" * 1_000_000))

    async with serve(big) as server, Client(timer=FakeTimer()) as client:
        response = await client.get(f"{server.base}/")
        assert client.statistics().idle_connections == 0
        await response.body.aclose()  # closed early: the connection is closed
        await wait_until(lambda: server.open == 0, "the server saw the close")
        assert client.statistics().open_connections == 0
        assert await get_text(client, f"{server.base}/") == b"x" * 1_000_000
        assert client.statistics().idle_connections == 1
    assert server.accepted == 2


async def test_body_without_content_returns_connection_before_request_returns() -> None:
    async def empty(request: Request[Incoming]) -> Response[Body]:
        return Response(204, body=Empty())

    async with serve(empty) as server, Client(timer=FakeTimer()) as client:
        response = await client.head(f"{server.base}/")
        assert response.status == 204
        assert client.statistics().idle_connections == 1
        await client.delete(f"{server.base}/")
    assert server.accepted == 1


async def test_connected_info_is_on_the_response() -> None:
    async with serve(hello) as server, Client(timer=FakeTimer()) as client:
        response = await client.get(f"{server.base}/")
        await collect(response.body)
    connected = response.extensions.get(Connected)
    assert connected is not None
    assert connected.remote_addr == ("127.0.0.1", server.port)
    assert connected.local_addr is not None
    assert connected.local_addr[0] == "127.0.0.1"
    assert not connected.alpn_h2
    assert not connected.proxied


# -- idle expiry and limits -----------------------------------------------------------


async def test_idle_connection_expires_with_the_fake_timer() -> None:
    timer = FakeTimer()
    async with serve(hello) as server, Client(timer=timer, pool_idle_timeout=90) as client:
        await get_text(client, f"{server.base}/")
        timer.advance(89.5)
        await anyio.wait_all_tasks_blocked()
        assert client.statistics().idle_connections == 1
        assert server.open == 1
        timer.advance(1)
        await wait_until(lambda: server.open == 0, "the idle connection was closed")
        assert client.statistics().open_connections == 0
        await get_text(client, f"{server.base}/")
    assert server.accepted == 2


async def test_expired_connection_is_not_reused_even_before_the_reaper_runs() -> None:
    timer = FakeTimer()
    async with serve(hello) as server, Client(timer=timer, pool_idle_timeout=5) as client:
        await get_text(client, f"{server.base}/")
        timer.advance(10)  # no checkpoint: the reaper has not run yet
        await get_text(client, f"{server.base}/")
    assert server.accepted == 2


async def test_max_idle_per_host_closes_the_extra_connections() -> None:
    gate = Gate()
    async with (
        serve(gate) as server,
        Client(timer=FakeTimer(), pool_max_idle_per_host=2) as client,
    ):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(get_text, client, f"{server.base}/")
            await wait_until(lambda: gate.arrived == 4, "four requests in flight")
            assert server.accepted == 4
            gate.release.set()
        assert client.statistics().idle_connections == 2
        await wait_until(lambda: server.open == 2, "two connections closed")


async def test_max_idle_total_caps_idle_connections_of_every_origin() -> None:
    gate = Gate()
    async with (
        serve(gate) as a,
        serve(gate) as b,
        Client(timer=FakeTimer(), pool_max_idle=3) as client,
    ):
        async with anyio.create_task_group() as tg:
            for server in (a, a, b, b):
                tg.start_soon(get_text, client, f"{server.base}/")
            await wait_until(lambda: gate.arrived == 4, "four requests in flight")
            gate.release.set()
        assert client.statistics().idle_connections == 3
        await wait_until(lambda: a.open + b.open == 3, "one connection closed")


async def test_max_idle_total_applies_to_idle_http2_connections() -> None:
    async with (
        serve(hello, h2=True) as a,
        serve(hello, h2=True) as b,
        Client(timer=FakeTimer(), http2_only=True, pool_max_idle=1) as client,
    ):
        assert await get_text(client, f"{a.base}/") == b"hello"
        assert await get_text(client, f"{b.base}/") == b"hello"
        stats = client.statistics()
        assert (stats.idle_connections, stats.http2_connections) == (1, 1)
        await wait_until(lambda: a.open + b.open == 1, "the second idle connection closed")


async def test_max_idle_zero_disables_pooling() -> None:
    async with serve(hello) as server, Client(timer=FakeTimer(), pool_max_idle_per_host=0) as c:
        for _ in range(3):
            await get_text(c, f"{server.base}/")
        assert c.statistics().idle_connections == 0
    assert server.accepted == 3


async def test_total_cap_queues_requests_and_hands_connections_over() -> None:
    gate = Gate()
    async with serve(gate) as server, Client(timer=FakeTimer(), max_connections=2) as client:
        results: list[bytes] = []

        async def one() -> None:
            results.append(await get_text(client, f"{server.base}/"))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
            await wait_until(lambda: client.statistics().waiting == 4, "four wait")
            await wait_until(lambda: gate.arrived == 2, "two in flight")
            assert client.statistics().open_connections == 2
            gate.release.set()
        assert results == [b"done"] * 6
    assert server.accepted == 2
    assert server.peak_open == 2


async def test_total_cap_evicts_an_idle_connection_of_another_origin() -> None:
    async with (
        serve(hello) as a,
        serve(hello) as b,
        Client(timer=FakeTimer(), max_connections=1) as client,
    ):
        await get_text(client, f"{a.base}/")
        await get_text(client, f"{b.base}/")
        await wait_until(lambda: a.open == 0, "a's idle connection made room")
        assert client.statistics().open_connections == 1


# -- HTTP/1 versus HTTP/2 under concurrency ---------------------------------------------


async def test_concurrent_http1_requests_open_connections() -> None:
    gate = Gate()
    async with serve(gate) as server, Client(timer=FakeTimer()) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(get_text, client, f"{server.base}/")
            await wait_until(lambda: gate.arrived == 5, "five in flight")
            gate.release.set()
        assert client.statistics().idle_connections == 5
    assert server.accepted == 5


async def test_concurrent_http2_requests_share_one_connection() -> None:
    gate = Gate()
    async with (
        serve(gate, h2=True) as server,
        Client(timer=FakeTimer(), http2_only=True) as client,
    ):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(get_text, client, f"{server.base}/")
            await wait_until(lambda: gate.arrived == 20, "twenty streams in flight")
            assert client.statistics().http2_connections == 1
            gate.release.set()
        response = await client.get(f"{server.base}/")
        assert response.version.value == "HTTP/2"
        await collect(response.body)
    assert server.accepted == 1


async def test_second_http2_connection_when_stream_slots_are_full() -> None:
    gate = Gate()
    async with (
        serve(gate, h2=True, max_concurrent_streams=3) as server,
        Client(timer=FakeTimer(), http2_only=True, http2_max_connections_per_host=2) as client,
    ):
        await get_text_after_release(client, server, gate)  # learns the server's limit
        gate.release = anyio.Event()
        gate.arrived = 0
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(get_text, client, f"{server.base}/")
            await wait_until(lambda: gate.arrived == 6, "six streams on two connections")
            gate.release.set()
        assert client.statistics().http2_connections == 2
    assert server.accepted == 2


async def get_text_after_release(client: Client, server: Server, gate: Gate) -> None:
    gate.release.set()
    await get_text(client, f"{server.base}/")


class AlpnH2Connector:
    """Pretends TLS negotiated h2 (hyper-tls's job) over a plain h2c socket."""

    def __init__(self) -> None:
        self.inner = HttpConnector()

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        io, connected = await self.inner.connect(uri)
        return io, connected.replace(alpn_h2=True)


async def test_alpn_h2_makes_the_origin_a_shared_http2_entry() -> None:
    gate = Gate()
    async with (
        serve(gate, h2=True) as server,
        Client(AlpnH2Connector(), timer=FakeTimer()) as client,
    ):
        gate.release.set()
        response = await client.get(f"{server.base}/")
        await collect(response.body)
        connected = response.extensions.get(Connected)
        assert connected is not None
        assert connected.alpn_h2
        gate.release = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(get_text, client, f"{server.base}/")
            await wait_until(lambda: gate.arrived == 6, "five more streams")
            gate.release.set()
    assert server.accepted == 1


async def test_http2_connection_leaves_the_pool_on_goaway() -> None:
    async with (
        serve(hello, h2=True) as server,
        Client(timer=FakeTimer(), http2_only=True) as client,
    ):
        await get_text(client, f"{server.base}/")
        server.connections[0].graceful_shutdown()
        await wait_until(lambda: client.statistics().http2_connections == 0, "GOAWAY seen")
        assert await get_text(client, f"{server.base}/") == b"hello"
        assert client.statistics().http2_connections == 1
    assert server.accepted == 2


async def test_http2_connection_leaves_the_pool_when_pings_go_unanswered() -> None:
    timer = FakeTimer()
    frozen = anyio.Event()

    class FreezingIO:
        """The server side of a pipe that stops reading once ``frozen`` is set."""

        def __init__(self, io: IO) -> None:
            self.io = io

        async def receive(self, max_bytes: int = 65536, /) -> bytes:
            data = await self.io.receive(max_bytes)
            if frozen.is_set():  # what arrives from now on is never read (a PING)
                await anyio.sleep_forever()
            return data

        async def send(self, item: bytes, /) -> None:
            await self.io.send(item)

        async def send_eof(self) -> None:
            await self.io.send_eof()

        async def aclose(self) -> None:
            await self.io.aclose()

    from hyper_core.testing import memory_pipe

    opened = 0

    async with anyio.create_task_group() as server_tg:

        class PipeConnector:
            async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
                nonlocal opened
                opened += 1
                client_io, server_io = memory_pipe()
                conn = http2.Builder().serve_connection(FreezingIO(server_io), hello)
                server_tg.start_soon(conn.serve)
                return client_io, Connected()

        builder = client_http2.Builder(
            keep_alive_interval=10, keep_alive_timeout=5, keep_alive_while_idle=True, timer=timer
        )
        async with Client(PipeConnector(), timer=timer, http2_only=True, http2=builder) as client:
            await get_text(client, "http://pipe/")
            frozen.set()
            await anyio.wait_all_tasks_blocked()
            timer.advance(10)  # the PING goes out
            await anyio.wait_all_tasks_blocked()
            timer.advance(5)  # and is never answered
            await wait_until(lambda: client.statistics().http2_connections == 0, "dropped")
            frozen = anyio.Event()
            assert await get_text(client, "http://pipe/") == b"hello"
        server_tg.cancel_scope.cancel()
    assert opened == 2


# -- retries --------------------------------------------------------------------------


@asynccontextmanager
async def raw_server(
    handler: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> AsyncIterator[Server]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server = Server(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server.accepted += 1
        async with stream:
            await handler(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield server
        tg.cancel_scope.cancel()


async def read_head(stream: anyio.abc.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive()
        data += chunk
    return data


async def answers_once_then_closes_on_the_next_request(stream: anyio.abc.SocketStream) -> None:
    """A server whose keep-alive timeout fires just as the next request arrives."""
    await read_head(stream)
    await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    try:
        await read_head(stream)
    except anyio.EndOfStream:
        return


async def test_idempotent_request_is_retried_after_the_keep_alive_race() -> None:
    async with (
        raw_server(answers_once_then_closes_on_the_next_request) as server,
        Client(timer=FakeTimer()) as client,
    ):
        assert await get_text(client, f"{server.base}/") == b"ok"
        assert await get_text(client, f"{server.base}/") == b"ok"
        assert client.statistics().retries == 1
    assert server.accepted == 2


async def test_post_is_not_retried_once_written() -> None:
    async with (
        raw_server(answers_once_then_closes_on_the_next_request) as server,
        Client(timer=FakeTimer()) as client,
    ):
        assert await get_text(client, f"{server.base}/") == b"ok"
        with pytest.raises(IncompleteMessageError):
            await client.post(f"{server.base}/", b"data")
        assert client.statistics().retries == 0


async def test_no_retry_when_disabled() -> None:
    async with (
        raw_server(answers_once_then_closes_on_the_next_request) as server,
        Client(timer=FakeTimer(), retry_canceled_requests=False) as client,
    ):
        await get_text(client, f"{server.base}/")
        with pytest.raises(IncompleteMessageError):
            await client.get(f"{server.base}/")


async def test_server_closing_idle_connections_is_transparent() -> None:
    async def answer_then_close(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async with raw_server(answer_then_close) as server, Client(timer=FakeTimer()) as client:
        for _ in range(5):
            assert await get_text(client, f"{server.base}/") == b"ok"
            # The close reaches the client while the connection is idle.
            await wait_until(lambda: client.statistics().open_connections == 0, "closed")
    assert server.accepted == 5


async def h2_refuses_second_stream(stream: anyio.abc.SocketStream) -> None:
    """HTTP/2 server that answers stream 1, then GOAWAYs (last id 1) on the next one."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    await stream.send(conn.data_to_send())
    while True:
        try:
            data = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived) and event.stream_id == 1:
                conn.send_headers(1, [(":status", "200"), ("content-length", "2")])
                conn.send_data(1, b"ok", end_stream=True)
            elif isinstance(event, h2.events.RequestReceived):
                conn.close_connection(last_stream_id=1)
                await stream.send(conn.data_to_send())
                return
        await stream.send(conn.data_to_send())


async def test_http2_request_refused_by_goaway_is_retried_even_for_post() -> None:
    async with (
        raw_server(h2_refuses_second_stream) as server,
        Client(timer=FakeTimer(), http2_only=True) as client,
    ):
        assert await get_text(client, f"{server.base}/") == b"ok"
        response = await client.post(f"{server.base}/", b"payload")
        assert (await collect(response.body)).data == b"ok"
        assert client.statistics().retries == 1
    assert server.accepted == 2


# -- no leaks -------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# asyncio's debug mode (the root conftest's default) makes each of the 10,000
# round trips about five times slower; this test counts resources, it does not
# look for the mistakes debug mode catches, which the other tests cover.
@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")],
)
async def test_no_connection_or_task_leak_after_10000_requests() -> None:
    total, concurrency = 10_000, 20
    async with serve(hello) as server:
        await anyio.wait_all_tasks_blocked()
        fds_before = open_fds()
        tasks_before = len(anyio.get_running_tasks())
        async with Client(timer=FakeTimer()) as client:
            remaining = total

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    response = await client.get(f"{server.base}/")
                    assert (await collect(response.body)).data == b"hello"

            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker)
            stats = client.statistics()
            assert stats.connections_opened <= concurrency
            assert stats.open_connections == stats.idle_connections <= concurrency
            assert stats.reused == total - stats.connections_opened
            assert stats.waiting == 0
            # One driver per open connection, plus the idle reaper.
            names = [task.name or "" for task in anyio.get_running_tasks()]
            drivers = [n for n in names if n.startswith("hyper_util connection")]
            assert len(drivers) == stats.open_connections
            assert names.count("hyper_util Client idle reaper") == 1
        await wait_until(lambda: server.open == 0, "every connection closed")
        assert server.accepted == stats.connections_opened
        # Not a leak: trio's write batch keeps one task per run from its
        # first held write on (hyper_util.rt._trio_stream).
        tasks_after = [t for t in anyio.get_running_tasks() if t.name != "hyper_util write batch"]
        assert len(tasks_after) == tasks_before
        assert open_fds() == fds_before
