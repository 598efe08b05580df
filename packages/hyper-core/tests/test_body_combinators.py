"""hyper_core.body's combinators: MapFrame, MapErr, Either, collect(limit=), the iterators.

Each is checked on bodies with data and trailers (trailers must pass
through every combinator that does not drop them on purpose), on a body
that fails, and for closing: a combinator closed early closes the body it
wraps. Bodies that count how often they were pulled show that nothing is
read ahead of the consumer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hyper_core.body import (
    Body,
    BodyDataStream,
    BodyStream,
    Either,
    Empty,
    Frame,
    Full,
    MapErr,
    MapFrame,
    SizeHint,
    StreamBody,
    channel,
    collect,
)
from hyper_core.error import BodyError, LengthLimitError
from hyper_core.http import Headers

pytestmark = pytest.mark.anyio

TRAILERS = Headers({"x-checksum": "abc"})


class Recorded:
    """A body of given frames that records how it was used."""

    def __init__(
        self, *frames: Frame, fail: Exception | None = None, hint: SizeHint | None = None
    ) -> None:
        self._frames = list(frames)
        self._fail = fail
        self._hint = hint if hint is not None else SizeHint()
        self.pulls = 0
        self.closed = False

    async def frame(self) -> Frame | None:
        self.pulls += 1
        if self._frames:
            return self._frames.pop(0)
        if self._fail is not None:
            raise self._fail
        return None

    def is_end_stream(self) -> bool:
        return not self._frames and self._fail is None

    def size_hint(self) -> SizeHint:
        return self._hint

    async def aclose(self) -> None:
        self.closed = True


def with_trailers(*chunks: bytes) -> Recorded:
    return Recorded(*(Frame.data(c) for c in chunks), Frame.trailers(TRAILERS))


def _typed(a: MapFrame, b: MapErr, c: Either[Full, Empty], d: BodyStream) -> list[Body]:
    # Checked by mypy: each combinator is a Body.
    return [a, b, c, d]


# -- MapFrame ------------------------------------------------------------------------


def upper(frame: Frame) -> Frame:
    data = frame.data_ref
    return frame if data is None else Frame.data(data.upper())


async def test_map_frame_maps_each_frame_and_passes_trailers() -> None:
    inner = with_trailers(b"ab", b"cd")
    body = MapFrame(inner, upper)
    first = await body.frame()
    assert first == Frame.data(b"AB")
    assert inner.pulls == 1  # one pull per frame, nothing read ahead
    collected = await collect(body)
    assert collected.data == b"CD"
    assert collected.trailers == TRAILERS
    assert await body.frame() is None


async def test_map_frame_can_turn_data_into_trailers() -> None:
    def to_trailers(frame: Frame) -> Frame:
        data = frame.data_ref
        assert data is not None
        return Frame.trailers(Headers({"x-data": data.decode()}))

    collected = await collect(MapFrame(Full(b"moved"), to_trailers))
    assert collected.data == b""
    assert collected.trailers == Headers({"x-data": "moved"})


async def test_map_frame_size_is_unknown_and_end_is_the_inner_bodys() -> None:
    body = MapFrame(Full(b"12345"), upper)
    assert body.size_hint().exact is None
    assert body.size_hint().lower == 0
    assert not body.is_end_stream()
    await body.frame()
    assert body.is_end_stream()


async def test_map_frame_errors_propagate_and_close_reaches_the_inner_body() -> None:
    def boom(frame: Frame) -> Frame:
        raise RuntimeError("bad frame")

    inner = with_trailers(b"x")
    body = MapFrame(inner, boom)
    with pytest.raises(RuntimeError, match="bad frame"):
        await body.frame()
    await body.aclose()
    assert inner.closed


# -- MapErr --------------------------------------------------------------------------


class UpstreamError(Exception):
    pass


async def test_map_err_maps_the_error_and_keeps_the_cause() -> None:
    original = BodyError("connection reset")
    body = MapErr(Recorded(Frame.data(b"part"), fail=original), lambda e: UpstreamError(str(e)))
    assert await body.frame() == Frame.data(b"part")
    with pytest.raises(UpstreamError, match="connection reset") as info:
        await body.frame()
    assert info.value.__cause__ is original


async def test_map_err_passes_frames_trailers_and_hints_untouched() -> None:
    inner = with_trailers(b"a", b"b")
    inner._hint = SizeHint.with_exact(2)
    body = MapErr(inner, lambda e: UpstreamError(str(e)))
    assert body.size_hint().exact == 2
    collected = await collect(body)
    assert collected == await collect(with_trailers(b"a", b"b"))
    assert collected.trailers == TRAILERS
    assert body.is_end_stream()


async def test_map_err_leaves_cancellation_alone() -> None:
    class Cancelled(BaseException):
        pass

    body = MapErr(Recorded(fail=Cancelled()), lambda e: UpstreamError(str(e)))  # type: ignore[arg-type]
    with pytest.raises(Cancelled):
        await body.frame()


# -- Either --------------------------------------------------------------------------


async def test_either_left_and_right_are_their_bodies() -> None:
    left: Either[Full, StreamBody] = Either.left(Full(b"cached"))
    assert left.is_left
    assert not left.is_right
    assert left.size_hint().exact == 6
    assert (await collect(left)).data == b"cached"

    async def produce() -> AsyncIterator[bytes | Frame]:
        yield b"fresh"
        yield Frame.trailers(TRAILERS)

    right: Either[Full, StreamBody] = Either.right(StreamBody(produce()))
    assert right.is_right
    assert isinstance(right.into_inner(), StreamBody)
    collected = await collect(right)
    assert collected.data == b"fresh"
    assert collected.trailers == TRAILERS
    assert right.is_end_stream()


async def test_either_closes_and_fails_as_its_body() -> None:
    inner = Recorded(fail=BodyError("broken"))
    either: Either[Recorded, Full] = Either.left(inner)
    with pytest.raises(BodyError, match="broken"):
        await either.frame()
    await either.aclose()
    assert inner.closed
    assert either.into_inner() is inner
    with pytest.raises(TypeError):
        Either()


# -- collect(limit=) -------------------------------------------------------------------


async def test_collect_with_limit_reads_a_body_of_exactly_the_limit() -> None:
    collected = await collect(with_trailers(b"12", b"34"), limit=4)
    assert collected.data == b"1234"
    assert collected.trailers == TRAILERS


async def test_collect_with_limit_stops_at_the_chunk_that_crosses_it() -> None:
    inner = Recorded(Frame.data(b"12"), Frame.data(b"345"), Frame.data(b"6789"))
    with pytest.raises(LengthLimitError, match="limit of 4 bytes") as info:
        await collect(inner, limit=4)
    assert info.value.limit == 4
    assert inner.pulls == 2  # nothing read past the crossing chunk
    assert not inner.closed  # the caller still owns the body


async def test_collect_with_limit_fails_before_reading_when_the_hint_is_over() -> None:
    inner = Recorded(Frame.data(b"x" * 10), hint=SizeHint.with_exact(10))
    with pytest.raises(LengthLimitError):
        await collect(inner, limit=9)
    assert inner.pulls == 0
    with pytest.raises(ValueError, match="limit"):
        await collect(Empty(), limit=-1)


async def test_collect_with_limit_from_a_producer_task() -> None:
    sender, body = channel(buffer=1)
    async with sender:
        await sender.send_data(b"abc")
    assert (await collect(body, limit=3)).data == b"abc"


# -- BodyStream / BodyDataStream -------------------------------------------------------


async def test_body_stream_yields_every_frame_trailers_included() -> None:
    inner = with_trailers(b"a", b"b")
    frames = [frame async for frame in BodyStream(inner)]
    assert frames == [Frame.data(b"a"), Frame.data(b"b"), Frame.trailers(TRAILERS)]


async def test_body_stream_is_still_a_body_after_a_partial_read() -> None:
    stream = BodyStream(with_trailers(b"first", b"rest"))
    assert await anext(stream) == Frame.data(b"first")
    collected = await collect(stream)
    assert collected.data == b"rest"
    assert collected.trailers == TRAILERS
    assert stream.is_end_stream()


async def test_body_stream_closes_the_body_when_the_block_ends_early() -> None:
    inner = with_trailers(b"a", b"b", b"c")
    async with BodyStream(inner) as frames:
        async for _ in frames:
            break
    assert inner.closed
    assert inner.pulls == 1


async def test_body_data_stream_yields_data_and_keeps_trailers_aside() -> None:
    inner = Recorded(
        Frame.data(b"a"),
        Frame.other("h3-datagram", b"ignored"),
        Frame.data(b"b"),
        Frame.trailers(TRAILERS),
    )
    chunks = BodyDataStream(inner)
    assert chunks.trailers is None
    assert [chunk async for chunk in chunks] == [b"a", b"b"]
    assert chunks.trailers == TRAILERS


async def test_body_data_stream_errors_and_closing() -> None:
    inner = Recorded(Frame.data(b"a"), fail=BodyError("cut"))
    got: list[bytes] = []

    async def read() -> None:
        async with BodyDataStream(inner) as chunks:
            got.extend([chunk async for chunk in chunks])

    with pytest.raises(BodyError, match="cut"):
        await read()
    assert got == []  # the comprehension never finished
    assert inner.pulls == 2
    assert inner.closed
