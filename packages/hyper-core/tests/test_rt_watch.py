"""hyper_core.rt's receive-watch capability and its generic implementation.

What belongs here: :class:`~hyper_core.rt.ReceiveWatcher` over real
loopback TCP streams (anyio's, on asyncio, uvloop and trio): the callback
for bytes, for the end of stream and for a reset; a read that takes over
from the watching task, which ``interrupt_receive`` stops without losing a
byte; a read of its own, which it declines; and the HTTP/1 client on plain
anyio TCP streams, whose one read path goes through a ``ReceiveWatcher``:
the server's close and unasked-for bytes end an idle connection at once,
and a close ends a read in flight whether or not it could be interrupted.

Strategy: each test opens a loopback connection with anyio's listener
(127.0.0.1, a free port); the peer writes exact bytes. Every wait is
bounded by ``fail_after``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute, SocketStream

from hyper_core import upgrade
from hyper_core.body import StreamBody, collect
from hyper_core.client.conn import http1
from hyper_core.error import (
    CanceledError,
    ClosedError,
    IncompleteMessageError,
    ParseError,
    UserError,
)
from hyper_core.ext import on_informational
from hyper_core.http import Request
from hyper_core.rt import (
    IO,
    ReceiveWatcher,
    SupportsReceiveWatch,
    WatchableIO,
    as_watchable,
    supports_receive_watch,
)
from hyper_core.testing import memory_pipe

pytestmark = pytest.mark.anyio

STEP = 10.0  # seconds any one step may take
OK_5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[SocketStream, SocketStream]]:
    """A loopback TCP connection: (client end, server end)."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as multi:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        port = listener.extra(SocketAttribute.local_port)
        client = await anyio.connect_tcp("127.0.0.1", port)
        try:
            server = await listener.accept()
        except BaseException:
            await anyio.aclose_forcefully(client)
            raise
    async with client, server:
        yield client, server


@asynccontextmanager
async def watching(io: IO) -> AsyncIterator[ReceiveWatcher]:
    """A ReceiveWatcher over ``io`` with its watching task running."""
    watcher = ReceiveWatcher(io)
    with anyio.fail_after(STEP):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.run)
            yield watcher
            tg.cancel_scope.cancel()


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.event = anyio.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()


def test_the_protocol_types() -> None:
    # Checked by mypy over this file: a ReceiveWatcher is a WatchableIO.
    watcher: WatchableIO = ReceiveWatcher(memory_pipe()[0])
    capability: SupportsReceiveWatch = watcher
    assert capability is watcher


async def test_as_watchable_wraps_a_stream_without_the_capability() -> None:
    async with tcp_pair() as (client, _):
        assert not supports_receive_watch(client)
        watcher = as_watchable(client)
        assert type(watcher) is ReceiveWatcher
        assert watcher.inner is client
        assert as_watchable(watcher) is watcher  # already watchable: itself


async def test_the_callback_fires_once_for_bytes_and_receive_nowait_takes_them() -> None:
    async with tcp_pair() as (client, server), watching(client) as watcher:
        calls = Calls()
        with pytest.raises(anyio.WouldBlock):
            watcher.receive_nowait(100)
        assert watcher.notify_receivable(calls) is False
        await server.send(b"0123456789")
        await calls.event.wait()
        assert calls.count == 1
        assert watcher.pending() == b"0123456789"
        assert watcher.notify_receivable(calls) is True  # the bytes still wait
        assert watcher.receive_nowait(4) == b"0123"  # max_bytes is honoured
        assert await watcher.receive(100) == b"456789"
        assert watcher.pending() == b""
        await anyio.wait_all_tasks_blocked()
        assert calls.count == 1


async def test_the_watching_task_reads_with_the_size_last_asked() -> None:
    async with tcp_pair() as (client, server):
        watcher = ReceiveWatcher(client, watch_bytes=4)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.run)
            calls = Calls()
            assert watcher.notify_receivable(calls) is False
            await server.send(b"0123456789")
            await calls.event.wait()
            assert watcher.pending() == b"0123"  # one read of watch_bytes
            assert await watcher.receive(3) == b"012"
            assert await watcher.receive(100) == b"3"
            received = b""
            while len(received) < 6:  # reads of its own, asking for 6
                received += await watcher.receive(6)
            assert received == b"456789"
            calls = Calls()
            assert watcher.notify_receivable(calls) is False
            await server.send(b"abcdefghij")
            await calls.event.wait()
            assert watcher.pending() == b"abcdef"  # now the size last asked
            tg.cancel_scope.cancel()
    with pytest.raises(ValueError, match="watch_bytes"):
        ReceiveWatcher(client, watch_bytes=0)


async def test_the_callback_fires_for_the_end_of_stream() -> None:
    async with tcp_pair() as (client, server), watching(client) as watcher:
        calls = Calls()
        assert watcher.notify_receivable(calls) is False
        await server.send_eof()
        await calls.event.wait()
        for _ in range(2):  # the end stays
            with pytest.raises(anyio.EndOfStream):
                watcher.receive_nowait(100)
        with pytest.raises(anyio.EndOfStream):
            await watcher.receive(100)
        assert watcher.notify_receivable(calls) is True


