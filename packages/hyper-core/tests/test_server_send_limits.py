"""Writing responses to clients that read slowly or not at all: bounded in time and memory.

What belongs here: ``send_stall_timeout`` on the HTTP/1 and HTTP/2 server
connections (nginx's ``send_timeout``: a write that waits that long for the
client to read closes the connection), and how the HTTP/1 server writes a
large body: the head on its own, then the body in pieces of at most
``WRITE_CHUNK`` bytes, never joined to the head in one more copy, while a
small response is still one write.

Strategy: server connections over an in-memory pipe with a small buffer
(a client that does not read blocks the server's writes, as a full socket
does), on a ``FakeTimer`` so that a 60-second timeout takes no time; a
client that reads 1 KiB per (fake) second is a task that sleeps on that
timer between reads. A recording IO wraps the server's end to see each
``send``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from hyper_core.body import Full, Incoming, StreamBody, collect
from hyper_core.client.conn import http2 as client_http2
from hyper_core.error import HyperError
from hyper_core.error import TimeoutError as HyperTimeoutError
from hyper_core.http import Request, Response
from hyper_core.proto.h1._server import WRITE_CHUNK
from hyper_core.rt import IO
from hyper_core.server.conn import http1, http2
from hyper_core.testing import FakeTimer, memory_pipe

pytestmark = pytest.mark.anyio

BIG = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and 4 bytes
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def big(request: Request[Incoming]) -> Response[Full]:
    return Response(200, body=Full(BIG))


class RecordingIO:
    """An IO that records the size of every write it passes on."""

    def __init__(self, io: IO) -> None:
        self.io = io
        self.writes: list[bytes] = []

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.io.receive(max_bytes)

    async def send(self, data: bytes) -> None:
        assert isinstance(data, bytes)  # the IO contract: bytes, never a view
        self.writes.append(data)
        await self.io.send(data)

    async def send_eof(self) -> None:
        await self.io.send_eof()

    async def aclose(self) -> None:
        await self.io.aclose()


async def read_all(
    client: IO, *, timer: FakeTimer | None = None, rate: int = 0, unit: int = 8192
) -> bytes:
    """Read until EOF; with ``rate``, ``unit`` bytes at a time at ``rate`` bytes per fake second.

    (Bigger units mean fewer clock jumps, each of which costs up to 0.1 s
    of wall time on asyncio.)
    """
    out = b""
    while True:
        try:
            data = await client.receive(unit if rate else 65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return out
        out += data
        if rate and timer is not None:
            await timer.sleep(len(data) / rate)


# -- HTTP/1: send_stall_timeout ------------------------------------------------------


async def h1_outcome(
    client_reads: Any, *, pipe: int = 16384, **options: Any
) -> tuple[BaseException | None, bytes]:
    """Serve GET with ``big`` to a client read by ``client_reads(io)``."""
    client, server = memory_pipe(pipe)
    outcome: list[BaseException | None] = []
    received: list[bytes] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            try:
                await http1.Builder(**options).serve_connection(server, big)
                outcome.append(None)
            except HyperError as exc:
                outcome.append(exc)

        async def read() -> None:
            received.append(await client_reads(client))

        tg.start_soon(run)
        await client.send(CLOSE)
        tg.start_soon(read)
    return outcome[0], received[0]


async def test_http1_client_that_never_reads_is_cut_off() -> None:
    async with FakeTimer(autojump=True) as timer:

        async def never_reads(client: IO) -> bytes:
            await timer.sleep(3600)
            return await read_all(client)

        error, received = await h1_outcome(never_reads, timer=timer, send_stall_timeout=20)
    assert isinstance(error, HyperTimeoutError)
    assert "send_stall_timeout" in str(error)
    # Cut off at 20 s (plus at most a quarter of the watchdog's step), long
    # before the client's hour was up; it got part of the response only.
    assert len(received) < len(BIG)


async def test_http1_client_reading_1_kib_per_second_is_cut_off() -> None:
    # The case: a big response read at 1 KiB/s would hold the
    # connection for hours; a write of WRITE_CHUNK bytes cannot finish
    # within the default 60 s at that rate.
    async with FakeTimer(autojump=True) as timer:

        async def trickle(client: IO) -> bytes:
            return await read_all(client, timer=timer, rate=1024)

        error, received = await h1_outcome(trickle, timer=timer)
        elapsed = timer.now()
    assert isinstance(error, HyperTimeoutError)
    assert len(received) < len(BIG)
    assert elapsed < 300  # minutes, not the 17 minutes a full read would take


async def test_http1_reader_that_keeps_up_gets_everything() -> None:
    async with FakeTimer(autojump=True) as timer:

        async def steady(client: IO) -> bytes:
            # 32 KiB a second: each 64 KiB write is taken within a few
            # seconds, inside the timeout.
            return await read_all(client, timer=timer, rate=32768, unit=65536)

        error, received = await h1_outcome(steady, pipe=65536, timer=timer, send_stall_timeout=10)
    assert error is None
    assert received.endswith(b"\r\n\r\n" + BIG)


async def test_http1_pipelined_requests_without_reading_are_cut_off() -> None:
    # Small responses pile up in a socket nobody reads: each write stalls.
    async def small(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"x" * 1000))

    client, server = memory_pipe(16384)
    async with FakeTimer(autojump=True) as timer:
        outcome: list[BaseException] = []

        async def run() -> None:
            try:
                await http1.Builder(timer=timer, send_stall_timeout=30).serve_connection(
                    server, small
                )
            except HyperError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await client.send(GET * 200)
            await timer.sleep(3600)
            tg.cancel_scope.cancel()
    assert len(outcome) == 1
    assert isinstance(outcome[0], HyperTimeoutError)


def test_http1_send_stall_timeout_default_and_checks() -> None:
    assert http1.DEFAULT_SEND_STALL_TIMEOUT == 60.0
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="send_stall_timeout"):
            http1.Builder(send_stall_timeout=bad)
    http1.Builder(send_stall_timeout=None)  # waits forever, as asked


# -- HTTP/2: send_stall_timeout (the socket) --------------------------------------


class TrickleIO:
    """A client IO that takes 1 KiB per fake second from the server (8 KiB each 8 s)."""

    def __init__(self, io: IO, timer: FakeTimer) -> None:
        self.io = io
        self.timer = timer

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await self.timer.sleep(8)
        return await self.io.receive(min(max_bytes, 8192))

    async def send(self, data: bytes) -> None:
        await self.io.send(data)

    async def send_eof(self) -> None:
        await self.io.send_eof()

    async def aclose(self) -> None:
        await self.io.aclose()


async def test_http2_client_reading_1_kib_per_second_is_cut_off() -> None:
    # Windows wide open: only the socket holds the response back.
    client_io, server_io = memory_pipe(16384)
    outcome: list[BaseException | None] = []
    async with FakeTimer(autojump=True) as timer:
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                try:
                    await http2.Builder(timer=timer).serve_connection(server_io, big)
                    outcome.append(None)
                except HyperError as exc:
                    outcome.append(exc)

            tg.start_soon(run)
            sender, connection = await client_http2.handshake(
                TrickleIO(client_io, timer),
                initial_stream_window_size=16 << 20,
                initial_connection_window_size=16 << 20,
                timer=timer,
            )
            tg.start_soon(connection.serve)

            async def fetch() -> None:
                response = await sender.send_request(Request("GET", "http://example/"))
                await collect(response.body)

            with pytest.raises(HyperError):
                await fetch()
            tg.cancel_scope.cancel()
        elapsed = timer.now()
    assert len(outcome) == 1
    assert isinstance(outcome[0], HyperTimeoutError)
    assert elapsed < 300


# -- HTTP/1: large bodies in pieces, small responses in one write ------------------


async def recorded(service: Any, data: bytes) -> tuple[list[bytes], bytes]:
    client, server = memory_pipe()
    io = RecordingIO(server)
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await http1.Builder().serve_connection(io, service)

        tg.start_soon(run)
        await client.send(data)
        await client.send_eof()
        received = await read_all(client)
    return io.writes, received


async def test_large_full_body_is_written_in_pieces_after_its_head() -> None:
    writes, received = await recorded(
        big, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    head = writes[0]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert head.endswith(b"\r\n\r\n")  # the head alone: the body is not joined to it
    assert b"content-length: %d\r\n" % len(BIG) in head.lower()
    assert all(len(w) <= WRITE_CHUNK for w in writes)
    assert b"".join(writes[1:]) == BIG
    assert received == b"".join(writes)


@pytest.mark.parametrize("size", [0, 1, WRITE_CHUNK])
async def test_small_full_body_is_one_write_with_its_head(size: int) -> None:
    async def sized(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"b" * size))

    writes, received = await recorded(
        sized, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert len(writes) == 1
    assert writes[0].endswith(b"\r\n\r\n" + b"b" * size)
    assert received == writes[0]


async def test_large_full_body_to_head_writes_only_the_head() -> None:
    writes, _ = await recorded(big, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert len(writes) == 1
    assert writes[0].endswith(b"\r\n\r\n")
    assert b"content-length: %d\r\n" % len(BIG) in writes[0].lower()


async def test_large_streamed_frame_is_written_in_pieces() -> None:
    async def one_big_frame(request: Request[Incoming]) -> Response[StreamBody]:
        async def frames() -> AsyncIterator[bytes]:
            yield BIG

        return Response(200, body=StreamBody(frames()))

    writes, received = await recorded(
        one_big_frame, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert all(len(w) <= WRITE_CHUNK for w in writes)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert rest == b"%x\r\n" % len(BIG) + BIG + b"\r\n0\r\n\r\n"
