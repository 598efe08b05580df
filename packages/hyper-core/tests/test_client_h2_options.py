"""The HTTP/2 client's stream-reset options, against a server made of raw frames.

What belongs here: ``max_concurrent_streams`` (our SETTINGS),
``reset_stream_duration`` and ``max_concurrent_reset_streams`` (frames the
server sends on a stream we reset: ignored for a while, then answered with
RST_STREAM(STREAM_CLOSED)), and ``max_local_error_reset_streams`` (a server
that makes us reset streams without end gets GOAWAY(ENHANCE_YOUR_CALM)),
each with hyper's (h2's) default.

Strategy: :class:`RawServer` speaks HTTP/2 frame by frame with hyperframe
and an HPACK encoder over one end of a loopback socket or a memory pipe: it
sends exactly the frames a test names, in the order it names them, and
reads back every frame the client writes. A PING from the server is the
barrier that proves the client has processed everything sent before it
(the client answers in order). Time is a FakeTimer moved by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import hpack
import pytest
from h1_recording_io import io_pair
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from hyper_core.body import collect
from hyper_core.client.conn import http2
from hyper_core.error import CanceledError, ProtocolError
from hyper_core.http import Request, Response
from hyper_core.testing import FakeTimer

pytestmark = pytest.mark.anyio

WAIT = 10.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STREAM_CLOSED = 0x5
CANCEL = 0x8
ENHANCE_YOUR_CALM = 0xB
MAX_CONCURRENT_STREAMS = 0x3


@pytest.fixture(params=["tcp", "memory"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class RawServer:
    """The server end, frame by frame (see the module docstring)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.encoder = hpack.Encoder()
        self.client_settings: SettingsFrame | None = None
        self.ready = anyio.Event()  # the handshake is done
        self._pings = 0

    async def _fill(self) -> None:
        with anyio.fail_after(WAIT):
            self.buf += await self.stream.receive()

    async def read_frame(self) -> Frame:
        while len(self.buf) < 9:
            await self._fill()
        frame, length = Frame.parse_frame_header(memoryview(bytes(self.buf[:9])))
        while len(self.buf) < 9 + length:
            await self._fill()
        frame.parse_body(memoryview(bytes(self.buf[9 : 9 + length])))
        del self.buf[: 9 + length]
        return frame

    async def send(self, *frames: Frame) -> None:
        await self.stream.send(b"".join(frame.serialize() for frame in frames))

    async def handshake(self) -> None:
        """Read the client's preface and SETTINGS; send ours; ack theirs."""
        while len(self.buf) < len(PREFACE):
            await self._fill()
        assert bytes(self.buf[: len(PREFACE)]) == PREFACE
        del self.buf[: len(PREFACE)]
        settings = await self.read_frame()
        assert isinstance(settings, SettingsFrame)
        self.client_settings = settings
        await self.send(SettingsFrame(0), SettingsFrame(0, flags=["ACK"]))
        self.ready.set()

    def headers(self, stream_id: int, **extra: str) -> HeadersFrame:
        fields = [(":status", "200"), *extra.items()]
        return HeadersFrame(stream_id, self.encoder.encode(fields), flags=["END_HEADERS"])

    async def request_headers(self) -> HeadersFrame:
        """Read frames until a request's HEADERS (skipping SETTINGS ACK, WINDOW_UPDATE)."""
        while True:
            frame = await self.read_frame()
            if isinstance(frame, HeadersFrame):
                return frame

    async def barrier(self) -> list[Frame]:
        """Send a PING; return every frame the client wrote before its ACK."""
        self._pings += 1
        payload = self._pings.to_bytes(8, "big")
        await self.send(PingFrame(0, payload))
        seen: list[Frame] = []
        while True:
            frame = await self.read_frame()
            if isinstance(frame, PingFrame) and "ACK" in frame.flags:
                assert frame.opaque_data == payload
                return seen
            seen.append(frame)


def resets(frames: list[Frame]) -> list[tuple[int, int]]:
    return [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)]