async def test_the_callback_fires_for_a_reset() -> None:
    async with tcp_pair() as (client, server), watching(client) as watcher:
        calls = Calls()
        assert watcher.notify_receivable(calls) is False
        raw = server.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await server.aclose()  # SO_LINGER 0: the close sends a reset
        await calls.event.wait()
        with pytest.raises(anyio.BrokenResourceError):
            watcher.receive_nowait(100)


async def test_a_withdrawn_callback_is_not_called() -> None:
    async with tcp_pair() as (client, server), watching(client) as watcher:
        calls = Calls()
        assert watcher.notify_receivable(calls) is False
        await anyio.wait_all_tasks_blocked()  # the watching task reads
        assert watcher.notify_receivable(None) is False
        await server.send(b"late")
        assert await watcher.receive(100) == b"late"  # taken from the watching task
        await anyio.wait_all_tasks_blocked()
        assert calls.count == 0


async def test_interrupt_declines_a_read_of_its_own_which_the_close_ends() -> None:
    async with tcp_pair() as (client, server), watching(client) as watcher:
        assert watcher.interrupt_receive(RuntimeError("nobody waits")) is False
        got: list[bytes] = []
        failures: list[BaseException] = []

        async def read() -> None:
            try:
                got.append(await watcher.receive(100))
            except anyio.ClosedResourceError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            # No callback is registered: the read is the stream's own, with
            # no cancel scope around it, and is declined.
            assert watcher.interrupt_receive(RuntimeError("closed")) is False
            await server.send(b"still read")
        assert got == [b"still read"]
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            await watcher.aclose()  # what ends a declined read
        assert len(failures) == 1


async def test_interrupt_stops_a_receive_waiting_for_the_watching_task() -> None:
    async with tcp_pair() as (client, server), watching(client) as watcher:
        assert watcher.notify_receivable(Calls()) is False
        await anyio.wait_all_tasks_blocked()  # the watching task reads
        failures: list[BaseException] = []

        async def read() -> None:
            try:
                await watcher.receive(100)
            except RuntimeError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            assert watcher.interrupt_receive(RuntimeError("closed")) is True
        assert [str(f) for f in failures] == ["closed"]
        assert watcher.interrupt_receive(RuntimeError("again")) is False  # for that read only
        await server.send(b"kept")  # read by the watching task, still waiting
        assert await watcher.receive(100) == b"kept"


async def test_writes_and_close_pass_through() -> None:
    async with tcp_pair() as (client, server):
        watcher = ReceiveWatcher(client)
        await watcher.send(b"ping")
        assert await server.receive(100) == b"ping"
        await watcher.send_eof()
        with pytest.raises(anyio.EndOfStream):
            await server.receive(100)
        await watcher.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await watcher.receive(100)


# -- the HTTP/1 client over plain anyio TCP streams ---------------------------------------


@dataclass
class H1:
    sender: http1.SendRequest
    client: SocketStream
    server: SocketStream
    served: anyio.Event
    cancel_driver: anyio.CancelScope


@asynccontextmanager
async def h1_client(*, shutdown: bool = True, upgrades: bool = False) -> AsyncIterator[H1]:
    """An HTTP/1 client connection over a plain anyio TCP stream, driven in a task."""
    async with tcp_pair() as (client, server):
        assert not supports_receive_watch(client)  # read through a ReceiveWatcher
        sender, connection = await http1.handshake(client)
        served = anyio.Event()
        scope = anyio.CancelScope()
        with anyio.fail_after(STEP):
            async with anyio.create_task_group() as tg:

                async def drive() -> None:
                    with scope:
                        if upgrades:
                            await connection.with_upgrades()
                        elif shutdown:
                            await connection
                        else:
                            await connection.without_shutdown()
                    served.set()

                tg.start_soon(drive)
                yield H1(sender, client, server, served, scope)
                tg.cancel_scope.cancel()


async def read_head(server: SocketStream) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        received += await server.receive()
    return received


async def exchange(sender: http1.SendRequest, server: SocketStream) -> None:
    async def answer() -> None:
        assert (await read_head(server)).startswith(b"GET / HTTP/1.1\r\n")
        await server.send(OK_5)

    async with anyio.create_task_group() as tg:
        tg.start_soon(answer)
        response = await sender.send_request(Request("GET", "/", headers={"host": "peer.test"}))
        assert (await collect(response.body)).to_bytes() == b"hello"


async def test_an_idle_connection_notices_the_server_closing_it() -> None:
    async with h1_client() as h:
        sender, server, served = h.sender, h.server, h.served
        await exchange(sender, server)
        await exchange(sender, server)  # kept alive between the two
        assert sender.is_ready()
        await server.aclose()
        await served.wait()  # noticed while idle: no request needed
        assert sender.is_closed()
        with pytest.raises(ClosedError) as info:
            await sender.ready()
        assert info.value.__cause__ is None  # a normal close


