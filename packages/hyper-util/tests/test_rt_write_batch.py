"""Writes held to the end of the event loop's pass (``hyper_util.rt._write_batch``).

What belongs here: what the fast-path streams (:class:`AsyncioSocketStream`
on asyncio and uvloop, :class:`TrioSocketStream` on trio) promise about the
writes they hold: a pass's first write goes at once, the later ones (all
streams' together) when the pass ends; order is kept across held and
written-through sends; ``send_eof`` and ``aclose`` write them first; a task
that never suspends writes through after 64 KiB; a lost connection drops
them without an error in the loop; on trio, held bytes the kernel does not
take at once are written in order once it does, and ``aclose`` resets a
connection whose peer never lets them in.

Strategy: the stream under test on one end of a real loopback TCP
connection; the other end is a plain socket read with ``MSG_DONTWAIT``, so
what the kernel holds is seen without giving the event loop a pass.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import anyio.lowlevel
import pytest

from hyper_util.rt import AsyncioSocketStream, TrioSocketStream, wrap_connected_socket
from hyper_util.rt._write_batch import HOLD_LIMIT

pytestmark = [
    pytest.mark.anyio,
    # Each backend's fast-path stream: asyncio's loop, uvloop's, trio's.
    pytest.mark.parametrize(
        "anyio_backend",
        [
            pytest.param(("asyncio", {"debug": True}), id="asyncio"),
            pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
            pytest.param(("trio", {}), id="trio"),
        ],
    ),
]

STEP_TIMEOUT = 20.0


@contextmanager
def raw_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: (ours, the peer's), both plain sockets."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    with peer:
        yield ours, peer


async def stream_of(sock: socket.socket) -> AsyncioSocketStream | TrioSocketStream:
    stream = await wrap_connected_socket(sock, fast=True)
    assert isinstance(stream, (AsyncioSocketStream, TrioSocketStream))
    return stream


async def next_pass() -> None:
    """Return once the pass that is running now has ended (its held writes are out).

    On asyncio the end of a pass is a callback queued before this task's
    next step; on trio it is a task in the next batch of runnable tasks,
    which trio runs in either order with this one: two batches on.
    """
    await anyio.lowlevel.checkpoint()
    await anyio.lowlevel.checkpoint()


def in_kernel(peer: socket.socket) -> bytes:
    """What the peer can read now, without waiting (b"" when nothing)."""
    try:
        return peer.recv(1 << 20, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


def read_exactly(peer: socket.socket, n: int) -> bytes:
    """Block (bounded) until the peer has read ``n`` bytes; the loop is not needed."""
    data = bytearray()
    while len(data) < n:
        ready, _, _ = select.select([peer], [], [], STEP_TIMEOUT)
        assert ready, f"only {len(data)} of {n} bytes arrived"
        chunk = peer.recv(1 << 20)
        assert chunk, f"end of stream after {len(data)} of {n} bytes"
        data += chunk
    return bytes(data)


def read_to_end(peer: socket.socket) -> bytes:
    data = bytearray()
    while True:
        ready, _, _ = select.select([peer], [], [], STEP_TIMEOUT)
        assert ready, "the stream never ended"
        chunk = peer.recv(1 << 20)
        if not chunk:
            return bytes(data)
        data += chunk


async def test_the_first_write_of_a_pass_goes_at_once_the_rest_when_it_ends() -> None:
    with raw_pair() as (a, peer_a), raw_pair() as (b, peer_b):
        first, second = await stream_of(a), await stream_of(b)
        async with first, second:
            await next_pass()  # a pass of its own from here
            await first.send(b"HTTP/1.1 200 OK\r\n")
            # The pass's first write is not held: a lone writer (one busy
            # connection, a sequential client) is never made to wait.
            assert read_exactly(peer_a, 17) == b"HTTP/1.1 200 OK\r\n"
            await first.send_many([b"content-length: 2\r\n\r\n", b"hi"])
            await second.send(b"pong")
            # Later writes of the same pass, any stream's, wait for its end.
            assert in_kernel(peer_a) == in_kernel(peer_b) == b""
            assert first.statistics().write_buffered == 23
            await next_pass()
            assert read_exactly(peer_a, 23) == b"content-length: 2\r\n\r\nhi"
            assert read_exactly(peer_b, 4) == b"pong"
            assert first.statistics().write_buffered == 0
            # A new pass: its first write goes at once again.
            await second.send(b"ping")
            assert read_exactly(peer_b, 4) == b"ping"


async def test_order_is_kept_across_held_and_written_through_sends() -> None:
    big = bytes(range(256)) * 1024  # 256 KiB: over the hold limit, written at once
    pieces = [b"head;", big, b"tail;", b"x" * (HOLD_LIMIT - 10), b"y" * 20, b"end"]
    with raw_pair() as (ours, peer):
        stream = await stream_of(ours)
        async with stream:

            async def write() -> None:
                await stream.send(pieces[0])
                await stream.send(pieces[1])
                await stream.send_many(pieces[2:4])
                await stream.send_many(pieces[4:])

            with anyio.fail_after(STEP_TIMEOUT):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(write)
                    expected = b"".join(pieces)
                    received = await anyio.to_thread.run_sync(read_exactly, peer, len(expected))
        assert received == expected


async def test_a_task_that_never_suspends_writes_through_past_the_hold_limit() -> None:
    with raw_pair() as (ours, peer):
        stream = await stream_of(ours)
        async with stream:
            for _ in range(200):
                await stream.send(b"k" * 1024)
            # 200 KiB sent without a single pass of the loop: all but the
            # last (at most HOLD_LIMIT) bytes were written through already.
            written = read_exactly(peer, 200 * 1024 - HOLD_LIMIT)
            assert written == b"k" * len(written)
            stats = stream.statistics()
            assert stats.write_buffered <= HOLD_LIMIT
            assert stats.write_buffered + len(written) + len(in_kernel(peer)) == 200 * 1024


@pytest.mark.parametrize("end", ["send_eof", "aclose"])
async def test_send_eof_and_aclose_write_held_bytes_first(end: str) -> None:
    with raw_pair() as (ours, peer):
        stream = await stream_of(ours)
        await stream.send(b"last ")
        await stream.send_many([b"words", b"."])
        with anyio.fail_after(STEP_TIMEOUT):
            await (stream.send_eof() if end == "send_eof" else stream.aclose())
            # In a thread: uvloop shuts the socket down from its own loop.
            assert await anyio.to_thread.run_sync(read_to_end, peer) == b"last words."
        await stream.aclose()


async def test_a_lost_connection_drops_held_bytes_and_the_next_send_fails(
    anyio_backend_name: str,
) -> None:
    errors: list[dict[str, object]] = []
    if anyio_backend_name == "asyncio":
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
    # (On trio an error in the task that writes held bytes would end the run.)
    with raw_pair() as (ours, peer):
        stream = await stream_of(ours)
        async with stream:
            # The peer resets the connection; our stream learns it by reading.
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()

            async def send_until_it_fails() -> None:
                for _ in range(2000):  # bounded: at most 2000 x 5 ms
                    await stream.send(b"into the void")
                    await anyio.sleep(0.005)

            with anyio.fail_after(STEP_TIMEOUT), pytest.raises(anyio.BrokenResourceError):
                await send_until_it_fails()
    assert errors == []