class Client:
    """Our client connection, its sender, and the raw server."""

    def __init__(self, sender: http2.SendRequest, server: RawServer, tg: anyio.abc.TaskGroup):
        self.sender = sender
        self.server = server
        self.tg = tg

    async def cancelled_request(self, path: str = "/") -> int:
        """Send a request, let the server see it, cancel it; return its stream id."""
        with anyio.CancelScope() as scope:

            async def cancel_when_seen() -> None:
                await self.server.request_headers()
                scope.cancel()

            self.tg.start_soon(cancel_when_seen)
            await self.sender.send_request(Request("GET", f"http://a{path}"))
        # The client resets the stream it gave up on.
        while True:
            frame = await self.server.read_frame()
            if isinstance(frame, RstStreamFrame):
                assert frame.error_code == CANCEL
                return frame.stream_id

    async def answered_request(self, body: bytes = b"") -> Response[Any]:
        """A request the server answers in full (a sign the connection still works)."""
        result: list[Response[Any]] = []
        answered = anyio.Event()

        async def ask() -> None:
            result.append(await self.sender.send_request(Request("GET", "http://a/ok")))
            answered.set()

        self.tg.start_soon(ask)
        frame = await self.server.request_headers()
        sid = frame.stream_id
        await self.server.send(self.server.headers(sid, **{"x-seq": "n"}))
        if body:
            for offset in range(0, len(body), 16_384):
                await self.server.send(DataFrame(sid, body[offset : offset + 16_384]))
        await self.server.send(DataFrame(sid, b"", flags=["END_STREAM"]))
        with anyio.fail_after(WAIT):
            await answered.wait()
        assert (await collect(result[0].body)).to_bytes() == body
        return result[0]


@asynccontextmanager
async def h2_client(transport: str, **options: Any) -> AsyncIterator[Client]:
    async with io_pair(transport) as (ours, theirs):
        server = RawServer(theirs)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.handshake)
            sender, connection = await http2.Builder(**options).handshake(ours)
            tg.start_soon(connection.serve)
            with anyio.fail_after(WAIT):
                await server.ready.wait()
            yield Client(sender, server, tg)
            tg.cancel_scope.cancel()


# -- max_concurrent_streams ---------------------------------------------------------


async def test_max_concurrent_streams_is_not_sent_by_default(transport: str) -> None:
    async with h2_client(transport) as c:
        assert c.server.client_settings is not None
        assert MAX_CONCURRENT_STREAMS not in c.server.client_settings.settings


async def test_max_concurrent_streams_goes_in_our_settings(transport: str) -> None:
    async with h2_client(transport, max_concurrent_streams=7) as c:
        assert c.server.client_settings is not None
        assert c.server.client_settings.settings[MAX_CONCURRENT_STREAMS] == 7
        assert c.sender.current_max_recv_streams == 7
        await c.answered_request()


# -- reset_stream_duration and max_concurrent_reset_streams --------------------------


async def test_late_frames_on_a_reset_stream_are_ignored_for_a_while(transport: str) -> None:
    timer = FakeTimer()
    async with h2_client(transport, timer=timer) as c:
        sid = await c.cancelled_request()
        # What the server had already sent: ignored, no answer at all.
        await c.server.send(c.server.headers(sid, **{"x-late": "1"}), DataFrame(sid, b"x" * 100))
        assert resets(await c.server.barrier()) == []
        timer.advance(0.9)
        await c.server.send(DataFrame(sid, b"y" * 100))
        assert resets(await c.server.barrier()) == []
        # Past reset_stream_duration (1 s): forgotten, answered STREAM_CLOSED.
        timer.advance(0.2)
        await c.server.send(DataFrame(sid, b"z"))
        assert resets(await c.server.barrier()) == [(sid, STREAM_CLOSED)]
        # The header block of the ignored HEADERS was decoded all the same:
        # this response reuses its HPACK entries and reads right.
        response = await c.answered_request()
        assert response.headers["x-seq"] == "n"


async def test_reset_stream_duration_is_an_option(transport: str) -> None:
    timer = FakeTimer()
    async with h2_client(transport, timer=timer, reset_stream_duration=10.0) as c:
        sid = await c.cancelled_request()
        timer.advance(9.0)
        await c.server.send(DataFrame(sid, b"x"))
        assert resets(await c.server.barrier()) == []
        timer.advance(1.5)
        await c.server.send(DataFrame(sid, b"x"))
        assert resets(await c.server.barrier()) == [(sid, STREAM_CLOSED)]


async def test_no_remembered_streams_means_an_answer_at_once(transport: str) -> None:
    async with h2_client(transport, max_concurrent_reset_streams=0) as c:
        sid = await c.cancelled_request()
        await c.server.send(DataFrame(sid, b"x"))
        assert resets(await c.server.barrier()) == [(sid, STREAM_CLOSED)]


