"""Every timeout of the pooled Client, each with its own error class.

The client runs on ``FakeTimer(autojump=True)``: when every task is blocked
(a server that never answers), the clock jumps to the next deadline, so a
30-second timeout takes no wall time. The peers are in-memory pipes (a
connector that hands out one end and serves the other with hyper-core's
server, or leaves it unread) or loopback sockets.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from hyper_core.body import Body, Full, Incoming, StreamBody, collect
from hyper_core.error import HyperError
from hyper_core.error import TimeoutError as HyperTimeoutError
from hyper_core.http import Request, Response, Uri
from hyper_core.rt import IO
from hyper_core.server.conn import http1
from hyper_core.testing import FakeTimer, memory_pipe
from hyper_util.client.legacy import (
    Client,
    ClientError,
    Connected,
    ConnectError,
    ConnectTimeoutError,
    HttpConnector,
    PoolTimeoutError,
    ReadTimeoutError,
    Timeouts,
    TotalTimeoutError,
    WriteTimeoutError,
)

pytestmark = pytest.mark.anyio

Service = Callable[[Request[Incoming]], Awaitable[Response[Body]]]


class PipeConnector:
    """Each connect makes an in-memory pipe; the far end runs ``service`` (or nothing)."""

    def __init__(self, tg: anyio.abc.TaskGroup, service: Service | None) -> None:
        self.tg = tg
        self.service = service
        self.opened = 0
        self.far_ends: list[IO] = []

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        self.opened += 1
        client_io, server_io = memory_pipe(max_buffer=65536)
        self.far_ends.append(server_io)
        if self.service is not None:
            self.tg.start_soon(self.serve, server_io, self.service)
        return client_io, Connected()

    @staticmethod
    async def serve(io: IO, service: Service) -> None:
        # The client gives up on purpose in these tests: the server's
        # "client went away" error is expected.
        with contextlib.suppress(HyperError):
            await http1.Builder().serve_connection(io, service)


@asynccontextmanager
async def pipe_client(service: Service | None, **options: Any) -> AsyncIterator[Client]:
    async with FakeTimer(autojump=True) as timer, anyio.create_task_group() as tg:
        connector = PipeConnector(tg, service)
        async with Client(connector, timer=timer, **options) as client:
            yield client
        tg.cancel_scope.cancel()


async def never(request: Request[Incoming]) -> Response[Body]:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def stalls_after_first_chunk(request: Request[Incoming]) -> Response[Body]:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await anyio.sleep_forever()

    return Response(200, body=StreamBody(chunks()))


async def hello(request: Request[Incoming]) -> Response[Body]:
    await collect(request.body)
    return Response(200, body=Full(b"hello"))


def test_timeout_errors_are_hyper_timeouts_and_client_errors() -> None:
    for kind in (
        ConnectTimeoutError,
        PoolTimeoutError,
        ReadTimeoutError,
        WriteTimeoutError,
        TotalTimeoutError,
    ):
        assert issubclass(kind, HyperTimeoutError)
        assert issubclass(kind, TimeoutError)
        assert issubclass(kind, ClientError)
    assert issubclass(ConnectTimeoutError, ConnectError)


async def test_connect_timeout() -> None:
    class BlackHole:
        async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

    async with (
        FakeTimer(autojump=True) as timer,
        Client(BlackHole(), timer=timer, connect_timeout=30) as client,
    ):
        with pytest.raises(ConnectTimeoutError):
            await client.get("http://example.invalid/")
        assert timer.now() == 30
        assert client.statistics().open_connections == 0


async def test_http_connector_connect_timeout_on_a_full_backlog() -> None:
    # A listener that never accepts, with its backlog filled by the first
    # connections: further SYNs are dropped and connect() hangs.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        async with FakeTimer(autojump=True) as timer:
            connector = HttpConnector(connect_timeout=5, timer=timer)
            with pytest.raises(ConnectTimeoutError):
                await connector.connect(Uri(f"http://127.0.0.1:{port}/"))
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_pool_timeout() -> None:
    async with (
        pipe_client(never, max_connections=1, pool_timeout=7) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.get, "http://pipe/held")
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(PoolTimeoutError):
            await client.get("http://pipe/waits")
        assert client.statistics().waiting == 0
        tg.cancel_scope.cancel()


async def test_read_timeout_waiting_for_the_head_closes_the_connection() -> None:
    async with pipe_client(never, read_timeout=10) as client:
        with pytest.raises(ReadTimeoutError):
            await client.get("http://pipe/")
        await anyio.wait_all_tasks_blocked()
        assert client.statistics().open_connections == 0


async def test_read_timeout_between_body_chunks() -> None:
    async with pipe_client(stalls_after_first_chunk, read_timeout=10) as client:
        response = await client.get("http://pipe/")
        assert await response.body.frame() is not None
        with pytest.raises(ReadTimeoutError):
            await response.body.frame()
        await anyio.wait_all_tasks_blocked()
        assert client.statistics().open_connections == 0


async def test_write_timeout_when_the_peer_does_not_read() -> None:
    async with pipe_client(None, write_timeout=5) as client:
        with pytest.raises(WriteTimeoutError):
            await client.post("http://pipe/", b"x" * 1_000_000)


async def _endless_upload() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 16384


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_write_timeout_for_a_streamed_body(http2: bool) -> None:
    # The server never reads: the upload stalls once the pipe is full, and
    # the write timeout (not the absent read timeout) must end the request.
    async with pipe_client(None, write_timeout=5, http2_only=http2) as client:
        request = Request("POST", "http://pipe/", body=StreamBody(_endless_upload()))
        with anyio.fail_after(10), pytest.raises(WriteTimeoutError):
            await client.request(request)


async def test_write_timeout_for_a_streamed_body_over_loopback() -> None:
    # A real socket (on asyncio, hyper-util's fast stream, whose
    # interrupt_receive stops the read waiting for the response head). The
    # server is a listening socket nobody accepts from: the kernel completes
    # the handshake and buffers what it can, then the client's writes block.
    # (An anyio listener on asyncio would read without bound instead.)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        async with Client(write_timeout=0.5) as client:
            request = Request(
                "POST", f"http://127.0.0.1:{port}/", body=StreamBody(_endless_upload())
            )
            with anyio.fail_after(10), pytest.raises(WriteTimeoutError):
                await client.request(request)


async def test_write_timeout_for_a_streamed_body_after_the_response_head() -> None:
    # An early answer, then the server stops reading: the body read sees
    # the write timeout instead of waiting for data that never comes.
    async def answers_at_once(request: Request[Incoming]) -> Response[Body]:
        async def never_ends() -> AsyncIterator[bytes]:
            yield b"early"
            await anyio.sleep_forever()

        return Response(200, body=StreamBody(never_ends()))

    async with pipe_client(answers_at_once, write_timeout=5) as client:
        request = Request("POST", "http://pipe/", body=StreamBody(_endless_upload()))
        with anyio.fail_after(10):
            response = await client.request(request)
            with pytest.raises(WriteTimeoutError):
                await collect(response.body)


async def test_total_timeout_covers_the_body() -> None:
    async with pipe_client(stalls_after_first_chunk, timeout=20) as client:
        response = await client.get("http://pipe/")
        assert await response.body.frame() is not None
        with pytest.raises(TotalTimeoutError):
            await collect(response.body)


async def test_total_timeout_wins_when_it_comes_first() -> None:
    async with pipe_client(never, timeout=3, read_timeout=10) as client:
        with pytest.raises(TotalTimeoutError):
            await client.get("http://pipe/")


async def test_no_timeout_fires_on_a_quick_exchange() -> None:
    async with pipe_client(
        hello, timeout=1, read_timeout=1, write_timeout=1, pool_timeout=1, connect_timeout=1
    ) as client:
        for _ in range(3):
            response = await client.post("http://pipe/", b"data")
            assert (await collect(response.body)).data == b"hello"
        assert client.statistics().connections_opened == 1


# -- per-request limits: the Timeouts extension --------------------------------------------


def with_timeouts(url: str, timeouts: Timeouts, body: bytes | None = None) -> Request[Any]:
    request: Request[Any] = Request(
        "GET" if body is None else "POST", url, body=None if body is None else Full(body)
    )
    request.extensions.insert(timeouts)
    return request


def test_timeouts_refuses_non_positive_limits() -> None:
    with pytest.raises(ValueError, match="read timeout"):
        Timeouts(read=0)
    assert Timeouts(connect=1, read=2) == Timeouts(connect=1, read=2, write=None, pool=None)


async def test_request_connect_timeout_replaces_the_clients() -> None:
    class BlackHole:
        async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

    async with (
        FakeTimer(autojump=True) as timer,
        Client(BlackHole(), timer=timer, connect_timeout=30) as client,
    ):
        with pytest.raises(ConnectTimeoutError):
            await client.request(with_timeouts("http://example.invalid/", Timeouts(connect=2)))
        assert timer.now() == 2


async def test_request_read_timeout_replaces_the_clients_for_head_and_body() -> None:
    async with pipe_client(never, read_timeout=100) as client:
        started = client._timer.now()
        with pytest.raises(ReadTimeoutError, match="4 s"):
            await client.request(with_timeouts("http://pipe/", Timeouts(read=4)))
        assert client._timer.now() - started == 4
    async with pipe_client(stalls_after_first_chunk) as client:
        response = await client.request(with_timeouts("http://pipe/", Timeouts(read=3)))
        assert await response.body.frame() is not None
        with pytest.raises(ReadTimeoutError):
            await response.body.frame()


async def test_request_without_limits_lifts_the_clients() -> None:
    # Timeouts() says "no limit" for every phase: the client's 1 s read
    # limit does not apply, so the stalled body is still pending after 50 s.
    async with pipe_client(stalls_after_first_chunk, read_timeout=1) as client:
        response = await client.request(with_timeouts("http://pipe/", Timeouts()))
        assert await response.body.frame() is not None
        timer = client._timer
        with timer.deadline(timer.now() + 50) as deadline:
            await response.body.frame()
        assert deadline.expired
        await response.body.aclose()


async def test_request_write_timeout_applies_per_exchange_on_one_connection() -> None:
    async with pipe_client(None) as client:
        with pytest.raises(WriteTimeoutError, match="6 s"):
            await client.request(
                with_timeouts("http://pipe/", Timeouts(write=6), body=b"x" * 1_000_000)
            )


async def test_request_pool_timeout_replaces_the_clients() -> None:
    async with (
        pipe_client(never, max_connections=1, pool_timeout=100) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.get, "http://pipe/held")
        await anyio.wait_all_tasks_blocked()
        started = client._timer.now()
        with pytest.raises(PoolTimeoutError):
            await client.request(with_timeouts("http://pipe/waits", Timeouts(pool=5)))
        assert client._timer.now() - started == 5
        tg.cancel_scope.cancel()
