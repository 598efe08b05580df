"""hyper_core.body.channel: a body written by one task and read by another."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from hyper_core.body import Body, ChannelBody, Frame, Sender, SizeHint, channel, collect
from hyper_core.error import BodyWriteAbortedError, ClosedError
from hyper_core.http import Headers

pytestmark = pytest.mark.anyio


def _channel_body_is_a_body(body: ChannelBody) -> Body:
    return body  # checked by mypy


async def test_frames_arrive_in_order_then_the_end() -> None:
    sender, body = channel()
    trailers = Headers({"grpc-status": "0"})

    async def produce() -> None:
        async with sender:
            await sender.send_data(b"a")
            await sender.send(Frame.data(b"b"))
            await sender.send(Frame.other("custom", 1))
            await sender.send_trailers(trailers)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            frames = []
            while (frame := await body.frame()) is not None:
                frames.append(frame)
    assert frames == [
        Frame.data(b"a"),
        Frame.data(b"b"),
        Frame.other("custom", 1),
        Frame.trailers(trailers),
    ]
    assert body.is_end_stream()
    assert await body.frame() is None


async def test_end_of_stream_and_size_hint() -> None:
    sender, body = channel()
    assert body.size_hint() == SizeHint()
    assert not body.is_end_stream()
    await sender.send_data(b"x")
    await sender.aclose()
    assert not body.is_end_stream()  # a frame is still queued
    assert await body.frame() == Frame.data(b"x")
    assert body.is_end_stream()


async def test_sender_blocks_when_the_buffer_is_full() -> None:
    sender, body = channel(buffer=2)
    sent: list[int] = []

    async def produce() -> None:
        async with sender:
            for i in range(5):
                await sender.send_data(b"%d" % i)
                sent.append(i)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            await anyio.wait_all_tasks_blocked()
            assert sent == [0, 1]  # the third send waits at the bound of 2
            assert await body.frame() == Frame.data(b"0")
            await anyio.wait_all_tasks_blocked()
            assert sent == [0, 1, 2]  # one frame out, one more in
            rest = await collect(body)
    assert rest.data == b"1234"
    assert sent == [0, 1, 2, 3, 4]


async def test_trailers_end_the_body() -> None:
    sender, body = channel()
    await sender.send(Frame.trailers(Headers({"a": "1"})))
    with pytest.raises(ClosedError, match="ended"):
        await sender.send_data(b"after trailers")
    assert (await collect(body)).trailers == Headers({"a": "1"})


async def test_abort_reaches_a_waiting_reader() -> None:
    sender, body = channel()
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await body.frame()
        except BodyWriteAbortedError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            sender.abort()
    assert len(errors) == 1


async def test_abort_drops_queued_frames_and_is_reported_at_once() -> None:
    sender, body = channel()
    await sender.send_data(b"queued")
    sender.abort()
    with pytest.raises(BodyWriteAbortedError):
        await body.frame()
    with pytest.raises(BodyWriteAbortedError):  # it stays aborted
        await body.frame()
    assert not body.is_end_stream()
    with pytest.raises(ClosedError, match="aborted"):
        await sender.send_data(b"more")


async def test_abort_after_a_normal_end_changes_nothing() -> None:
    sender, body = channel()
    await sender.send_data(b"kept")
    await sender.aclose()
    sender.abort()
    await sender.aclose()
    assert (await collect(body)).data == b"kept"


async def test_exception_in_the_sender_block_aborts_with_the_cause() -> None:
    sender, body = channel()

    async def produce() -> None:
        async with sender:
            await sender.send_data(b"partial")
            raise OSError("disk read failed")

    with anyio.fail_after(5):
        with pytest.raises(OSError, match="disk"):
            await produce()
        with pytest.raises(BodyWriteAbortedError) as info:
            await body.frame()
    assert isinstance(info.value.__cause__, OSError)


async def test_reader_close_makes_the_sender_fail() -> None:
    sender, body = channel(buffer=1)
    await sender.send_data(b"unread")
    outcome: list[BaseException] = []

    async def produce() -> None:
        try:
            await sender.send_data(b"blocked")  # buffer full: waits
        except ClosedError as exc:
            outcome.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            await anyio.wait_all_tasks_blocked()
            assert not sender.is_closed
            await body.aclose()
    assert len(outcome) == 1
    assert "reader closed" in str(outcome[0])
    assert sender.is_closed
    with pytest.raises(ClosedError):
        await sender.send_trailers(Headers())
    with pytest.raises(ClosedError, match="closed"):
        await body.frame()


async def test_cancelling_the_sender_task_mid_stream_aborts_the_body() -> None:
    sender, body = channel(buffer=1)
    received: list[bytes] = []
    failure: list[BaseException] = []

    async def produce() -> None:
        async with sender:
            for i in range(3):
                await sender.send_data(b"%d" % i)
            await anyio.sleep_forever()  # a stalled upstream, never finishing

    async def consume() -> None:
        try:
            while (frame := await body.frame()) is not None:
                assert frame.data_ref is not None
                received.append(frame.data_ref)
        except BodyWriteAbortedError as exc:
            failure.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, anyio.create_task_group() as producer_group:
            producer_group.start_soon(produce)
            await anyio.wait_all_tasks_blocked()  # producer waits on the full buffer
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()  # consumer read all 3; producer stalled
            assert received == [b"0", b"1", b"2"]
            assert failure == []
            producer_group.cancel_scope.cancel()
    assert len(failure) == 1
    assert failure[0].__cause__ is None  # a cancellation is not the reader's business


async def test_cancelling_the_reader_mid_stream_loses_nothing() -> None:
    sender, body = channel(buffer=4)
    go = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def produce() -> None:
                async with sender:
                    await sender.send_data(b"first")
                    await go.wait()  # the reader is cancelled while this waits
                    await sender.send_data(b"second")

            tg.start_soon(produce)
            assert await body.frame() == Frame.data(b"first")
            with anyio.move_on_after(0.001) as scope:
                await body.frame()
            assert scope.cancelled_caught
            go.set()
            assert await body.frame() == Frame.data(b"second")
            assert await body.frame() is None


async def test_cancelled_reader_then_close_releases_a_blocked_sender() -> None:
    sender, body = channel(buffer=1)
    outcome: list[type[BaseException]] = []

    async def produce() -> None:
        try:
            async with sender:
                while True:
                    await sender.send_data(b"data")
        except ClosedError as exc:
            outcome.append(type(exc))

    async def read_one_then_die() -> None:
        await body.frame()
        await anyio.sleep_forever()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            async with anyio.create_task_group() as readers:
                readers.start_soon(read_one_then_die)
                await anyio.wait_all_tasks_blocked()
                readers.cancel_scope.cancel()
            # The reader task is gone; whoever owned the body closes it.
            await body.aclose()
    assert outcome == [ClosedError]


async def test_a_cancelled_send_queues_nothing() -> None:
    sender, body = channel(buffer=1)
    await sender.send_data(b"one")
    with anyio.move_on_after(0.001) as scope:
        await sender.send_data(b"two")
    assert scope.cancelled_caught
    await sender.aclose()
    assert (await collect(body)).data == b"one"


async def test_several_waiting_senders_all_get_through() -> None:
    sender, body = channel(buffer=1)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(sender.send_data, b"%d" % i)
            await anyio.wait_all_tasks_blocked()
            got = []
            for _ in range(5):
                frame = await body.frame()
                assert frame is not None
                assert frame.data_ref is not None
                got.append(frame.data_ref)
    assert sorted(got) == [b"0", b"1", b"2", b"3", b"4"]


def test_channel_rejects_a_zero_buffer() -> None:
    with pytest.raises(ValueError, match="buffer"):
        channel(0)


async def test_reprs_name_the_state() -> None:
    sender, body = channel()
    assert "open" in repr(sender)
    await body.aclose()
    assert "released" in repr(body)


def _sender_type(sender: Sender) -> Sender:
    return sender
