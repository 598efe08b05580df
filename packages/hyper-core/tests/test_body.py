"""hyper_core.body: frames, size hints, and the simple bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

import hyper_core.body
from hyper_core.body import (
    Body,
    Collected,
    Empty,
    Frame,
    FrameKind,
    Full,
    Limited,
    SizeHint,
    StreamBody,
    collect,
)
from hyper_core.error import LengthLimitError
from hyper_core.http import Headers

pytestmark = pytest.mark.anyio


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name for name in vars(hyper_core.body) if not name.startswith("_") and name != "annotations"
    }
    assert set(hyper_core.body.__all__) == public


def _bodies_are_bodies(
    full: Full, empty: Empty, stream: StreamBody, limited: Limited
) -> list[Body]:
    # Checked by mypy: every body in this package satisfies the protocol.
    return [full, empty, stream, limited]


async def read_all(body: Body) -> list[Frame]:
    frames: list[Frame] = []
    with anyio.fail_after(5):
        while (frame := await body.frame()) is not None:
            frames.append(frame)
    return frames


# --- Frame ---------------------------------------------------------------------


def test_data_frame() -> None:
    payload = b"abc"
    frame = Frame.data(payload)
    assert frame.kind is FrameKind.DATA
    assert frame.is_data
    assert not frame.is_trailers
    assert frame.data_ref is payload  # not copied
    assert frame.trailers_ref is None
    assert frame.other_kind is None
    assert frame.payload is payload
    assert repr(frame) == "Frame.data(b'abc')"


def test_trailers_frame() -> None:
    trailers = Headers([("grpc-status", "0")])
    frame = Frame.trailers(trailers)
    assert frame.kind is FrameKind.TRAILERS
    assert frame.is_trailers
    assert not frame.is_data
    assert frame.trailers_ref is trailers
    assert frame.data_ref is None


def test_frame_of_an_unknown_kind_is_neither_data_nor_trailers() -> None:
    frame = Frame.other("h3-datagram", {"id": 7})
    assert frame.kind is FrameKind.OTHER
    assert frame.other_kind == "h3-datagram"
    assert frame.payload == {"id": 7}
    assert frame.data_ref is None
    assert frame.trailers_ref is None
    assert not frame.is_data
    assert not frame.is_trailers
    assert "h3-datagram" in repr(frame)


def test_frames_compare_by_kind_and_payload() -> None:
    assert Frame.data(b"x") == Frame.data(b"x")
    assert Frame.data(b"x") != Frame.data(b"y")
    assert Frame.data(b"x") != Frame.other("data", b"x")
    assert Frame.trailers(Headers({"a": "1"})) == Frame.trailers(Headers({"A": "1"}))
    assert Frame.other("k", 1) != Frame.other("j", 1)
    assert Frame.data(b"x") != b"x"


def test_frames_are_made_by_their_constructors_only() -> None:
    with pytest.raises(TypeError, match=r"Frame\.data"):
        Frame()


# --- SizeHint ----------------------------------------------------------------------


def test_default_size_hint_knows_nothing() -> None:
    hint = SizeHint()
    assert (hint.lower, hint.upper, hint.exact) == (0, None, None)


def test_exact_is_a_constructor_on_the_class_and_a_reading_on_an_instance() -> None:
    hint = SizeHint.exact(42)
    assert (hint.lower, hint.upper) == (42, 42)
    assert hint.exact == 42
    assert SizeHint.with_exact(42) == hint
    assert SizeHint(3, 10).exact is None
    assert SizeHint(5, 5).exact == 5
    assert repr(hint) == "SizeHint.exact(42)"
    assert repr(SizeHint(1, None)) == "SizeHint(lower=1, upper=None)"


def test_size_hint_rejects_inconsistent_bounds() -> None:
    with pytest.raises(ValueError, match="negative"):
        SizeHint(-1)
    with pytest.raises(ValueError, match="less than"):
        SizeHint(5, 4)
    with pytest.raises(ValueError, match="negative"):
        SizeHint.exact(-1)


def test_size_hints_add_up() -> None:
    assert SizeHint.exact(3) + SizeHint.exact(4) == SizeHint.exact(7)
    assert SizeHint(1, 2) + SizeHint(3, None) == SizeHint(4, None)
    assert hash(SizeHint(1, 2)) == hash(SizeHint(1, 2))
    assert SizeHint() != (0, None)


# --- Full and Empty -------------------------------------------------------------------


async def test_full_yields_its_bytes_once() -> None:
    payload = b"hello world"
    body = Full(payload)
    assert body.data is payload
    assert not body.is_end_stream()
    assert body.size_hint() == SizeHint.exact(11)
    frame = await body.frame()
    assert frame is not None
    assert frame.data_ref is payload
    assert body.is_end_stream()
    assert body.size_hint() == SizeHint.exact(0)
    assert await body.frame() is None
    assert await body.frame() is None


async def test_empty_full_yields_no_frame() -> None:
    body = Full(b"")
    assert body.is_end_stream()
    assert body.size_hint().exact == 0
    assert await body.frame() is None
    assert await Full().frame() is None


async def test_full_after_aclose_is_finished() -> None:
    body = Full(b"unsent")
    await body.aclose()
    assert body.is_end_stream()
    assert await body.frame() is None
    assert body.data == b"unsent"  # the attribute stays readable


async def test_full_never_yields_to_the_event_loop() -> None:
    # The fast path: no checkpoint, so not even a cancelled scope interrupts it.
    body = Full(b"x")
    with anyio.CancelScope() as scope:
        scope.cancel()
        frame = await body.frame()
        await body.aclose()
    assert frame == Frame.data(b"x")


async def test_empty_has_nothing() -> None:
    body = Empty()
    assert body.is_end_stream()
    assert body.size_hint() == SizeHint.exact(0)
    assert await body.frame() is None
    await body.aclose()
    assert repr(body) == "Empty()"


# --- StreamBody --------------------------------------------------------------------


async def test_stream_body_of_bytes() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one"
        yield b""
        yield b"two"

    body = StreamBody(chunks())
    assert body.size_hint() == SizeHint()
    assert not body.is_end_stream()
    frames = await read_all(body)
    assert frames == [Frame.data(b"one"), Frame.data(b""), Frame.data(b"two")]
    assert body.is_end_stream()
    assert await body.frame() is None


async def test_stream_body_of_frames_ends_with_trailers() -> None:
    trailers = Headers({"checksum": "abc"})

    async def frames() -> AsyncIterator[Frame]:
        yield Frame.data(b"payload")
        yield Frame.trailers(trailers)

    body = StreamBody(frames())
    collected = await collect(body)
    assert collected == Collected(b"payload", trailers)


async def test_stream_body_of_a_mixed_iterable_and_bytes_likes() -> None:
    class Source:
        def __init__(self) -> None:
            self.items: list[object] = [b"a", bytearray(b"b"), memoryview(b"c"), Frame.data(b"d")]

        def __aiter__(self) -> Source:
            return self

        async def __anext__(self) -> bytes | Frame:
            if not self.items:
                raise StopAsyncIteration
            return self.items.pop(0)  # type: ignore[return-value]

    frames = await read_all(StreamBody(Source()))
    assert [f.data_ref for f in frames] == [b"a", b"b", b"c", b"d"]
    assert all(type(f.data_ref) is bytes for f in frames)


async def test_stream_body_rejects_other_items() -> None:
    async def bad() -> AsyncIterator[bytes]:
        yield "text"  # type: ignore[misc]

    body = StreamBody(bad())
    with pytest.raises(TypeError, match="str"):
        await body.frame()
    await body.aclose()


async def test_stream_body_passes_the_source_error_through() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"ok"
        raise ConnectionResetError("upstream went away")

    body = StreamBody(failing())
    assert await body.frame() == Frame.data(b"ok")
    with pytest.raises(ConnectionResetError, match="upstream"):
        await body.frame()


async def test_stream_body_aclose_runs_the_generator_cleanup() -> None:
    cleaned = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            yield b"never read"
        finally:
            cleaned.append(True)

    body = StreamBody(chunks())
    assert await body.frame() == Frame.data(b"first")
    await body.aclose()
    assert cleaned == [True]
    assert body.is_end_stream()
    assert await body.frame() is None


async def test_stream_body_size_hint_is_what_it_is_given() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"12345"

    body = StreamBody(chunks(), size_hint=SizeHint.exact(5))
    assert body.size_hint().exact == 5
    await body.aclose()


async def test_stream_body_pulls_lazily() -> None:
    produced: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            produced.append(i)
            yield b"%d" % i

    body = StreamBody(chunks())
    assert produced == []
    await body.frame()
    assert produced == [0]
    await body.aclose()


# --- Limited -----------------------------------------------------------------------


def stream_of(*chunks: bytes) -> StreamBody:
    async def gen() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return StreamBody(gen())


async def test_limited_passes_a_body_of_exactly_the_limit() -> None:
    body = Limited(stream_of(b"12345", b"67890"), 10)
    assert (await collect(body)).data == b"1234567890"


async def test_limited_fails_one_byte_past_the_limit() -> None:
    body = Limited(stream_of(b"12345", b"678901"), 10)
    assert await body.frame() == Frame.data(b"12345")
    with pytest.raises(LengthLimitError) as info:
        await body.frame()
    assert info.value.limit == 10
    # It stays failed.
    with pytest.raises(LengthLimitError):
        await body.frame()


async def test_limited_full_body_at_and_past_the_limit() -> None:
    assert (await collect(Limited(Full(b"x" * 8), 8))).data == b"x" * 8
    with pytest.raises(LengthLimitError):
        await collect(Limited(Full(b"x" * 9), 8))


async def test_limited_zero_allows_only_empty_bodies() -> None:
    assert (await collect(Limited(Empty(), 0))).data == b""
    with pytest.raises(LengthLimitError):
        await collect(Limited(Full(b"x"), 0))
    with pytest.raises(ValueError, match="limit"):
        Limited(Empty(), -1)


async def test_limited_does_not_count_trailers() -> None:
    async def frames() -> AsyncIterator[Frame]:
        yield Frame.data(b"abc")
        yield Frame.trailers(Headers({"a-long-trailer-name": "and a long value"}))

    collected = await collect(Limited(StreamBody(frames()), 3))
    assert collected.data == b"abc"
    assert collected.trailers is not None


async def test_limited_clamps_the_size_hint() -> None:
    assert Limited(Full(b"x" * 100), 10).size_hint() == SizeHint.exact(10)
    assert Limited(Full(b"x" * 4), 10).size_hint() == SizeHint(4, 4)
    unknown = stream_of()
    assert Limited(unknown, 10).size_hint() == SizeHint(0, 10)
    await unknown.aclose()

    class Hinted(Body):
        def __init__(self, hint: SizeHint) -> None:
            self.hint = hint

        async def frame(self) -> Frame | None:
            return None

        def size_hint(self) -> SizeHint:
            return self.hint

    assert Limited(Hinted(SizeHint(2, 5)), 10).size_hint() == SizeHint(2, 5)
    assert Limited(Hinted(SizeHint(2, 50)), 10).size_hint() == SizeHint(2, 10)
    body = Limited(stream_of(b"1234"), 10)
    await body.frame()
    assert body.size_hint() == SizeHint(0, 6)
    await body.aclose()


async def test_limited_delegates_end_and_close() -> None:
    inner = Full(b"abc")
    body = Limited(inner, 5)
    assert body.inner is inner
    assert body.limit == 5
    assert not body.is_end_stream()
    await body.aclose()
    assert inner.is_end_stream()
    assert body.is_end_stream()


# --- collect -------------------------------------------------------------------------


async def test_collect_joins_data_and_keeps_trailers() -> None:
    trailers = Headers({"grpc-status": "0"})

    async def frames() -> AsyncIterator[Frame]:
        yield Frame.data(b"a")
        yield Frame.other("future-kind", None)  # skipped
        yield Frame.data(b"bc")
        yield Frame.trailers(trailers)

    collected = await collect(StreamBody(frames()))
    assert collected.data == b"abc"
    assert collected.to_bytes() == b"abc"
    assert collected.trailers == trailers
    assert "abc" in repr(collected)


async def test_collect_without_trailers_and_of_nothing() -> None:
    assert await collect(Full(b"only")) == Collected(b"only", None)
    assert await collect(Empty()) == Collected(b"")


async def test_collect_returns_a_single_chunk_without_copying() -> None:
    payload = b"y" * 1000
    assert (await collect(Full(payload))).data is payload


async def test_collect_merges_several_trailers_frames_in_order() -> None:
    first = Headers([("a", "1")])

    async def frames() -> AsyncIterator[Frame]:
        yield Frame.trailers(first)
        yield Frame.trailers(Headers([("b", "2"), ("a", "3")]))

    collected = await collect(StreamBody(frames()))
    assert collected.trailers is not None
    assert collected.trailers.get_all("a") == ["1", "3"]
    assert collected.trailers.get_all("b") == ["2"]
    assert first.get_all("b") == []  # the body's own trailers are not modified


# --- Body protocol defaults ---------------------------------------------------------


async def test_subclassing_body_gives_the_default_methods() -> None:
    class Once(Body):
        def __init__(self) -> None:
            self.sent = False

        async def frame(self) -> Frame | None:
            if self.sent:
                return None
            self.sent = True
            return Frame.data(b"custom")

    body = Once()
    assert not body.is_end_stream()
    assert body.size_hint() == SizeHint()
    assert (await collect(body)).data == b"custom"
    await body.aclose()
