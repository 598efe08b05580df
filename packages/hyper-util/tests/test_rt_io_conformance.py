"""The IO conformance suite: what every stream hyper_util.rt hands out must do.

What belongs here: one set of tests, parametrized over every IO adapter
(anyio's socket stream on asyncio and on trio, and the asyncio and trio
fast paths),
each checking a behaviour hyper-core's connections rely on: short reads,
end of stream, half-close, vectored writes, bounded buffering in both
directions, cancel safety, close and reset.

Strategy: each test gets a connected pair over a real loopback socket made
by hyper_util.rt itself (``create_tcp_listener`` + ``connect_tcp`` with the
adapter's ``fast`` flag): ``subject`` is the accepted end, the one under
test; ``peer`` is the connecting end. Waits for "everything is stuck" use
``anyio.wait_all_tasks_blocked`` rather than sleeps, and every wait sits
under ``fail_after``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.abc import SocketAttribute, SocketStream

from hyper_core.rt import receive_or_eof, send_all
from hyper_util.rt import (
    DEFAULT_READ_HIGH_WATER,
    DEFAULT_WRITE_HIGH_WATER,
    AsyncioSocketStream,
    TrioSocketStream,
    connect_tcp,
    create_tcp_listener,
)

pytestmark = pytest.mark.anyio

# (backend, adapter): anyio's streams, and each backend's fast path
# (asyncio transports and protocols; trio's own IO waits).
ADAPTERS = [
    pytest.param(("asyncio", "anyio"), id="anyio-stream-asyncio"),
    pytest.param(("trio", "anyio"), id="anyio-stream-trio"),
    pytest.param(("asyncio", "fast"), id="fast-asyncio"),
    pytest.param(("trio", "fast"), id="fast-trio"),
]
FAST_TYPES: dict[str, type[SocketStream]] = {
    "asyncio": AsyncioSocketStream,
    "trio": TrioSocketStream,
}

# Seconds any single test step may take on loopback.
STEP_TIMEOUT = 20.0
# Bytes pushed at a peer that does not read: far more than the loopback
# socket buffers can take (tcp_wmem max 4 MiB; an unread receive buffer
# stays near its 128 KiB initial size), so a sender must block well before.
FLOOD = 64 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(adapter: tuple[str, str]) -> tuple[str, dict[str, Any]]:
    backend = adapter[0]
    return (backend, {"debug": True} if backend == "asyncio" else {})


@pytest.fixture
async def pair(adapter: tuple[str, str]) -> AsyncIterator[tuple[SocketStream, SocketStream]]:
    fast = adapter[1] == "fast"
    async with await create_tcp_listener("127.0.0.1", 0, fast=fast) as listener:
        assert listener.fast is fast
        port = listener.extra(SocketAttribute.local_port)
        peer = await connect_tcp("127.0.0.1", port, fast=fast)
        subject = await listener.accept()
    kind = FAST_TYPES[adapter[0]]
    assert isinstance(subject, kind) is fast
    assert isinstance(peer, kind) is fast
    try:
        yield subject, peer
    finally:
        with anyio.CancelScope(shield=True):
            await subject.aclose()
            await peer.aclose()


async def read_exactly(stream: SocketStream, n: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < n:
        data = await stream.receive()
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def settle(progress: Callable[[], int]) -> None:
    """Wait until ``progress()`` stops moving: the sender is stuck for good.

    One blocked moment is not enough: a sender waits on every write that
    overflows a buffer while the kernel is still moving bytes.
    """
    last = -1
    for _ in range(200):  # at most 200 x 20 ms
        await anyio.wait_all_tasks_blocked()
        await anyio.sleep(0.02)
        if progress() == last:
            return
        last = progress()
    raise AssertionError("the sender never settled")


async def test_receive_returns_at_most_max_bytes(pair: tuple[SocketStream, SocketStream]) -> None:
    subject, peer = pair
    payload = bytes(range(256)) * 40
    with anyio.fail_after(STEP_TIMEOUT):
        await peer.send(payload)
        received = b""
        while len(received) < len(payload):
            data = await subject.receive(100)
            assert 1 <= len(data) <= 100
            received += data
    assert received == payload


async def test_end_of_stream_after_all_bytes(pair: tuple[SocketStream, SocketStream]) -> None:
    subject, peer = pair
    with anyio.fail_after(STEP_TIMEOUT):
        await peer.send(b"last words")
        await peer.send_eof()
        assert await read_exactly(subject, 10) == b"last words"
        with pytest.raises(anyio.EndOfStream):
            await subject.receive()
        # End of stream is a state, not an event: it is reported again.
        with pytest.raises(anyio.EndOfStream):
            await subject.receive()
        assert await receive_or_eof(subject) == b""


async def test_send_eof_is_a_half_close(pair: tuple[SocketStream, SocketStream]) -> None:
    subject, peer = pair
    with anyio.fail_after(STEP_TIMEOUT):
        await subject.send(b"response")
        await subject.send_eof()
        assert await read_exactly(peer, 8) == b"response"
        with pytest.raises(anyio.EndOfStream):
            await peer.receive()
        # The other direction still works after our write side shut.
        await peer.send(b"still listening?")
        assert await read_exactly(subject, 16) == b"still listening?"


async def test_send_many_writes_every_chunk_in_order(
    pair: tuple[SocketStream, SocketStream],
) -> None:
    subject, peer = pair
    chunks = [b"HTTP/1.1 200 OK\r\n", b"content-length: 5\r\n\r\n", b"hello", b"", b"!"]
    with anyio.fail_after(STEP_TIMEOUT):
        await send_all(subject, chunks)
        assert await read_exactly(peer, 43) == b"".join(chunks)


async def test_send_blocks_when_the_peer_does_not_read(
    pair: tuple[SocketStream, SocketStream],
) -> None:
    subject, peer = pair
    sent = 0

    async def flood() -> None:
        nonlocal sent
        chunk = b"w" * CHUNK
        while sent < FLOOD:
            await subject.send(chunk)
            sent += CHUNK

    with anyio.fail_after(STEP_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(flood)
            await settle(lambda: sent)
            assert sent < FLOOD, "send never waited: the write side buffers without bound"
            if isinstance(subject, AsyncioSocketStream):
                stats = subject.statistics()
                assert stats.writing_paused
                assert stats.write_buffered <= DEFAULT_WRITE_HIGH_WATER + CHUNK
            # Reading everything releases the sender, and nothing is lost.
            received = 0
            while received < FLOOD:
                data = await peer.receive()
                assert data == b"w" * len(data)
                received += len(data)
        assert received == sent == FLOOD


async def test_reading_pauses_when_the_application_does_not_read(
    pair: tuple[SocketStream, SocketStream],
) -> None:
    subject, peer = pair
    sent = 0

    async def flood() -> None:
        nonlocal sent
        chunk = b"r" * CHUNK
        while sent < FLOOD:
            await peer.send(chunk)
            sent += CHUNK

    with anyio.fail_after(STEP_TIMEOUT):
        # One read first: anyio's asyncio stream only starts pausing its
        # transport around its first receive (before that, an accepted
        # stream reads without bound, an anyio quirk the fast path lacks).
        await peer.send(b"hello")
        assert await read_exactly(subject, 5) == b"hello"
        async with anyio.create_task_group() as tg:
            tg.start_soon(flood)
            await settle(lambda: sent)
            assert sent < FLOOD, "the receiving side took everything: no read backpressure"
            if isinstance(subject, AsyncioSocketStream):
                stats = subject.statistics()
                assert stats.reading_paused
                # One more read of at most 256 KiB may land after the mark.
                assert stats.read_buffered <= DEFAULT_READ_HIGH_WATER + 256 * 1024
            received = 0
            while received < FLOOD:
                data = await subject.receive()
                assert data == b"r" * len(data)
                received += len(data)
        assert received == sent == FLOOD


async def test_a_cancelled_receive_loses_no_bytes(
    pair: tuple[SocketStream, SocketStream],
) -> None:
    subject, peer = pair
    expected = b"".join(struct.pack(">I", i) for i in range(2000))
    cancelled = 0

    async def trickle() -> None:
        for start in range(0, len(expected), 40):
            await peer.send(expected[start : start + 40])
            await anyio.lowlevel.checkpoint()
        await peer.send_eof()

    received: list[bytes] = []
    with anyio.fail_after(STEP_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(trickle)
            for _ in range(1_000_000):
                # Cancel most receives while they wait, some right away.
                with anyio.CancelScope() as scope:
                    if cancelled % 3 == 0:
                        scope.cancel()  # cancelled before it even starts waiting
                    tg.start_soon(_cancel_soon, scope)
                    try:
                        data = await subject.receive(7)
                    except anyio.EndOfStream:
                        break
                    received.append(data)
                if scope.cancelled_caught:
                    cancelled += 1
    assert b"".join(received) == expected
    assert cancelled > 0


async def _cancel_soon(scope: anyio.CancelScope) -> None:
    await anyio.lowlevel.checkpoint()
    scope.cancel()


async def test_aclose_wakes_a_blocked_receive(pair: tuple[SocketStream, SocketStream]) -> None:
    subject, _peer = pair
    outcome: list[BaseException] = []

    async def blocked_reader() -> None:
        try:
            await subject.receive()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            outcome.append(exc)

    with anyio.fail_after(STEP_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_reader)
            await anyio.wait_all_tasks_blocked()
            await subject.aclose()
    assert len(outcome) == 1
    assert isinstance(outcome[0], anyio.ClosedResourceError)
    with pytest.raises(anyio.ClosedResourceError):
        await subject.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await subject.send(b"too late")


async def test_peer_reset_is_broken_resource(pair: tuple[SocketStream, SocketStream]) -> None:
    subject, peer = pair
    with anyio.fail_after(STEP_TIMEOUT):
        await peer.send(b"before the reset")
        assert await read_exactly(subject, 16) == b"before the reset"
        # SO_LINGER with a zero timeout turns close() into a reset (RST).
        raw = peer.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await peer.aclose()
        with pytest.raises(anyio.BrokenResourceError):
            await subject.receive()
        with pytest.raises(anyio.BrokenResourceError):
            await send_until_error(subject)


async def send_until_error(stream: SocketStream) -> None:
    for _ in range(100):  # bounded: the first sends may still be accepted
        await stream.send(b"anyone there?")
        await anyio.sleep(0.01)
    raise AssertionError("sending to a reset connection never failed")


async def test_tcp_nodelay_and_addresses(pair: tuple[SocketStream, SocketStream]) -> None:
    subject, peer = pair
    for stream in (subject, peer):
        raw = stream.extra(SocketAttribute.raw_socket)
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assert subject.extra(SocketAttribute.remote_address) == peer.extra(
        SocketAttribute.local_address
    )
    assert subject.extra(SocketAttribute.local_port) == peer.extra(SocketAttribute.remote_port)
    assert subject.extra(SocketAttribute.family) == socket.AF_INET
