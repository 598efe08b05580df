"""hyper_core.testing: the fake timer and the in-memory pipe."""

from __future__ import annotations

import math
import time

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import hyper_core.testing
from hyper_core.error import UserError
from hyper_core.rt import IO, Timer
from hyper_core.testing import FakeTimer, MemoryByteStream, memory_pipe

pytestmark = pytest.mark.anyio


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name in vars(hyper_core.testing)
        if not name.startswith("_") and name != "annotations"
    }
    assert set(hyper_core.testing.__all__) == public


def _fake_timer_is_a_timer(timer: FakeTimer, stream: MemoryByteStream) -> tuple[Timer, IO]:
    # Checked by mypy.
    t: Timer = timer
    io: IO = stream
    return t, io


# --- FakeTimer: manual advance -------------------------------------------------------


async def test_fake_clock_starts_where_told_and_moves_only_on_advance() -> None:
    timer = FakeTimer(start=100.0)
    assert timer.now() == 100.0
    await anyio.sleep(0.01)  # wall time passes; fake time does not
    assert timer.now() == 100.0
    timer.advance(2.5)
    assert timer.now() == 102.5
    timer.advance(0)
    assert timer.now() == 102.5
    with pytest.raises(ValueError, match="forward"):
        timer.advance(-1)
    assert timer.now() == 102.5


async def test_sleep_ends_only_when_the_clock_reaches_it() -> None:
    timer = FakeTimer()
    woke_at: list[float] = []

    async def sleeper(seconds: float) -> None:
        await timer.sleep(seconds)
        woke_at.append(timer.now())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, 10)
            tg.start_soon(sleeper, 5)
            await anyio.wait_all_tasks_blocked()
            assert timer.next_deadline() == 5
            timer.advance(4.9)
            await anyio.wait_all_tasks_blocked()
            assert woke_at == []
            timer.advance(0.1)
            await anyio.wait_all_tasks_blocked()
            assert woke_at == [5.0]
            timer.advance(100)
    assert woke_at == [5.0, 105.0]
    assert timer.next_deadline() == math.inf


async def test_sleep_until_and_zero_or_past_sleeps_return_at_once() -> None:
    timer = FakeTimer(start=10)
    with anyio.fail_after(5):
        await timer.sleep(0)
        await timer.sleep(-3)
        await timer.sleep_until(10)
        await timer.sleep_until(1)
    assert timer.now() == 10
    assert timer.next_deadline() == math.inf


async def test_a_cancelled_sleep_leaves_nothing_scheduled() -> None:
    timer = FakeTimer()
    with anyio.move_on_after(0.01) as scope:  # a real-time bound on a fake sleep
        await timer.sleep(50)
    assert scope.cancelled_caught
    assert timer.next_deadline() == math.inf
    timer.advance(100)  # waking a gone sleeper is harmless


async def test_fake_deadline_fires_when_the_clock_passes_it() -> None:
    timer = FakeTimer()
    left, right = memory_pipe()
    outcome: list[object] = []

    async def reader() -> None:
        with timer.deadline(timer.now() + 30) as deadline:
            outcome.append(await left.receive())
        outcome.append(deadline.expired)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            assert timer.next_deadline() == 30
            timer.advance(29.999)
            await anyio.wait_all_tasks_blocked()
            assert outcome == []
            timer.advance(0.001)
    assert outcome == [True]
    # The read was cancelled cleanly: the pipe still works.
    await right.send(b"after")
    assert await left.receive() == b"after"


async def test_thirty_second_timeout_takes_no_wall_time() -> None:
    # The connection idiom: bound a read by 30 s; nothing ever arrives.
    left, _right = memory_pipe()
    started = time.monotonic()
    with anyio.fail_after(5):
        async with FakeTimer(autojump=True) as timer:
            with timer.deadline(timer.now() + 30) as deadline:
                await left.receive()
    assert deadline.expired
    assert timer.now() == 30
    # On asyncio anyio polls for idleness every 0.1 s; 30 s of fake time must
    # still cost a tiny fraction of 30 s.
    assert time.monotonic() - started < 2


