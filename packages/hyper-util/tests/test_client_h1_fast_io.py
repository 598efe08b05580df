"""hyper-core's HTTP/1 client over hyper_util.rt's streams, and the client's short paths.

What belongs here: the behaviours of the HTTP/1 client connection that
depend on the IO it runs over, checked on the IO ``hyper_util.rt.connect_tcp``
hands out (the asyncio fast path on asyncio, whose own receive-watch
capability the connection uses; hyper_util's trio stream on trio, which
the connection reads through a ``hyper_core.rt.ReceiveWatcher``): an idle
connection closed or spoken to by the server, a close or failure while a request waits for its
head, the connection's end stopping a request body's writer, upgrades; the
response body that arrives whole with its head; and the pooled client's
short paths (the body-less return of a connection, the URI
target cache, the idle connection taken without ``checkout``). The two
capabilities of ``AsyncioSocketStream`` are checked on their own first.

Strategy: a raw peer on a loopback socket (anyio's listener) writes exact
bytes; the client end is ``hyper_util.rt.connect_tcp``. Every wait is
bounded by ``fail_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute, SocketStream

from hyper_core import upgrade
from hyper_core.body import Body, Full, Incoming, StreamBody, channel, collect
from hyper_core.client.conn import http1
from hyper_core.error import (
    CanceledError,
    ClosedError,
    IncompleteMessageError,
    ParseError,
    UserError,
)
from hyper_core.http import Request, Response, Uri, Version
from hyper_core.rt import ReceiveWatcher, as_watchable, supports_receive_watch
from hyper_core.server.conn import http1 as server_http1
from hyper_core.testing import FakeTimer, memory_pipe
from hyper_util.client.legacy import Client, InvalidRequestError
from hyper_util.client.legacy._rules import Targets
from hyper_util.client.legacy._wrappers import (
    TimedWriteIO,
    TimedWriteWatchableIO,
    timed_write_io,
)
from hyper_util.client.legacy.connect import HttpConnector
from hyper_util.rt import AsyncioSocketStream, connect_tcp, create_tcp_listener

pytestmark = pytest.mark.anyio

STEP = 10.0  # seconds any one step may take
HOST = {"host": "peer.test"}
OK_5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

asyncio_only = pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"debug": True}), id="asyncio")]
)


# -- the stream's capabilities ----------------------------------------------------------


async def tcp_pair() -> tuple[SocketStream, SocketStream]:
    async with await create_tcp_listener("127.0.0.1", 0, fast=True) as listener:
        port = listener.extra(SocketAttribute.local_port)
        client = await connect_tcp("127.0.0.1", port, fast=True)
        server = await listener.accept()
    return server, client


async def wait_for(predicate: Callable[[], bool]) -> None:
    # Polling is the point: the predicates read state no event announces.
    with anyio.fail_after(STEP):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.001)


@asyncio_only
async def test_notify_receivable_fires_once_then_receive_nowait_takes_the_bytes() -> None:
    server, client = await tcp_pair()
    assert isinstance(server, AsyncioSocketStream)
    calls: list[str] = []
    async with server, client:
        with pytest.raises(anyio.WouldBlock):
            server.receive_nowait()
        assert server.notify_receivable(lambda: calls.append("data")) is False
        await client.send(b"abc")
        await wait_for(lambda: calls == ["data"])
        await client.send(b"def")
        await wait_for(lambda: server.statistics().read_buffered == 6)
        assert calls == ["data"]  # one shot
        assert server.notify_receivable(lambda: calls.append("again")) is True  # bytes wait
        assert server.receive_nowait(4) == b"abcd"
        assert server.receive_nowait() == b"ef"
        with pytest.raises(anyio.WouldBlock):
            server.receive_nowait()
        # Withdrawn, it is not called.
        assert server.notify_receivable(lambda: calls.append("withdrawn")) is False
        assert server.notify_receivable(None) is False
        await client.send(b"g")
        await wait_for(lambda: server.statistics().read_buffered == 1)
        assert server.receive_nowait() == b"g"
        # The end of the stream counts, and so does closing this side.
        server.notify_receivable(lambda: calls.append("eof"))
        await client.send_eof()
        await wait_for(lambda: calls[-1] == "eof")
        with pytest.raises(anyio.EndOfStream):
            server.receive_nowait()
        assert server.notify_receivable(lambda: calls.append("no")) is True
    assert calls == ["data", "eof"]


@asyncio_only
async def test_aclose_fires_the_callback_and_receive_nowait_then_says_closed() -> None:
    server, client = await tcp_pair()
    assert isinstance(server, AsyncioSocketStream)
    calls: list[str] = []
    async with client:
        server.notify_receivable(lambda: calls.append("closed"))
        await server.aclose()
        assert calls == ["closed"]
        with pytest.raises(anyio.ClosedResourceError):
            server.receive_nowait()


@asyncio_only
async def test_interrupt_receive_makes_the_waiting_receive_raise_and_loses_nothing() -> None:
    server, client = await tcp_pair()
    assert isinstance(server, AsyncioSocketStream)
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await server.receive()
        except LookupError as exc:
            errors.append(exc)

    async with server, client:
        assert server.interrupt_receive(LookupError("nobody waits")) is False
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            assert server.interrupt_receive(LookupError("stop")) is True
        assert [str(e) for e in errors] == ["stop"]
        await client.send(b"still here")
        with anyio.fail_after(STEP):
            assert await server.receive() == b"still here"


@asyncio_only
async def test_a_reader_that_keeps_up_never_pauses_the_socket() -> None:
    server, client = await tcp_pair()
    assert isinstance(server, AsyncioSocketStream)
    async with server, client:
        # Two of the transport's largest reads (256 KiB each) stay under the
        # 1 MiB mark: no pause and resume (two epoll_ctl calls) per read.
        await client.send(b"x" * (512 * 1024))
        await wait_for(lambda: server.statistics().read_buffered == 512 * 1024)
        assert not server.statistics().reading_paused
        got = 0
        while got < 512 * 1024:
            chunk = await server.receive(1024 * 1024)
            assert len(chunk) <= 256 * 1024  # big chunks are handed over, not joined
            got += len(chunk)


# -- the HTTP/1 client connection over the runtime's IO -----------------------------------


class Peer:
    """The server end, speaking raw bytes."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def read_head(self) -> bytes:
        with anyio.fail_after(STEP):
            while b"\r\n\r\n" not in self.buf:
                self.buf += await self.stream.receive()
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        return head


