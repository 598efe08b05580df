"""hyper_core.rt: the executor, the anyio timer, and the IO protocol."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.streams.stapled import StapledByteStream
from anyio.streams.tls import TLSStream

import hyper_core.rt
from hyper_core.rt import (
    IO,
    AnyioTimer,
    Deadline,
    Executor,
    TaskGroupExecutor,
    Timer,
    default_timer,
    flush,
    receive_or_eof,
    send_all,
)
from hyper_core.testing import MemoryByteStream, memory_pipe

pytestmark = pytest.mark.anyio

SRC = Path(__file__).resolve().parents[1] / "src"


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name for name in vars(hyper_core.rt) if not name.startswith("_") and name != "annotations"
    }
    assert set(hyper_core.rt.__all__) == public


# --- typing: anyio streams are IO without a wrapper --------------------------


def _anyio_streams_are_io(
    socket: anyio.abc.SocketStream,
    tls: TLSStream,
    stapled: StapledByteStream,
    byte_stream: anyio.abc.ByteStream,
    unix: anyio.abc.UNIXSocketStream,
    memory: MemoryByteStream,
) -> list[IO]:
    # Checked by mypy over this file: each assignment must type-check.
    a: IO = socket
    b: IO = tls
    c: IO = stapled
    d: IO = byte_stream
    e: IO = unix
    f: IO = memory
    return [a, b, c, d, e, f]


def _defaults_satisfy_protocols(tg: anyio.abc.TaskGroup) -> tuple[Executor, Timer, Deadline]:
    executor: Executor = TaskGroupExecutor(tg)
    timer: Timer = AnyioTimer()
    deadline: Deadline = timer.deadline(math.inf)
    return executor, timer, deadline


def test_mypy_accepts_anyio_streams_as_io_and_rejects_a_partial_one(tmp_path: Path) -> None:
    # The same check as the annotated helpers above, run here so that a test
    # fails (not only the type-check session) if IO drifts away from anyio's
    # ByteStream; the negative case proves the check is not vacuous.
    snippet = tmp_path / "snippet.py"
    source = textwrap.dedent(
        """
            from __future__ import annotations

            import anyio.abc
            from anyio.streams.tls import TLSStream

            from hyper_core.rt import IO


            class NoHalfClose:
                async def receive(self, max_bytes: int = 65536) -> bytes:
                    return b""

                async def send(self, item: bytes) -> None: ...

                async def aclose(self) -> None: ...


            def check(sock: anyio.abc.SocketStream, tls: TLSStream, partial: NoHalfClose) -> None:
                ok_socket: IO = sock
                ok_tls: IO = tls
                not_io: IO = partial
            """
    )
    snippet.write_text(source)
    bad_line = source.splitlines().index("    not_io: IO = partial") + 1
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(snippet),
        ],
        env={"MYPYPATH": str(SRC), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert f"snippet.py:{bad_line}:" in errors[0]
    assert '"NoHalfClose"' in errors[0]
    assert "send_eof" in result.stdout


# --- Executor ------------------------------------------------------------------


async def test_task_group_executor_runs_coroutine_functions_with_arguments() -> None:
    results: list[tuple[str, int]] = []

    async def work(name: str, n: int) -> None:
        await anyio.lowlevel.checkpoint()
        results.append((name, n))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            executor = TaskGroupExecutor(tg)
            assert executor.task_group is tg
            executor.spawn(work, "a", 1)
            executor.spawn(work, "b", 2)
            assert results == []  # spawn does not wait
    assert sorted(results) == [("a", 1), ("b", 2)]


async def test_task_group_executor_accepts_any_awaitable_factory() -> None:
    done = anyio.Event()

    class Job:
        def __await__(self):  # type: ignore[no-untyped-def]
            done.set()
            return (yield from anyio.lowlevel.checkpoint().__await__())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            TaskGroupExecutor(tg).spawn(Job)
    assert done.is_set()


async def test_task_group_executor_failure_propagates_to_the_task_group() -> None:
    async def boom() -> None:
        raise LookupError("spawned task failed")

    with anyio.fail_after(5), pytest.RaisesGroup(LookupError):
        async with anyio.create_task_group() as tg:
            TaskGroupExecutor(tg).spawn(boom)


# --- AnyioTimer ----------------------------------------------------------------


async def test_default_timer_is_a_shared_anyio_timer() -> None:
    assert isinstance(default_timer(), AnyioTimer)
    assert default_timer() is default_timer()


async def test_anyio_timer_reads_the_event_loop_clock_and_sleeps() -> None:
    timer = AnyioTimer()
    before = timer.now()
    assert abs(before - anyio.current_time()) < 1
    # asyncio may wake a timer up to its clock resolution early: allow 1 ms.
    await timer.sleep(0.01)
    middle = timer.now()
    assert middle - before >= 0.009
    await timer.sleep_until(middle + 0.01)
    assert timer.now() >= middle + 0.009
    await timer.sleep(-1)  # a checkpoint, not an error


async def test_anyio_deadline_cancels_the_block_and_reports_expiry() -> None:
    timer = AnyioTimer()
    reached_end = False
    with anyio.fail_after(5):
        with timer.deadline(timer.now() + 0.02) as deadline:
            await anyio.sleep(10)
            reached_end = True
    assert not reached_end
    assert deadline.expired


async def test_anyio_deadline_not_reached_is_not_expired() -> None:
    timer = AnyioTimer()
    with timer.deadline(timer.now() + 10) as deadline:
        await anyio.lowlevel.checkpoint()
    assert not deadline.expired
    with timer.deadline(math.inf) as never:
        await anyio.sleep(0.01)
    assert not never.expired


async def test_anyio_deadline_can_be_moved_while_active() -> None:
    timer = AnyioTimer()
    with anyio.fail_after(5):
        with timer.deadline(timer.now() + 0.02) as deadline:
            deadline.deadline = timer.now() + 10  # pushed out: the sleep completes
            await anyio.sleep(0.05)
            deadline.deadline = timer.now() + 0.01  # pulled in: the next wait is cut
            assert deadline.deadline == pytest.approx(timer.now() + 0.01, abs=0.01)
            await anyio.sleep(10)
    assert deadline.expired


async def test_anyio_deadline_in_the_past_fires_at_the_first_checkpoint() -> None:
    timer = AnyioTimer()
    with timer.deadline(timer.now() - 1) as deadline:
        await anyio.lowlevel.checkpoint()
        pytest.fail("the block should have been cancelled")
    assert deadline.expired


async def test_anyio_deadline_set_before_entry_is_used() -> None:
    timer = AnyioTimer()
    deadline = timer.deadline(math.inf)
    deadline.deadline = timer.now() - 1
    with deadline:
        await anyio.lowlevel.checkpoint()
    assert deadline.expired


async def test_anyio_deadline_does_not_swallow_outer_cancellation() -> None:
    timer = AnyioTimer()
    with anyio.CancelScope() as outer:
        with timer.deadline(timer.now() + 10) as inner:
            outer.cancel()
            await anyio.lowlevel.checkpoint()
        pytest.fail("the outer cancellation must pass through the deadline")
    assert outer.cancelled_caught
    assert not inner.expired


async def test_deadline_guards_a_single_block() -> None:
    timer = AnyioTimer()
    deadline = timer.deadline(math.inf)
    with deadline:
        pass
    with pytest.raises(RuntimeError), deadline:
        pass


# --- IO over a real loopback TCP connection -------------------------------------


@asynccontextmanager
async def loopback_pair() -> AsyncIterator[tuple[anyio.abc.SocketStream, anyio.abc.SocketStream]]:
    """A connected (client, server) pair of real TCP streams on 127.0.0.1."""
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with multi:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        accepted: list[anyio.abc.SocketStream] = []
        async with anyio.create_task_group() as tg:

            async def accept_one() -> None:
                accepted.append(await listener.accept())

            tg.start_soon(accept_one)
            client = await anyio.connect_tcp("127.0.0.1", port)
        async with client, accepted[0] as server:
            yield client, server


async def _echo_upper(io: IO) -> None:
    # Written against IO only: it must work on a real socket as is.
    while data := await receive_or_eof(io, 4096):
        await send_all(io, [data.upper()])
    await io.send_eof()


async def test_socket_stream_is_io_over_loopback_tcp() -> None:
    with anyio.fail_after(10):
        async with loopback_pair() as (client_stream, server), anyio.create_task_group() as tg:
            tg.start_soon(_echo_upper, server)
            io: IO = client_stream
            # A SocketStream has no send_many: send_all joins the chunks.
            assert not hasattr(client_stream, "send_many")
            await send_all(io, [b"hello ", b"over ", b"tcp"])
            await flush(io)  # no flush method: a no-op
            await io.send_eof()
            received = bytearray()
            while chunk := await receive_or_eof(io):
                received += chunk
            assert bytes(received) == b"HELLO OVER TCP"
            # End of stream stays end of stream.
            assert await receive_or_eof(io) == b""


async def test_deadline_bounds_a_read_on_a_real_socket() -> None:
    timer = AnyioTimer()
    with anyio.fail_after(10):
        async with loopback_pair() as (client, server):
            io: IO = server
            data = None
            with timer.deadline(timer.now() + 0.05) as deadline:
                data = await io.receive()
            assert deadline.expired
            assert data is None
            # The stream is still usable after a timed-out read.
            await client.send(b"late")
            with timer.deadline(timer.now() + 5) as deadline:
                data = await io.receive()
            assert not deadline.expired
            assert data == b"late"


# --- IO helpers --------------------------------------------------------------------


class RecordingIO:
    """An IO with the optional capabilities, recording how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.calls.append(("receive", max_bytes))
        raise anyio.EndOfStream

    async def send(self, item: bytes) -> None:
        self.calls.append(("send", item))

    async def send_many(self, items: Sequence[bytes]) -> None:
        self.calls.append(("send_many", list(items)))

    async def flush(self) -> None:
        self.calls.append(("flush", None))

    async def send_eof(self) -> None:
        self.calls.append(("send_eof", None))

    async def aclose(self) -> None:
        self.calls.append(("aclose", None))


