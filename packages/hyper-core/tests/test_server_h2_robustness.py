"""HTTP/2 server robustness: hostile frame sequences written by hand with hyperframe.

What belongs here: one test per attack or protocol violation, each sending
raw frames (no h2 client state machine to stop us) and asserting the exact
GOAWAY or RST_STREAM code the server answers with, and that the server's
``serve_connection`` ends with the matching ``ProtocolError``.

Strategy: ``RawPeer`` writes the client preface and frames into an in-memory
pipe and parses what comes back with hyperframe; HPACK blocks come from a
real ``hpack.Encoder``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from hyper_core.body import Full, Incoming, collect
from hyper_core.error import HyperError, ProtocolError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http2
from hyper_core.testing import FakeTimer, memory_pipe

pytestmark = pytest.mark.anyio

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x3
REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x7, 0x8, 0xB


class RawPeer:
    """A client that writes raw frames and reads whatever the server sends."""

    def __init__(self, io: Any) -> None:
        self.io = io
        self.encoder = Encoder()
        self.buffer = b""
        self.frames: list[Frame] = []
        self.eof = False

    async def start(self, **settings: int) -> None:
        frame = SettingsFrame(0)
        for key, value in settings.items():
            frame.settings[getattr(SettingsFrame, key.upper())] = value
        await self.send(PREFACE + frame.serialize())

    async def send(self, data: bytes) -> None:
        await self.io.send(data)

    def headers_block(self, path: str = "/", method: str = "GET", extra: Any = ()) -> bytes:
        fields = [
            (":method", method),
            (":scheme", "http"),
            (":authority", "example.com"),
            (":path", path),
            *extra,
        ]
        return bytes(self.encoder.encode(fields))

    def headers(self, sid: int, *, end_stream: bool = True, **kw: Any) -> bytes:
        frame = HeadersFrame(sid, self.headers_block(**kw))
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        return bytes(frame.serialize())

    async def read_until(self, predicate: Any, timeout: float = 5) -> Frame | None:
        """Read frames until one satisfies ``predicate``; None at end of stream."""
        with anyio.fail_after(timeout):
            while True:
                while len(self.buffer) >= 9:
                    frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                    if len(self.buffer) < 9 + length:
                        break
                    frame.parse_body(memoryview(self.buffer[9 : 9 + length]))
                    self.buffer = self.buffer[9 + length :]
                    self.frames.append(frame)
                    if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                        ack = SettingsFrame(0)
                        ack.flags.add("ACK")
                        await self.send(ack.serialize())
                    if predicate(frame):
                        return frame
                if self.eof:
                    return None
                try:
                    self.buffer += await self.io.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    self.eof = True

    async def goaway(self) -> GoAwayFrame:
        frame = await self.read_until(lambda f: isinstance(f, GoAwayFrame))
        assert isinstance(frame, GoAwayFrame), "no GOAWAY before the connection closed"
        return frame

    async def reset_of(self, sid: int) -> RstStreamFrame:
        frame = await self.read_until(
            lambda f: isinstance(f, RstStreamFrame) and f.stream_id == sid
        )
        assert isinstance(frame, RstStreamFrame), f"no RST_STREAM for stream {sid}"
        return frame


async def ok(request: Request[Incoming]) -> Response[Full]:
    return Response(200, body=Full(b"ok"))


async def slow(request: Request[Incoming]) -> Response[Full]:
    await anyio.sleep(math.inf)
    raise AssertionError("unreachable")


@asynccontextmanager
async def raw_server(service: Any = ok, **options: Any) -> AsyncIterator[tuple[RawPeer, list[Any]]]:
    client_io, server_io = memory_pipe(1 << 22)
    outcome: list[Any] = []

    async def run() -> None:
        try:
            await http2.Builder(**options).serve_connection(server_io, service)
        except HyperError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        peer = RawPeer(client_io)
        yield peer, outcome
        tg.cancel_scope.cancel()


def assert_ended_with(outcome: list[Any], code: int) -> None:
    assert len(outcome) == 1
    assert isinstance(outcome[0], ProtocolError)
    assert outcome[0].error_code == code


async def finished(outcome: list[Any]) -> None:
    with anyio.fail_after(5):
        while not outcome:  # noqa: ASYNC110 - the outcome list is filled by another task
            await anyio.sleep(0.01)


# -- CVE-2023-44487 rapid reset ----------------------------------------------------


async def test_rapid_reset_gets_enhance_your_calm() -> None:
    async with raw_server(slow) as (peer, outcome):
        await peer.start()
        burst = b"".join(
            peer.headers(sid) + RstStreamFrame(sid, error_code=CANCEL).serialize()
            for sid in range(1, 200, 2)
        )
        await peer.send(burst)
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == ENHANCE_YOUR_CALM
    assert_ended_with(outcome, ENHANCE_YOUR_CALM)


async def test_resets_within_budget_are_fine() -> None:
    started = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[Full]:
        if request.uri.path == "/slow":
            started.set()
            await anyio.sleep(math.inf)
        return Response(200, body=Full(b"ok"))

    async with raw_server(svc) as (peer, outcome):
        await peer.start()
        for sid in range(1, 21, 2):  # 10 resets, budget 20
            await peer.send(peer.headers(sid, path="/slow"))
            await started.wait()
            await peer.send(RstStreamFrame(sid, error_code=CANCEL).serialize())
        await peer.send(peer.headers(21))
        frame = await peer.read_until(lambda f: isinstance(f, DataFrame) and f.stream_id == 21)
    assert frame is not None
    assert not outcome


# -- CVE-2024-27316 CONTINUATION flood ----------------------------------------------


async def test_continuation_flood_bytes_gets_enhance_your_calm() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        head = HeadersFrame(1, peer.headers_block())
        await peer.send(head.serialize())
        junk = b"\x00" * 16_000
        flood = b"".join(ContinuationFrame(1, junk).serialize() for _ in range(10))
        await peer.send(flood)
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == ENHANCE_YOUR_CALM
    assert_ended_with(outcome, ENHANCE_YOUR_CALM)


async def test_continuation_flood_many_empty_frames_is_a_protocol_error() -> None:
    async with raw_server() as (peer, _outcome):
        await peer.start()
        await peer.send(HeadersFrame(1, peer.headers_block()).serialize())
        await peer.send(b"".join(ContinuationFrame(1, b"").serialize() for _ in range(100)))
        goaway = await peer.goaway()
    assert goaway.error_code == PROTOCOL_ERROR


# -- floods -----------------------------------------------------------------------


async def test_settings_flood_gets_enhance_your_calm() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        await peer.send(b"".join(SettingsFrame(0).serialize() for _ in range(500)))
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == ENHANCE_YOUR_CALM
    assert_ended_with(outcome, ENHANCE_YOUR_CALM)


async def test_ping_flood_gets_enhance_your_calm() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        await peer.send(b"".join(PingFrame(0, b"12345678").serialize() for _ in range(1000)))
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == ENHANCE_YOUR_CALM


async def test_empty_data_flood_gets_enhance_your_calm() -> None:
    async with raw_server(slow) as (peer, outcome):
        await peer.start()
        await peer.send(peer.headers(1, end_stream=False, method="POST"))
        await peer.send(b"".join(DataFrame(1, b"").serialize() for _ in range(3000)))
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == ENHANCE_YOUR_CALM


async def test_a_few_pings_are_answered() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        await peer.send(b"".join(PingFrame(0, b"abcdefgh").serialize() for _ in range(5)))
        ack = await peer.read_until(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags)
    assert isinstance(ack, PingFrame)
    assert ack.opaque_data == b"abcdefgh"
    assert not outcome


# -- HPACK bomb, header limits ---------------------------------------------------


async def test_hpack_bomb_gets_enhance_your_calm() -> None:
    async with raw_server(max_header_list_size=16_384) as (peer, outcome):
        await peer.start()
        # One 4 KB literal added to the dynamic table, then referenced 2,000
        # times by its 1-byte index: 8 MB decoded from ~6 KB on the wire.
        block = bytes(peer.encoder.encode([("x-bomb", "a" * 4000)]))
        block += b"\xbe" * 2000  # indexed field 62: the newest dynamic entry
        frame = HeadersFrame(1, peer.headers_block() + block)
        frame.flags.add("END_HEADERS")
        frame.flags.add("END_STREAM")
        await peer.send(frame.serialize())
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == ENHANCE_YOUR_CALM


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ([("connection", "keep-alive")], "connection-specific field"),
        ([("transfer-encoding", "chunked")], "connection-specific field"),
        ([("te", "gzip")], "te other than trailers"),
        ([("host", "other.example")], "host differs from :authority"),
        ([("X-Upper", "1")], "upper-case field name"),
        ([("x-bad", " leading space")], "value with surrounding whitespace"),
        ([("x-ok", "1"), (":extra", "1")], "pseudo-field after a regular field"),
        ([(":method", "GET")], "repeated pseudo-field"),
    ],
)
async def test_malformed_request_is_a_stream_error(extra: list[tuple[str, str]], why: str) -> None:
    """RFC 9113 section 8.1.1: malformed requests are stream errors; others go on."""
    async with raw_server() as (peer, outcome):
        await peer.start()
        await peer.send(peer.headers(1, extra=extra))
        reset = await peer.reset_of(1)
        await peer.send(peer.headers(3))
        ok_data = await peer.read_until(lambda f: isinstance(f, DataFrame) and f.stream_id == 3)
    assert reset.error_code == PROTOCOL_ERROR, why
    assert isinstance(ok_data, DataFrame)
    assert not outcome


async def test_missing_path_is_a_stream_error() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        block = bytes(peer.encoder.encode([(":method", "GET"), (":scheme", "http")]))
        frame = HeadersFrame(1, block)
        frame.flags.add("END_HEADERS")
        frame.flags.add("END_STREAM")
        await peer.send(frame.serialize())
        reset = await peer.reset_of(1)
    assert reset.error_code == PROTOCOL_ERROR
    assert not outcome


@pytest.mark.parametrize(
    "fields",
    [
        [(b":path", b"/again")],
        [(b"X-Upper", b"v")],
        [(b"bad name", b"v")],
        [(b"connection", b"close")],
        [(b"transfer-encoding", b"chunked")],
        [(b"te", b"trailers")],
        [(b"x-split", b"a\r\nx-injected: 1")],
        [(b"x-nul", b"a\x00b")],
        [(b"x-space", b" padded")],
    ],
    ids=["pseudo", "upper", "space-in-name", "connection", "te-chunked", "te", "crlf", "nul", "ws"],
)
async def test_malformed_trailers_are_a_stream_error(fields: list[tuple[bytes, bytes]]) -> None:
    """RFC 9113 sections 8.1 and 8.2: a malformed trailer section is a stream error."""
    bodies: list[bytes] = []

    async def reads_body(request: Request[Incoming]) -> Response[Full]:
        # The body read of stream 1 must fail: its trailers never reach it.
        bodies.append((await collect(request.body)).to_bytes())
        return Response(200, body=Full(b"ok"))

    async with raw_server(reads_body) as (peer, outcome):
        await peer.start()
        await peer.send(peer.headers(1, end_stream=False, method="POST"))
        trailers = HeadersFrame(1, bytes(peer.encoder.encode(fields)))
        trailers.flags.add("END_HEADERS")
        trailers.flags.add("END_STREAM")
        await peer.send(trailers.serialize())
        reset = await peer.reset_of(1)
        # The connection goes on serving other streams.
        await peer.send(peer.headers(3))
        ok_data = await peer.read_until(lambda f: isinstance(f, DataFrame) and f.stream_id == 3)
    assert reset.error_code == PROTOCOL_ERROR
    assert isinstance(ok_data, DataFrame)
    assert bodies == [b""]  # stream 3 only
    assert not outcome


async def test_protocol_pseudo_header_without_the_setting_is_refused() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        await peer.send(peer.headers(1, method="CONNECT", extra=[(":protocol", "websocket")]))
        reset = await peer.reset_of(1)
    assert reset.error_code == PROTOCOL_ERROR
    assert not outcome


# -- streams and windows -----------------------------------------------------------


async def test_too_many_concurrent_streams_are_refused() -> None:
    async with raw_server(slow, max_concurrent_streams=5) as (peer, outcome):
        await peer.start()
        await peer.send(b"".join(peer.headers(sid) for sid in range(1, 15, 2)))
        first = await peer.reset_of(11)
        second = await peer.reset_of(13)
    assert first.error_code == second.error_code == REFUSED_STREAM
    assert not outcome


async def test_local_error_resets_past_budget_get_enhance_your_calm() -> None:
    async with raw_server(slow, max_concurrent_streams=1, max_local_error_reset_streams=10) as (
        peer,
        outcome,
    ):
        await peer.start()
        await peer.send(b"".join(peer.headers(sid) for sid in range(1, 41, 2)))
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == ENHANCE_YOUR_CALM


async def test_peer_that_never_opens_its_window_is_cut_off() -> None:
    async def big(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"b" * 200_000))

    timer = FakeTimer(autojump=True)
    async with timer, raw_server(big, timer=timer, send_stall_timeout=30.0) as (peer, _outcome):
        await peer.start(initial_window_size=0)
        await peer.send(peer.headers(1))
        reset = await peer.reset_of(1)
    assert reset.error_code == CANCEL


async def test_data_beyond_the_window_is_a_flow_control_error() -> None:
    async with raw_server(slow, initial_stream_window_size=65_535) as (peer, _outcome):
        await peer.start()
        await peer.send(peer.headers(1, end_stream=False, method="POST"))
        await peer.send(b"".join(DataFrame(1, b"d" * 16_384).serialize() for _ in range(5)))
        goaway = await peer.goaway()
    assert goaway.error_code == FLOW_CONTROL_ERROR


async def test_window_overflow_is_a_flow_control_error() -> None:
    async with raw_server() as (peer, _outcome):
        await peer.start()
        await peer.send(WindowUpdateFrame(0, window_increment=2**31 - 1).serialize())
        goaway = await peer.goaway()
    assert goaway.error_code == FLOW_CONTROL_ERROR


async def test_not_a_preface_is_a_protocol_error() -> None:
    async with raw_server() as (peer, outcome):
        await peer.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        goaway = await peer.goaway()
        await finished(outcome)
    assert goaway.error_code == PROTOCOL_ERROR
    assert_ended_with(outcome, PROTOCOL_ERROR)


async def test_client_goaway_with_error_ends_the_connection() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        await peer.send(GoAwayFrame(0, last_stream_id=0, error_code=PROTOCOL_ERROR).serialize())
        await finished(outcome)
    assert_ended_with(outcome, PROTOCOL_ERROR)


async def test_client_goaway_no_error_lets_streams_finish() -> None:
    gate = anyio.Event()

    async def svc(request: Request[Incoming]) -> Response[Full]:
        await gate.wait()
        return Response(200, body=Full(b"finished"))

    async with raw_server(svc) as (peer, outcome):
        await peer.start()
        await peer.send(peer.headers(1))
        await anyio.wait_all_tasks_blocked()
        await peer.send(GoAwayFrame(0, last_stream_id=0, error_code=NO_ERROR).serialize())
        await anyio.wait_all_tasks_blocked()
        gate.set()
        data = await peer.read_until(lambda f: isinstance(f, DataFrame) and f.stream_id == 1)
        await finished(outcome)
    assert isinstance(data, DataFrame)
    assert data.data == b"finished"
    assert outcome == [None]


async def test_invalid_path_characters_are_a_stream_error() -> None:
    async with raw_server() as (peer, outcome):
        await peer.start()
        await peer.send(peer.headers(1, path="/a b"))
        reset = await peer.reset_of(1)
        await peer.send(peer.headers(3, path="*", method="OPTIONS"))
        ok_frame = await peer.read_until(lambda f: isinstance(f, DataFrame) and f.stream_id == 3)
    assert reset.error_code == PROTOCOL_ERROR
    assert isinstance(ok_frame, DataFrame)
    assert not outcome


async def test_resets_spread_over_reads_do_not_accumulate() -> None:
    """Streams reset before they were served cost no task and leave no debt."""
    async with raw_server(slow) as (peer, outcome):
        await peer.start()
        sid = 1
        for _ in range(6):  # 6 x 15 = 90 resets, each read under the budget of 20
            burst = b""
            for _ in range(15):
                burst += peer.headers(sid) + RstStreamFrame(sid, error_code=CANCEL).serialize()
                sid += 2
            await peer.send(burst)
            await anyio.wait_all_tasks_blocked()
        await peer.send(PingFrame(0, b"stillok?").serialize())
        ack = await peer.read_until(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags)
    assert isinstance(ack, PingFrame)
    assert not outcome