@dataclass
class Conn:
    sender: http1.SendRequest
    peer: Peer
    io: SocketStream
    tg: anyio.abc.TaskGroup
    served: anyio.Event
    cancel_driver: anyio.CancelScope


@asynccontextmanager
async def connection(*, shutdown: bool = True) -> AsyncIterator[Conn]:
    async with await create_tcp_listener("127.0.0.1", 0) as listener:
        port = listener.extra(SocketAttribute.local_port)
        io = await connect_tcp("127.0.0.1", port)
        server = await listener.accept()
    if isinstance(io, AsyncioSocketStream):
        assert io.notify_receivable(None) is False  # the stream's own watch will be used
    async with server, io:
        sender, conn = await http1.handshake(io)
        served = anyio.Event()
        with anyio.fail_after(STEP):
            async with anyio.create_task_group() as tg:
                scope = anyio.CancelScope()

                async def drive() -> None:
                    with scope:
                        if shutdown:
                            await conn.with_upgrades()
                        else:
                            await conn.without_shutdown()
                    served.set()

                tg.start_soon(drive)
                yield Conn(sender, Peer(server), io, tg, served, scope)
                await sender.aclose()
                tg.cancel_scope.cancel()


def get(headers: dict[str, str] | None = None) -> Request[Any]:
    # Host too: the h11 codec (HYPER_CORE_H1_CODEC=h11) insists on it.
    return Request("GET", "/", headers={**HOST, **(headers or {})})