async def test_deadline_not_reached_is_not_expired_and_unregisters() -> None:
    timer = FakeTimer()
    with timer.deadline(5) as deadline:
        assert timer.next_deadline() == 5
        await anyio.lowlevel.checkpoint()
    assert not deadline.expired
    assert timer.next_deadline() == math.inf


def test_the_timer_counts_the_deadline_scopes_it_makes() -> None:
    timer = FakeTimer()
    assert timer.deadlines_made == 0
    timer.deadline(5)
    timer.deadline(math.inf)
    assert timer.deadlines_made == 2


async def test_deadline_reset_while_idle_pushes_the_timeout_out() -> None:
    # A connection resets `.deadline` each time it goes idle again.
    timer = FakeTimer()
    left, right = memory_pipe()
    received: list[bytes] = []
    expired: list[bool] = []

    async def idle_reader() -> None:
        with timer.deadline(timer.now() + 30) as deadline:
            while True:
                received.append(await left.receive())
                deadline.deadline = timer.now() + 30
        expired.append(deadline.expired)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(idle_reader)
            await anyio.wait_all_tasks_blocked()
            timer.advance(20)
            await right.send(b"a")
            await anyio.wait_all_tasks_blocked()
            assert timer.next_deadline() == 50
            timer.advance(20)  # t=40: 20 s idle since the reset, not 40
            await anyio.wait_all_tasks_blocked()
            assert expired == []
            timer.advance(10)  # t=50
    assert received == [b"a"]
    assert expired == [True]


async def test_deadline_moved_into_the_past_fires_at_once() -> None:
    timer = FakeTimer(start=10)
    with anyio.fail_after(5):
        with timer.deadline(100) as deadline:
            deadline.deadline = 10
            await anyio.sleep(10)  # a real sleep: only the fake deadline can end it
    assert deadline.expired
    with timer.deadline(5) as already_past:
        await anyio.lowlevel.checkpoint()
    assert already_past.expired


async def test_deadline_does_not_swallow_outer_cancellation() -> None:
    timer = FakeTimer()
    with anyio.CancelScope() as outer:
        with timer.deadline(10) as inner:
            outer.cancel()
            await anyio.lowlevel.checkpoint()
    assert outer.cancelled_caught
    assert not inner.expired


async def test_a_fired_deadline_stays_fired_when_moved() -> None:
    timer = FakeTimer()
    with timer.deadline(1) as deadline:
        timer.advance(1)
        deadline.deadline = 1000
        assert timer.next_deadline() == math.inf
        await anyio.lowlevel.checkpoint()
    assert deadline.expired


# --- FakeTimer: autojump ------------------------------------------------------------


async def test_autojump_runs_sleepers_in_time_order() -> None:
    order: list[tuple[str, float]] = []
    with anyio.fail_after(5):
        async with FakeTimer(autojump=True) as timer, anyio.create_task_group() as tg:

            async def sleeper(name: str, seconds: float) -> None:
                await timer.sleep(seconds)
                order.append((name, timer.now()))

            tg.start_soon(sleeper, "hour", 3600)
            tg.start_soon(sleeper, "minute", 60)
            tg.start_soon(sleeper, "second", 1)
    assert order == [("second", 1), ("minute", 60), ("hour", 3600)]


async def test_autojump_does_not_move_while_a_task_can_run() -> None:
    with anyio.fail_after(5):
        async with FakeTimer(autojump=True) as timer:
            done = anyio.Event()

            async def busy_then_done() -> None:
                for _ in range(50):
                    await anyio.lowlevel.checkpoint()
                    assert timer.now() == 0  # runnable work pending: no jump
                done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(busy_then_done)
                with timer.deadline(10) as deadline:
                    await done.wait()
            assert not deadline.expired
            assert timer.now() == 0


