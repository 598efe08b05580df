"""hyper_core.body.Incoming: the received body, over a connection's source."""

from __future__ import annotations

import anyio
import pytest

from hyper_core.body import Body, Frame, Incoming, IncomingSender, SizeHint, collect
from hyper_core.body._incoming import _IncomingSource
from hyper_core.error import ClosedError, IncompleteMessageError, ProtocolError
from hyper_core.http import Headers

pytestmark = pytest.mark.anyio


def _incoming_is_a_body(body: Incoming) -> Body:
    return body  # checked by mypy


class ScriptedSource:
    """A connection-like source that serves a fixed list of frames."""

    def __init__(self, frames: list[Frame], hint: SizeHint) -> None:
        self.frames = frames
        self.hint = hint
        self.released = 0

    async def next_frame(self) -> Frame | None:
        await anyio.lowlevel.checkpoint()
        return self.frames.pop(0) if self.frames else None

    def is_end_stream(self) -> bool:
        return not self.frames

    def size_hint(self) -> SizeHint:
        return self.hint

    def release(self) -> None:
        self.released += 1


def _scripted_source_is_a_source(source: ScriptedSource) -> _IncomingSource:
    return source  # checked by mypy: the protocol a connection implements


async def test_empty_incoming() -> None:
    body = Incoming.empty()
    assert body.is_end_stream()
    assert body.size_hint() == SizeHint.exact(0)
    assert await body.frame() is None
    assert [chunk async for chunk in Incoming.empty()] == []
    assert await collect(Incoming.empty()) == await collect(Incoming.empty())


async def test_incoming_over_a_custom_source() -> None:
    trailers = Headers({"x-checksum": "1"})
    source = ScriptedSource(
        [Frame.data(b"ab"), Frame.data(b"c"), Frame.trailers(trailers)], SizeHint(3, 3)
    )
    body = Incoming(source)
    assert body.size_hint().exact == 3
    assert not body.is_end_stream()
    before = body.trailers
    assert before is None
    collected = await collect(body)
    assert collected.data == b"abc"
    assert collected.trailers == trailers
    assert body.trailers is trailers
    assert body.is_end_stream()


async def test_async_iteration_yields_data_and_keeps_trailers_aside() -> None:
    trailers = Headers({"t": "v"})
    source = ScriptedSource(
        [Frame.data(b"1"), Frame.other("x", None), Frame.data(b"2"), Frame.trailers(trailers)],
        SizeHint(),
    )
    body = Incoming(source)
    chunks = [chunk async for chunk in body]
    assert chunks == [b"1", b"2"]
    assert body.trailers is trailers


async def test_aclose_releases_the_source_once() -> None:
    source = ScriptedSource([Frame.data(b"unread")], SizeHint.exact(6))
    body = Incoming(source)
    await body.aclose()
    await body.aclose()
    assert source.released == 1
    assert body.is_end_stream()
    assert body.size_hint() == SizeHint.exact(0)
    with pytest.raises(ClosedError):
        await body.frame()
    assert "closed" in repr(body)


def test_close_from_sync_code_releases_the_source_once() -> None:
    source = ScriptedSource([Frame.data(b"unread")], SizeHint.exact(6))
    body = Incoming(source)
    body.close()
    body.close()
    assert source.released == 1
    assert body.is_end_stream()
    assert "closed" in repr(body)


# --- Incoming.from_channel -----------------------------------------------------------


async def test_channel_source_delivers_pushed_frames() -> None:
    sender, body = Incoming.from_channel()
    sender.send_data_nowait(b"hello ")
    await sender.send_data(b"world")
    sender.send_trailers(Headers({"grpc-status": "0"}))
    collected = await collect(body)
    assert collected.data == b"hello world"
    assert collected.trailers == Headers({"grpc-status": "0"})
    assert body.is_end_stream()


async def test_reader_waits_for_pushes_and_the_end() -> None:
    sender, body = Incoming.from_channel()
    chunks: list[bytes] = []

    async def read() -> None:
        chunks.extend([chunk async for chunk in body])

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            sender.send_data_nowait(b"a")
            await anyio.wait_all_tasks_blocked()
            assert chunks == []  # still iterating: the end has not come
            sender.send_data_nowait(b"b")
            sender.finish()
    assert chunks == [b"a", b"b"]


async def test_size_hint_shrinks_as_data_is_read() -> None:
    sender, body = Incoming.from_channel(size_hint=SizeHint.exact(10))
    assert body.size_hint() == SizeHint.exact(10)
    sender.send_data_nowait(b"1234")
    assert await body.frame() == Frame.data(b"1234")
    assert body.size_hint() == SizeHint.exact(6)
    sender.send_data_nowait(b"567890")
    sender.finish()
    await body.frame()
    assert body.size_hint() == SizeHint.exact(0)
    assert body.is_end_stream()
    unknown_sender, unknown = Incoming.from_channel()
    assert unknown.size_hint() == SizeHint()
    unknown_sender.finish()
    assert unknown.size_hint() == SizeHint.exact(0)


async def test_send_data_waits_at_the_byte_bound() -> None:
    sender, body = Incoming.from_channel(max_buffer=10)
    pushed: list[int] = []

    async def push(size: int) -> None:
        await sender.send_data(b"x" * size)
        pushed.append(size)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(push, 6)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(push, 5)  # 6 + 5 > 10: waits
            await anyio.wait_all_tasks_blocked()
            assert pushed == [6]
            assert sender.queued_bytes == 6
            assert await body.frame() == Frame.data(b"x" * 6)
            await anyio.wait_all_tasks_blocked()
            assert pushed == [6, 5]
            tg.start_soon(push, 50)  # larger than the bound: goes in alone
            await anyio.wait_all_tasks_blocked()
            assert pushed == [6, 5]
            await body.frame()
            await anyio.wait_all_tasks_blocked()
            assert pushed == [6, 5, 50]
    # send_data_nowait ignores the bound: the caller bounds itself.
    sender.send_data_nowait(b"y" * 100)
    assert sender.queued_bytes == 150