async def exchange(c: Conn, request: Request[Any], reply: bytes) -> Response[Incoming]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(c.peer.read_head)
        result: list[Response[Incoming]] = []

        async def send() -> None:
            result.append(await c.sender.send_request(request))

        tg.start_soon(send)
        await anyio.wait_all_tasks_blocked()
        await c.peer.stream.send(reply)
    return result[0]


async def test_the_server_closing_an_idle_connection_closes_it() -> None:
    async with connection() as c:
        response = await exchange(c, get(), OK_5)
        assert (await collect(response.body)).data == b"hello"
        assert c.sender.is_ready()
        await c.peer.stream.send_eof()
        with anyio.fail_after(STEP):
            await c.served.wait()
        assert c.sender.is_closed()
        with pytest.raises(ClosedError) as info:
            await c.sender.ready()
        assert info.value.__cause__ is None


async def test_unsolicited_bytes_on_an_idle_connection_close_it() -> None:
    async with connection() as c:
        await exchange(c, get(), b"HTTP/1.1 204 No Content\r\n\r\n")
        assert c.sender.is_ready()
        await c.peer.stream.send(OK_5)
        with anyio.fail_after(STEP):
            await c.served.wait()
        with pytest.raises(ClosedError) as info:
            await c.sender.ready()
        assert isinstance(info.value.__cause__, ParseError)


@pytest.mark.parametrize("shutdown", [True, False], ids=["serve", "without_shutdown"])
async def test_cancelling_the_connection_task_fails_a_request_waiting_for_its_head(
    shutdown: bool,
) -> None:
    async with connection(shutdown=shutdown) as c:
        errors: list[Exception] = []

        async def send() -> None:
            try:
                await c.sender.send_request(get())
            except Exception as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await c.peer.read_head()
            await anyio.wait_all_tasks_blocked()
            c.cancel_driver.cancel()
        assert len(errors) == 1
        assert isinstance(errors[0], CanceledError)
        assert c.sender.is_closed()


@pytest.mark.parametrize("shutdown", [True, False], ids=["serve", "without_shutdown"])
async def test_a_failing_request_body_wakes_the_wait_for_the_head(shutdown: bool) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"part"
        raise RuntimeError("the body broke")

    async with connection(shutdown=shutdown) as c:
        request = Request("POST", "/", headers=HOST, body=StreamBody(chunks()))
        with pytest.raises(UserError) as info, anyio.fail_after(STEP):
            await c.sender.send_request(request)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert c.sender.is_closed()


async def test_the_connection_ending_stops_a_request_body_still_being_written() -> None:
    # On asyncio no watcher task runs in the connection's task group (the
    # stream watches itself): the body's writer is the one task left, and
    # the connection's end must stop it (it waits on a body that never
    # ends) and release the body.
    async with connection() as c:
        tx, body = channel()
        request = Request("POST", "/", headers=HOST, body=body)
        async with anyio.create_task_group() as tg:
            errors: list[Exception] = []

            async def send() -> None:
                try:
                    await c.sender.send_request(request)
                except Exception as exc:
                    errors.append(exc)

            tg.start_soon(send)
            await c.peer.read_head()
            await tx.send_data(b"x" * 100)
            await c.peer.stream.aclose()
        assert len(errors) == 1
        assert isinstance(errors[0], IncompleteMessageError)
        with anyio.fail_after(STEP):
            await c.served.wait()
        assert c.sender.is_closed()
        assert tx.is_closed


async def test_an_upgrade_hands_over_the_io_with_the_bytes_read_ahead() -> None:
    async with connection() as c:
        request = get({"connection": "upgrade", "upgrade": "echo"})
        response = await exchange(
            c,
            request,
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n"
            b"early",
        )
        assert response.status == 101
        with anyio.fail_after(STEP):
            upgraded = await upgrade.on(response)
            assert await upgraded.receive() == b"early"
            await upgraded.send(b"ping")
            assert await c.peer.stream.receive() == b"ping"
            await c.peer.stream.send(b"pong")
            assert await upgraded.receive() == b"pong"