async def test_autojump_leaves_the_clock_alone_with_nothing_scheduled() -> None:
    with anyio.fail_after(5):
        async with FakeTimer(autojump=True) as timer:
            await anyio.wait_all_tasks_blocked()
            await anyio.sleep(0.05)
            assert timer.now() == 0
            await timer.sleep(7)
            assert timer.now() == 7


async def test_autojump_outside_its_block_is_a_user_error() -> None:
    timer = FakeTimer(autojump=True)
    assert timer.autojump
    with pytest.raises(UserError, match="async with"):
        await timer.sleep(1)
    with pytest.raises(UserError), timer.deadline(1):
        pass


async def test_exceptions_leave_the_timer_block_unwrapped() -> None:
    async def fail_inside() -> None:
        async with FakeTimer(autojump=True) as timer:
            await timer.sleep(1)
            raise KeyError("not wrapped in an exception group")

    with anyio.fail_after(5), pytest.raises(KeyError):
        await fail_inside()


async def test_manual_timer_also_works_as_a_context_manager() -> None:
    async with FakeTimer() as timer:
        assert not timer.autojump
        timer.advance(1)
    assert timer.now() == 1
    assert "FakeTimer" in repr(timer)


# --- memory_pipe --------------------------------------------------------------------


async def test_pipe_carries_bytes_both_ways() -> None:
    a, b = memory_pipe()
    with anyio.fail_after(5):
        await a.send(b"ping")
        assert await b.receive() == b"ping"
        await b.send(b"pong")
        assert await a.receive() == b"pong"
        await a.send_many([b"x", b"", b"yz"])
        assert await b.receive() == b"xyz"


async def test_receive_returns_at_most_max_bytes() -> None:
    a, b = memory_pipe()
    await a.send(b"abcdef")
    assert await b.receive(4) == b"abcd"
    assert await b.receive(4) == b"ef"
    with pytest.raises(ValueError, match="max_bytes"):
        await b.receive(0)


async def test_receive_waits_for_data() -> None:
    a, b = memory_pipe()
    got: list[bytes] = []

    async def read() -> None:
        got.append(await b.receive())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            await a.send(b"now")
    assert got == [b"now"]


async def test_send_blocks_at_the_buffer_bound() -> None:
    a, b = memory_pipe(max_buffer=10)
    sent: list[int] = []

    async def write(size: int) -> None:
        await a.send(b"x" * size)
        sent.append(size)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(write, 8)
            await anyio.wait_all_tasks_blocked()
            assert sent == [8]
            assert a.buffered_outgoing() == 8
            tg.start_soon(write, 5)  # 8 + 5 > 10: waits, writes nothing yet
            await anyio.wait_all_tasks_blocked()
            assert sent == [8]
            assert a.buffered_outgoing() == 8
            assert await b.receive(3) == b"xxx"  # room for 5 now
            await anyio.wait_all_tasks_blocked()
            assert sent == [8, 5]
            assert a.buffered_outgoing() == 10
        assert await b.receive() == b"x" * 10


async def test_a_chunk_larger_than_the_buffer_goes_in_parts() -> None:
    a, b = memory_pipe(max_buffer=4)
    received = bytearray()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.send, b"0123456789")
            await anyio.wait_all_tasks_blocked()
            assert a.buffered_outgoing() == 4
            while len(received) < 10:
                received += await b.receive()
    assert bytes(received) == b"0123456789"


async def test_a_cancelled_send_that_fits_writes_nothing() -> None:
    a, b = memory_pipe(max_buffer=4)
    await a.send(b"full")
    with anyio.move_on_after(0.01) as scope:
        await a.send(b"more")
    assert scope.cancelled_caught
    assert await b.receive() == b"full"
    assert a.buffered_outgoing() == 0