async def test_remembered_streams_are_bounded(transport: str) -> None:
    async with h2_client(transport, max_concurrent_reset_streams=2) as c:
        ids = [await c.cancelled_request(f"/{n}") for n in range(3)]
        await c.server.send(*(DataFrame(sid, b"x") for sid in ids))
        # The third was reset while two were remembered: not remembered.
        assert resets(await c.server.barrier()) == [(ids[2], STREAM_CLOSED)]


async def test_ignored_data_still_returns_the_connection_window(transport: str) -> None:
    # 60,000 bytes on a reset stream, then a 30,000-byte response: over the
    # 65,535-byte connection window unless the ignored bytes were given back.
    async with h2_client(transport, initial_connection_window_size=65_535) as c:
        sid = await c.cancelled_request()
        await c.server.send(*(DataFrame(sid, b"x" * 15_000) for _ in range(4)))
        frames = await c.server.barrier()
        assert resets(frames) == []
        assert any(isinstance(f, WindowUpdateFrame) and f.stream_id == 0 for f in frames)
        await c.answered_request(b"r" * 30_000)


# -- max_local_error_reset_streams ----------------------------------------------------


async def server_resets_and_keeps_sending(c: Client, frames: int) -> list[Frame]:
    """The server resets a request's stream, then sends DATA on it ``frames`` times."""
    failed: list[BaseException] = []

    async def ask() -> None:
        try:
            await c.sender.send_request(Request("GET", "http://a/"))
        except ProtocolError as exc:
            failed.append(exc)

    c.tg.start_soon(ask)
    sid = (await c.server.request_headers()).stream_id
    await c.server.send(RstStreamFrame(sid, error_code=0x2))
    await c.server.send(*(DataFrame(sid, b"x") for _ in range(frames)))
    seen: list[Frame] = []
    with anyio.fail_after(WAIT):
        while True:
            try:
                frame = await c.server.read_frame()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                break
            seen.append(frame)
            if isinstance(frame, GoAwayFrame) or len(resets(seen)) == frames:
                break
    assert len(failed) == 1
    return seen


async def test_a_server_that_makes_us_reset_streams_gets_goaway(transport: str) -> None:
    async with h2_client(transport, max_local_error_reset_streams=3) as c:
        seen = await server_resets_and_keeps_sending(c, 10)
        assert len(resets(seen)) == 3
        goaway = seen[-1]
        assert isinstance(goaway, GoAwayFrame)
        assert goaway.error_code == ENHANCE_YOUR_CALM
        # Closed before the GOAWAY was even written.
        assert c.sender.is_closed()
        with pytest.raises(CanceledError):
            await c.sender.send_request(Request("GET", "http://a/"))


async def test_the_default_budget_is_1024_resets(transport: str) -> None:
    async with h2_client(transport) as c:
        seen = await server_resets_and_keeps_sending(c, 1100)
        assert len(resets(seen)) == 1024
        assert isinstance(seen[-1], GoAwayFrame)
        assert seen[-1].error_code == ENHANCE_YOUR_CALM


async def test_no_budget_with_none(transport: str) -> None:
    async with h2_client(transport, max_local_error_reset_streams=None) as c:
        seen = await server_resets_and_keeps_sending(c, 1100)
        assert len(resets(seen)) == 1100
        assert not any(isinstance(f, GoAwayFrame) for f in seen)
        await c.answered_request()


async def test_resets_we_choose_to_make_never_count(transport: str) -> None:
    async with h2_client(transport, max_local_error_reset_streams=1) as c:
        for n in range(4):
            await c.cancelled_request(f"/{n}")
        await c.answered_request()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_concurrent_streams", -1),
        ("max_concurrent_streams", 2**32),
        ("max_concurrent_reset_streams", -1),
        ("reset_stream_duration", -0.5),
        ("max_local_error_reset_streams", -1),
    ],
)
def test_out_of_range(option: str, value: float) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=option):
        http2.Builder(**options)


def test_hyper_defaults() -> None:
    assert http2.DEFAULT_MAX_CONCURRENT_RESET_STREAMS == 50
    assert http2.DEFAULT_RESET_STREAM_DURATION == 1.0
    assert http2.DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS == 1024