# -- the response body that arrived with its head -----------------------------------------


async def test_a_whole_small_body_ends_the_exchange_before_send_request_returns() -> None:
    async with connection() as c:
        response = await exchange(c, get(), OK_5)
        assert c.sender.is_ready()  # the body is in memory: the connection is free
        assert response.body.size_hint().exact == 5
        assert not response.body.is_end_stream()
        assert (await collect(response.body)).data == b"hello"
        assert response.body.is_end_stream()
        assert response.body.size_hint().exact == 0
        # The connection carries the next request at once.
        again = await exchange(c, get(), OK_5)
        assert (await collect(again.body)).data == b"hello"


async def test_a_buffered_chunked_body_keeps_its_frames_and_trailers() -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n"
    )
    async with connection() as c:
        response = await exchange(c, get({"te": "trailers"}), reply)
        assert c.sender.is_ready()
        body = response.body
        assert body.size_hint().exact is None  # chunked: unknown until the end
        frames = []
        while (frame := await body.frame()) is not None:
            frames.append(frame)
        assert [f.data_ref for f in frames[:2]] == [b"abc", b"de"]
        trailers = frames[2].trailers_ref
        assert trailers is not None
        assert trailers.get("x-sum") == "5"
        assert body.trailers is not None
        assert body.size_hint().exact == 0