async def test_send_eof_ends_the_peer_read_after_the_buffered_bytes() -> None:
    a, b = memory_pipe()
    await a.send(b"last words")
    await a.send_eof()
    await a.send_eof()  # idempotent
    assert await b.receive() == b"last words"
    with pytest.raises(anyio.EndOfStream):
        await b.receive()
    with pytest.raises(anyio.EndOfStream):
        await b.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await a.send(b"after eof")
    # Half-close: the other direction still works.
    await b.send(b"reply")
    assert await a.receive() == b"reply"


async def test_send_eof_wakes_a_waiting_reader() -> None:
    a, b = memory_pipe()
    outcome: list[str] = []

    async def read() -> None:
        try:
            await b.receive()
        except anyio.EndOfStream:
            outcome.append("eof")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            await a.send_eof()
    assert outcome == ["eof"]


async def test_aclose_ends_the_peer_read_and_breaks_the_peer_send() -> None:
    a, b = memory_pipe()
    await a.send(b"sent before close")
    await b.send(b"never read")
    await a.aclose()
    await a.aclose()  # idempotent
    assert await b.receive() == b"sent before close"
    with pytest.raises(anyio.EndOfStream):
        await b.receive()
    with pytest.raises(anyio.BrokenResourceError):
        await b.send(b"to a closed peer")
    for operation in (a.receive(), a.send(b"x"), a.send_eof()):
        with pytest.raises(anyio.ClosedResourceError):
            await operation


async def test_aclose_breaks_a_peer_writer_waiting_for_room() -> None:
    a, b = memory_pipe(max_buffer=1)
    await b.send(b"!")  # b's outgoing buffer is full: b's next send waits
    outcome: list[type[BaseException]] = []

    async def write() -> None:
        try:
            await b.send(b"more")
        except anyio.BrokenResourceError as exc:
            outcome.append(type(exc))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.wait_all_tasks_blocked()
            assert outcome == []
            await a.aclose()
    assert outcome == [anyio.BrokenResourceError]


async def test_aclose_wakes_a_blocked_own_reader_and_writer() -> None:
    a, b = memory_pipe(max_buffer=1)
    await a.send(b"!")  # a's outgoing is full: a's next send waits
    outcomes: dict[str, type[BaseException]] = {}

    async def run(name: str, op: str) -> None:
        try:
            if op == "receive":
                await a.receive()
            else:
                await a.send(b"more")
        except Exception as exc:
            outcomes[name] = type(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "reader", "receive")
            tg.start_soon(run, "writer", "send")
            await anyio.wait_all_tasks_blocked()
            await a.aclose()
    assert outcomes == {
        "reader": anyio.ClosedResourceError,
        "writer": anyio.ClosedResourceError,
    }
    assert await b.receive() == b"!"


async def test_concurrent_receives_are_refused() -> None:
    a, b = memory_pipe()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(b.receive)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError):
                await b.receive()
            await a.send(b"x")


async def test_a_cancelled_receive_loses_nothing() -> None:
    a, b = memory_pipe()
    with anyio.move_on_after(0.01):
        await b.receive()
    await a.send(b"kept")
    assert await b.receive() == b"kept"


async def test_pipe_streams_are_anyio_byte_streams() -> None:
    a, b = memory_pipe()
    assert isinstance(a, anyio.abc.ByteStream)
    async with a, b:
        await a.send(b"chunk")
        await a.send_eof()
        chunks = [chunk async for chunk in b]  # anyio's ByteReceiveStream iteration
    assert chunks == [b"chunk"]
    assert "closed" in repr(a)


def test_pipe_rejects_a_zero_buffer() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        memory_pipe(0)


async def test_outer_cancellation_passes_through_an_autojump_timer() -> None:
    with anyio.fail_after(5):
        with anyio.move_on_after(0.02) as outer:
            async with FakeTimer(autojump=True):
                await anyio.sleep(10)  # real time: the fake clock has nothing to jump to
        assert outer.cancelled_caught