class PlainIO(RecordingIO):
    send_many = None  # type: ignore[assignment]
    flush = None  # type: ignore[assignment]


async def test_send_all_prefers_a_vectored_write() -> None:
    io = RecordingIO()
    await send_all(io, [b"a", b"b", b"c"])
    assert io.calls == [("send_many", [b"a", b"b", b"c"])]


async def test_send_all_without_send_many_sends_once() -> None:
    io = PlainIO()
    await send_all(io, [b"a", b"b", b"c"])
    await send_all(io, [b"single"])
    await send_all(io, [])
    assert io.calls == [("send", b"abc"), ("send", b"single")]


async def test_flush_calls_flush_when_present() -> None:
    io = RecordingIO()
    await flush(io)
    assert io.calls == [("flush", None)]
    plain = PlainIO()
    await flush(plain)
    assert plain.calls == []


async def test_receive_or_eof_maps_end_of_stream_and_passes_size() -> None:
    io = RecordingIO()
    assert await receive_or_eof(io, 123) == b""
    assert io.calls == [("receive", 123)]


async def test_receive_or_eof_does_not_hide_a_broken_or_closed_stream() -> None:
    left, right = memory_pipe()
    await right.send(b"x")
    assert await receive_or_eof(left) == b"x"
    await left.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await receive_or_eof(left)
    with pytest.raises(anyio.BrokenResourceError):
        await right.send(b"y")
    assert await receive_or_eof(right) == b""


async def test_anyio_timer_clock_runs_at_wall_clock_speed() -> None:
    # AnyioTimer reads the loop clock, which is monotonic like time.monotonic.
    timer = AnyioTimer()
    start_loop, start_wall = timer.now(), time.monotonic()
    await anyio.sleep(0.02)
    assert timer.now() - start_loop == pytest.approx(time.monotonic() - start_wall, abs=0.5)