async def test_a_body_partly_buffered_is_finished_from_the_wire() -> None:
    async with connection() as c:
        response = await exchange(c, get(), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd")
        assert not c.sender.is_ready()
        assert response.body.size_hint().exact == 10
        assert (await response.body.frame()) is not None  # the buffered part
        await c.peer.stream.send(b"efghij")
        rest = await collect(response.body)
        assert rest.data == b"efghij"
        assert c.sender.is_ready()


async def test_a_parse_error_in_a_buffered_body_is_raised_by_its_reader() -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"
    async with connection() as c:
        response = await exchange(c, get(), reply)  # the head itself is fine
        frame = await response.body.frame()
        assert frame is not None
        assert frame.data_ref == b"abc"
        with pytest.raises(ParseError):
            await response.body.frame()
        assert c.sender.is_closed()


async def test_closing_a_wholly_buffered_body_keeps_the_connection() -> None:
    async with connection() as c:
        response = await exchange(c, get(), OK_5)
        await response.body.aclose()
        assert c.sender.is_ready()
        again = await exchange(c, get(), OK_5)
        assert (await collect(again.body)).data == b"hello"


# -- the pooled client's short paths ------------------------------------------------------------


@asynccontextmanager
async def hyper_server(
    service: Callable[[Request[Incoming]], Awaitable[Response[Body]]],
) -> AsyncIterator[tuple[str, list[SocketStream]]]:
    streams: list[SocketStream] = []

    async def handle(stream: SocketStream) -> None:
        streams.append(stream)
        with suppress(Exception):  # a connection the test cut off
            await server_http1.Builder().serve_connection(stream, service)

    async with (
        await create_tcp_listener("127.0.0.1", 0) as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}", streams
        tg.cancel_scope.cancel()


async def hello(request: Request[Incoming]) -> Response[Body]:
    return Response(200, body=Full(b"hello"))


async def test_a_small_body_returns_the_connection_before_it_is_read() -> None:
    async with hyper_server(hello) as (base, streams), Client(timer=FakeTimer()) as client:
        first = await client.get(f"{base}/")
        assert client.statistics().idle_connections == 1
        second = await client.get(f"{base}/")  # reuses it while `first` is unread
        assert (await collect(first.body)).data == b"hello"
        assert (await collect(second.body)).data == b"hello"
        stats = client.statistics()
    assert len(streams) == 1
    assert stats.connections_opened == 1
    assert stats.reused == 1


@pytest.mark.parametrize("write_timeout", [None, 30.0], ids=["plain", "write_timeout"])
@pytest.mark.parametrize("fast", [None, False], ids=["default_io", "anyio_stream"])
async def test_an_idle_connection_the_server_closed_is_not_reused(
    write_timeout: float | None, fast: bool | None
) -> None:
    # fast=None: the asyncio fast stream on asyncio (its own watch), anyio's
    # stream on trio; fast=False: anyio's stream everywhere (a ReceiveWatcher).
    async with (
        hyper_server(hello) as (base, streams),
        Client(HttpConnector(fast=fast), timer=FakeTimer(), write_timeout=write_timeout) as client,
    ):
        await collect((await client.get(f"{base}/")).body)
        await streams[0].aclose()  # the server gives up the idle connection
        await wait_for(lambda: client.statistics().open_connections == 0)
        assert (await collect((await client.get(f"{base}/")).body)).data == b"hello"
        stats = client.statistics()
    assert stats.connections_opened == 2
    assert stats.retries == 0  # noticed while idle, not by a failed request


async def test_the_write_timeout_wrapper_keeps_the_receive_watch_capability() -> None:
    timer = FakeTimer()
    async with await create_tcp_listener("127.0.0.1", 0) as listener:
        io = await connect_tcp("127.0.0.1", listener.extra(SocketAttribute.local_port))
        server = await listener.accept()
    async with io, server:
        wrapped = timed_write_io(io, timer, 5.0)
        if isinstance(io, AsyncioSocketStream):
            # The wrapper's own typed methods delegate to the stream's.
            assert type(wrapped) is TimedWriteWatchableIO
            assert supports_receive_watch(wrapped)
            assert as_watchable(wrapped) is wrapped
            calls: list[str] = []
            assert wrapped.notify_receivable(lambda: calls.append("data")) is False
            await server.send(b"x")
            await wait_for(lambda: calls == ["data"])
            assert wrapped.receive_nowait(10) == b"x"
            assert wrapped.interrupt_receive(RuntimeError("nobody waits")) is False
        else:
            # anyio's stream on trio: the connection reads it through a ReceiveWatcher.
            assert type(wrapped) is TimedWriteIO
            assert not supports_receive_watch(wrapped)
            assert type(as_watchable(wrapped)) is ReceiveWatcher
    client_io, server_io = memory_pipe()
    async with client_io, server_io:
        assert type(timed_write_io(client_io, timer, 5.0)) is TimedWriteIO


def test_targets_keep_the_key_and_origin_target_per_uri_object() -> None:
    targets = Targets()
    uri = Uri("http://Example.com:8080/a?b=1")
    key, origin = targets.lookup(Request("GET", uri))
    assert key == ("http", "example.com", 8080)
    assert origin is not None
    assert str(origin) == "/a?b=1"
    again = targets.lookup(Request("POST", uri))
    assert again[0] == key
    assert again[1] is origin  # the same object: nothing parsed twice
    # An equal URI in another object gets its own entry, with equal values.
    other = targets.lookup(Request("GET", Uri("http://Example.com:8080/a?b=1")))
    assert other[0] == key
    assert other[1] is not origin
    assert str(other[1]) == "/a?b=1"
    # The request is still checked on a hit.
    with pytest.raises(InvalidRequestError):
        targets.lookup(Request("GET", uri, version=Version.HTTP_3))
    # CONNECT in authority form has no origin-form target.
    connect_key, connect_origin = targets.lookup(Request("CONNECT", "example.com:443"))
    assert connect_key == ("https", "example.com", 443)
    assert connect_origin is None
    with pytest.raises(InvalidRequestError):
        targets.lookup(Request("GET", "/relative"))


def test_targets_stay_bounded() -> None:
    targets = Targets()
    uris = [Uri(f"http://h{i}.example/") for i in range(600)]
    for uri in uris:
        key, _ = targets.lookup(Request("GET", uri))
        assert key[1] == uri.host
    assert len(targets._entries) <= 256