async def test_every_queued_byte_is_reported_consumed_exactly_once() -> None:
    consumed: list[int] = []
    released: list[bool] = []
    sender, body = Incoming.from_channel(
        on_consumed=consumed.append, on_release=lambda: released.append(True)
    )
    sender.send_data_nowait(b"12345")
    sender.send_data_nowait(b"")  # nothing to report
    sender.send_data_nowait(b"678")
    sender.send_data_nowait(b"90")
    assert consumed == []  # nothing is consumed until the reader takes it
    assert await body.frame() == Frame.data(b"12345")
    assert consumed == [5]
    await body.aclose()  # 5 bytes still queued are dropped and reported
    assert consumed == [5, 5]
    assert released == [True]
    assert sender.is_released
    with pytest.raises(ClosedError):
        sender.send_data_nowait(b"late")
    with pytest.raises(ClosedError):
        await sender.send_data(b"late")
    await body.aclose()
    assert released == [True]


async def test_abort_gives_the_reader_the_connection_error() -> None:
    consumed: list[int] = []
    sender, body = Incoming.from_channel(on_consumed=consumed.append)
    sender.send_data_nowait(b"partial")
    sender.abort(IncompleteMessageError("connection closed before the body was complete"))
    assert consumed == [7]  # dropped bytes are reported too
    with pytest.raises(IncompleteMessageError):
        await body.frame()
    assert not body.is_end_stream()
    sender.abort(ProtocolError("ignored: already aborted"))
    with pytest.raises(IncompleteMessageError):
        await body.frame()


async def test_abort_wakes_a_waiting_reader() -> None:
    sender, body = Incoming.from_channel()
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await body.frame()
        except ProtocolError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            sender.abort(ProtocolError("stream reset", error_code=8))
    assert len(errors) == 1
    assert isinstance(errors[0], ProtocolError)
    assert errors[0].error_code == 8


async def test_release_wakes_a_sender_waiting_for_room() -> None:
    sender, body = Incoming.from_channel(max_buffer=1)
    sender.send_data_nowait(b"full")
    outcome: list[type[BaseException]] = []

    async def push() -> None:
        try:
            await sender.send_data(b"more")
        except ClosedError as exc:
            outcome.append(type(exc))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(push)
            await anyio.wait_all_tasks_blocked()
            assert outcome == []
            await body.aclose()
    assert outcome == [ClosedError]


async def test_cancelled_reader_loses_nothing() -> None:
    sender, body = Incoming.from_channel()
    with anyio.move_on_after(0.001) as scope:
        await body.frame()
    assert scope.cancelled_caught
    sender.send_data_nowait(b"kept")
    sender.finish()
    assert [chunk async for chunk in body] == [b"kept"]


async def test_sending_after_the_end_fails() -> None:
    sender, body = Incoming.from_channel()
    sender.finish()
    sender.finish()
    with pytest.raises(ClosedError, match="ended"):
        sender.send_data_nowait(b"x")
    with pytest.raises(ClosedError):
        sender.send_trailers(Headers())
    assert await body.frame() is None
    assert "ended" in repr(sender)


def test_from_channel_rejects_a_zero_buffer() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        Incoming.from_channel(max_buffer=0)


def _sender_type(sender: IncomingSender) -> IncomingSender:
    return sender


async def test_frame_ready_says_whether_a_read_would_wait() -> None:
    sender, body = Incoming.from_channel()
    assert not body.frame_ready()  # nothing queued: a read would wait
    sender.send_data_nowait(b"one")
    assert body.frame_ready()
    assert await body.frame() == Frame.data(b"one")
    assert not body.frame_ready()
    sender.finish()
    assert body.frame_ready()  # the end is there
    assert await body.frame() is None

    failed_sender, failed = Incoming.from_channel()
    failed_sender.abort(ProtocolError("stream reset"))
    assert failed.frame_ready()  # the error is there
    with pytest.raises(ProtocolError):
        await failed.frame()


async def test_frame_ready_for_empty_closed_and_unknowing_bodies() -> None:
    assert Incoming.empty().frame_ready()
    _, closed = Incoming.from_channel()
    await closed.aclose()
    assert closed.frame_ready()
    with pytest.raises(ClosedError):
        await closed.frame()
    # A source that cannot tell (no frame_ready) is never "ready", even with
    # frames in hand: a reader then keeps its timer.
    scripted = Incoming(ScriptedSource([Frame.data(b"x")], SizeHint.exact(1)))
    assert not scripted.frame_ready()
    assert await scripted.frame() == Frame.data(b"x")


async def test_a_ready_frame_is_read_without_waiting() -> None:
    sender, body = Incoming.from_channel()
    sender.send_data_nowait(b"queued")
    sender.finish()
    # No checkpoint is reached: a scope that is already cancelled does not
    # interrupt reads that frame_ready promised would not wait.
    with anyio.CancelScope() as scope:
        scope.cancel()
        assert body.frame_ready()
        assert await body.frame() == Frame.data(b"queued")
        assert body.frame_ready()
        assert await body.frame() is None
    assert not scope.cancelled_caught
