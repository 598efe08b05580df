"""The trio fast path's own behaviour, beyond the IO conformance suite.

What belongs here: what only :class:`TrioSocketStream` promises: held bytes
that the kernel does not take at once are written, in order, by a task of
their own, and the next ``send`` waits for them; ``aclose`` resets a
connection whose peer never lets them in; a second reader or writer gets
``BusyResourceError``; ``aclose`` wakes a blocked ``send``; and the
listener hands out the connections it took from the kernel.

Strategy: trio only; the stream on one end of a real loopback TCP
connection and a plain socket on the other, read with ``MSG_DONTWAIT`` or
from a thread, so what the kernel holds is seen without a scheduler pass.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import anyio.lowlevel
import pytest

from hyper_util.rt import TrioSocketStream, create_tcp_listener, wrap_connected_socket

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")]),
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


async def stream_of(sock: socket.socket, close_timeout: float = 5.0) -> TrioSocketStream:
    stream = await wrap_connected_socket(sock, close_timeout=close_timeout)
    assert isinstance(stream, TrioSocketStream)
    return stream


def fill_kernel(sock: socket.socket) -> bytes:
    """Write to ``sock`` until the kernel takes no more; return what it took."""
    sock.setblocking(False)
    taken = bytearray()
    chunk = b"f" * 65536
    for _ in range(10_000):  # bounded: loopback buffers hold a few MiB at most
        try:
            taken += chunk[: sock.send(chunk)]
        except BlockingIOError:
            return bytes(taken)
    raise AssertionError("the kernel never stopped taking bytes")


def read_all(peer: socket.socket) -> tuple[bytes, bool]:
    """Read until the end of stream or a reset (bounded): (what came, whether reset)."""
    data = bytearray()
    while True:
        ready, _, _ = select.select([peer], [], [], STEP_TIMEOUT)
        assert ready, f"the stream neither ended nor was reset after {len(data)} bytes"
        try:
            chunk = peer.recv(1 << 20)
        except ConnectionResetError:
            return bytes(data), True
        if not chunk:
            return bytes(data), False
        data += chunk


async def next_pass() -> None:
    # The held bytes go out in the next scheduler batch, in either order
    # with this task: two batches on, they have.
    await anyio.lowlevel.checkpoint()
    await anyio.lowlevel.checkpoint()


async def test_held_bytes_the_kernel_refuses_are_written_in_order_later() -> None:
    with raw_pair() as (a, _peer_a), raw_pair() as (b, peer_b):
        other, stream = await stream_of(a), await stream_of(b)
        async with other, stream:
            # The kernel holds all it will of this connection already.
            before = fill_kernel(b)
            await next_pass()
            await other.send(b"first of the pass")  # the pass's first write: at once
            await stream.send(b"held;")
            await stream.send_many([b"also ", b"held;"])
            assert stream.statistics().write_buffered == 15
            await next_pass()
            # The end of the pass found no room: the bytes wait for it.
            stats = stream.statistics()
            assert stats.writing_paused
            assert stats.write_buffered == 15

            received: list[tuple[bytes, bool]] = []

            async def read_in_thread() -> None:
                received.append(await anyio.to_thread.run_sync(read_all, peer_b))

            with anyio.fail_after(STEP_TIMEOUT):
                async with anyio.create_task_group() as reader:
                    async with anyio.create_task_group() as tg:
                        # Waits for the held bytes, then goes after them.
                        tg.start_soon(stream.send, b"after")
                        await anyio.wait_all_tasks_blocked()
                        assert stream.statistics().write_buffered == 15
                        # Ending the stream while a send waits is a conflict.
                        with pytest.raises(anyio.BusyResourceError):
                            await stream.send_eof()
                        reader.start_soon(read_in_thread)  # the peer reads: room comes
                    await stream.send_eof()
            assert received == [(before + b"held;also held;after", False)]
            assert stream.statistics() == type(stats)(write_buffered=0, writing_paused=False)


async def test_aclose_resets_when_the_peer_never_takes_the_held_bytes() -> None:
    with raw_pair() as (a, _peer_a), raw_pair() as (b, peer_b):
        other, stream = await stream_of(a), await stream_of(b, close_timeout=0.2)
        async with other:
            before = fill_kernel(b)
            await next_pass()
            await other.send(b"first of the pass")
            await stream.send(b"never let in")
            await next_pass()
            assert stream.statistics().writing_paused
            with anyio.fail_after(STEP_TIMEOUT):
                await stream.aclose()
            # The peer gets what the kernel had, then a reset: never a clean
            # end of stream after a message it did not receive whole.
            got, reset = await anyio.to_thread.run_sync(read_all, peer_b)
            assert reset
            assert got == before[: len(got)]


async def test_a_second_reader_or_writer_is_busy() -> None:
    with raw_pair() as (ours, _peer):
        stream = await stream_of(ours)
        async with stream:
            fill_kernel(ours)
            with anyio.fail_after(STEP_TIMEOUT):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(stream.receive)
                    tg.start_soon(stream.send, b"x" * (1 << 20))  # over the hold limit
                    await anyio.wait_all_tasks_blocked()
                    with pytest.raises(anyio.BusyResourceError):
                        await stream.receive()
                    with pytest.raises(anyio.BusyResourceError):
                        await stream.send(b"y")
                    tg.cancel_scope.cancel()


async def test_aclose_wakes_a_blocked_send() -> None:
    with raw_pair() as (ours, _peer):
        stream = await stream_of(ours, close_timeout=0.2)
        fill_kernel(ours)
        failures: list[BaseException] = []

        async def send_big() -> None:
            try:
                await stream.send(b"x" * (1 << 20))
            except anyio.ClosedResourceError as exc:
                failures.append(exc)

        with anyio.fail_after(STEP_TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send_big)
                await anyio.wait_all_tasks_blocked()
                await stream.aclose()
        assert len(failures) == 1
        with pytest.raises(anyio.ClosedResourceError):
            await stream.send(b"after close")
        with pytest.raises(anyio.ClosedResourceError):
            await stream.receive()


async def test_the_listener_hands_out_trio_streams_that_serve() -> None:
    async with await create_tcp_listener("127.0.0.1", 0) as listener:
        assert listener.fast
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with socket.create_connection(("127.0.0.1", port)) as peer:
            with anyio.fail_after(STEP_TIMEOUT):
                server = await listener.accept()
                assert isinstance(server, TrioSocketStream)
                async with server:
                    peer.sendall(b"ping")
                    assert await server.receive() == b"ping"
                    await server.send(b"pong")
                    await server.send_eof()
                    assert await anyio.to_thread.run_sync(read_all, peer) == (b"pong", False)