async def test_bytes_on_an_idle_connection_are_an_error() -> None:
    async with h1_client() as h:
        sender, server, served = h.sender, h.server, h.served
        await exchange(sender, server)
        await server.send(OK_5)  # an answer to no request
        await served.wait()
        assert sender.is_closed()
        with pytest.raises(ClosedError) as info:
            await sender.ready()
        assert isinstance(info.value.__cause__, ParseError)
        assert "idle connection" in str(info.value.__cause__)


async def test_the_server_closing_during_a_request_ends_the_read() -> None:
    async with h1_client() as h:
        sender, server, served = h.sender, h.server, h.served
        await exchange(sender, server)

        async def close_after_head() -> None:
            await read_head(server)
            await server.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe")
            await server.aclose()

        async with anyio.create_task_group() as tg:
            tg.start_soon(close_after_head)
            response = await sender.send_request(Request("GET", "/", headers={"host": "peer.test"}))
            with pytest.raises(IncompleteMessageError):
                await collect(response.body)
        await served.wait()
        assert sender.is_closed()


async def test_many_exchanges_and_a_streamed_body_over_the_one_read_path() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: many reads of the body's own
    async with h1_client() as h:
        for _ in range(20):
            await exchange(h.sender, h.server)

        async def answer() -> None:
            await read_head(h.server)
            await h.server.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            await h.server.send(body)

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            response = await h.sender.send_request(GET())
            assert (await collect(response.body)).to_bytes() == body
        await exchange(h.sender, h.server)  # kept alive after it
        assert h.sender.is_ready()


def GET() -> Request[Any]:
    return Request("GET", "/", headers={"host": "peer.test"})


@pytest.mark.parametrize("shutdown", [True, False], ids=["serve", "without_shutdown"])
async def test_a_failing_body_ends_a_head_read_the_watcher_declined(shutdown: bool) -> None:
    # After a 100 (Continue), read through the watching task, the final head
    # is read by the caller itself: a read ReceiveWatcher does not
    # interrupt. The body's failure closes the connection, and the
    # connection task closes the IO, which ends that read (without_shutdown
    # too: the IO is mid-exchange).
    continued = anyio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"part"
        await continued.wait()
        await anyio.wait_all_tasks_blocked()  # the caller waits for the final head
        raise RuntimeError("the body broke")

    async with h1_client(shutdown=shutdown) as h:
        await exchange(h.sender, h.server)
        request = Request(
            "POST",
            "/",
            headers={"host": "peer.test", "transfer-encoding": "chunked"},
            body=StreamBody(chunks()),
        )
        on_informational(request, lambda _: continued.set())

        async def answer() -> None:
            await read_head(h.server)
            await h.server.send(b"HTTP/1.1 100 Continue\r\n\r\n")

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            with pytest.raises(UserError) as info:
                await h.sender.send_request(request)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert continued.is_set()
        await h.served.wait()
        assert h.sender.is_closed()
        with pytest.raises(anyio.ClosedResourceError):
            await h.client.receive()  # closed by the connection task


@pytest.mark.parametrize("shutdown", [True, False], ids=["serve", "without_shutdown"])
async def test_cancelling_the_connection_task_fails_a_request_waiting_for_its_head(
    shutdown: bool,
) -> None:
    async with h1_client(shutdown=shutdown) as h:
        await exchange(h.sender, h.server)
        # Idle: the watching task reads, and the request's head read takes
        # over from it (the read a ReceiveWatcher can interrupt).
        await anyio.wait_all_tasks_blocked()
        errors: list[Exception] = []

        async def send() -> None:
            try:
                await h.sender.send_request(GET())
            except Exception as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await read_head(h.server)
            await anyio.wait_all_tasks_blocked()
            h.cancel_driver.cancel()
        assert len(errors) == 1
        assert isinstance(errors[0], CanceledError)
        assert h.sender.is_closed()
        await h.server.send(b"after")
        if shutdown:
            with pytest.raises(anyio.ClosedResourceError):
                await h.client.receive()
        else:
            # The read was interrupted (it had taken over from the watching
            # task), so the IO was left open, with nothing lost.
            assert await h.client.receive() == b"after"


async def test_an_upgrade_hands_over_the_stream_with_the_bytes_read_ahead() -> None:
    async with h1_client(upgrades=True) as h:
        await exchange(h.sender, h.server)
        request = Request(
            "GET", "/", headers={"host": "peer.test", "connection": "upgrade", "upgrade": "echo"}
        )

        async def answer() -> None:
            await read_head(h.server)
            await h.server.send(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                b"Upgrade: echo\r\n\r\nearly"
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            response = await h.sender.send_request(request)
        assert response.status == 101
        upgraded = await upgrade.on(response)
        assert await upgraded.receive() == b"early"  # read ahead with the head
        await upgraded.send(b"ping")
        assert await h.server.receive() == b"ping"
        await h.server.send(b"pong")
        assert await upgraded.receive() == b"pong"  # the stream itself, unwrapped
