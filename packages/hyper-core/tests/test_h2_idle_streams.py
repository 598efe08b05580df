"""RFC 9113 section 5.1: frames on an idle stream are a connection error, on both roles.

What belongs here: raw-frame tests of the rule that a DATA, HEADERS (other
than the one opening a client's stream), RST_STREAM or WINDOW_UPDATE frame on
a stream in the "idle" state is a connection error of type PROTOCOL_ERROR:
the endpoint answers with GOAWAY(PROTOCOL_ERROR) and ends the connection.
Each case runs with no stream yet, with one stream open and with one stream
already finished, since h2 on its own lets some of these through once the
connection has seen a stream.

Strategy: :class:`RawEnd` writes frames serialized by hyperframe (no h2 state
machine to stop us) into a memory pipe and parses what comes back; HPACK
blocks come from a real ``hpack.Encoder``. The server under test is
``server.conn.http2``; the client under test is ``client.conn.http2``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hpack import Encoder
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from hyper_core.body import Full, Incoming, collect
from hyper_core.client.conn import http2 as client_http2
from hyper_core.error import HyperError, ProtocolError
from hyper_core.http import Request, Response
from hyper_core.rt import IO
from hyper_core.server.conn import http2 as server_http2
from hyper_core.testing import memory_pipe

pytestmark = pytest.mark.anyio

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROTOCOL_ERROR = 0x1
CANCEL = 0x8

#: How to build each forbidden frame on a given stream.
IDLE_FRAMES: dict[str, Callable[[int], Frame]] = {
    "DATA": lambda sid: DataFrame(sid, b"x"),
    "RST_STREAM": lambda sid: RstStreamFrame(sid, error_code=CANCEL),
    "WINDOW_UPDATE": lambda sid: WindowUpdateFrame(sid, window_increment=1),
}
#: What else the connection has seen when the frame arrives.
HISTORIES = ["no-stream", "stream-open", "stream-closed"]


class RawEnd:
    """One end of a connection that writes raw frames and reads frames back."""

    def __init__(self, io: IO) -> None:
        self.io = io
        self.encoder = Encoder()
        self.buffer = b""

    async def send(self, *frames: Frame | bytes) -> None:
        await self.io.send(b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames))

    def headers(self, sid: int, fields: list[tuple[str, str]], *, end: bool) -> HeadersFrame:
        frame = HeadersFrame(sid, self.encoder.encode(fields))
        frame.flags.add("END_HEADERS")
        if end:
            frame.flags.add("END_STREAM")
        return frame

    async def next_frame(self) -> Frame | None:
        """The next frame from the other end; None once it closed. SETTINGS are acked."""
        with anyio.fail_after(5):
            while True:
                if len(self.buffer) >= 9:
                    frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                    if len(self.buffer) >= 9 + length:
                        frame.parse_body(memoryview(self.buffer[9 : 9 + length]))
                        self.buffer = self.buffer[9 + length :]
                        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                            ack = SettingsFrame(0)
                            ack.flags.add("ACK")
                            await self.send(ack)
                        return frame
                try:
                    data = await self.io.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return None
                self.buffer += data

    async def read_until(self, predicate: Callable[[Frame], bool]) -> Frame | None:
        while True:
            frame = await self.next_frame()
            if frame is None or predicate(frame):
                return frame

    async def goaway(self) -> GoAwayFrame:
        frame = await self.read_until(lambda f: isinstance(f, GoAwayFrame))
        assert isinstance(frame, GoAwayFrame), "the connection closed without a GOAWAY"
        return frame


REQUEST = [(":method", "GET"), (":scheme", "http"), (":authority", "example"), (":path", "/")]


# -- the server receives -----------------------------------------------------------


async def _server_case(history: str, frame: Frame) -> tuple[GoAwayFrame, list[Any]]:
    """Serve a raw client that sends ``frame`` after ``history``; return the GOAWAY."""
    client_io, server_io = memory_pipe()
    release = anyio.Event()
    outcome: list[Any] = []

    async def service(request: Request[Incoming]) -> Response[Full]:
        if request.uri.path == "/hold":
            await release.wait()
        return Response(200, body=Full(b"ok"))

    async def run() -> None:
        try:
            await server_http2.Builder().serve_connection(server_io, service)
        except HyperError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    peer = RawEnd(client_io)
    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await peer.send(PREFACE, SettingsFrame(0))
        if history == "stream-open":
            await peer.send(peer.headers(1, [*REQUEST[:3], (":path", "/hold")], end=True))
        elif history == "stream-closed":
            await peer.send(peer.headers(1, REQUEST, end=True))
            done = await peer.read_until(lambda f: f.stream_id == 1 and "END_STREAM" in f.flags)
            assert done is not None
        await peer.send(frame)
        goaway = await peer.goaway()
        release.set()
        with anyio.fail_after(5):
            while not outcome:  # noqa: ASYNC110 - the outcome list is filled by run()
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    return goaway, outcome


@pytest.mark.parametrize("history", HISTORIES)
@pytest.mark.parametrize("kind", sorted(IDLE_FRAMES))
@pytest.mark.parametrize("sid", [5, 2], ids=["client-id", "server-id"])
async def test_server_refuses_frames_on_idle_streams(history: str, kind: str, sid: int) -> None:
    goaway, outcome = await _server_case(history, IDLE_FRAMES[kind](sid))
    assert goaway.error_code == PROTOCOL_ERROR
    assert len(outcome) == 1
    assert isinstance(outcome[0], ProtocolError)
    assert outcome[0].error_code == PROTOCOL_ERROR


@pytest.mark.parametrize("history", HISTORIES)
async def test_server_refuses_headers_on_an_idle_server_stream(history: str) -> None:
    frame = RawEnd(memory_pipe()[0]).headers(2, REQUEST, end=True)
    goaway, outcome = await _server_case(history, frame)
    assert goaway.error_code == PROTOCOL_ERROR
    assert isinstance(outcome[0], ProtocolError)


async def test_server_still_accepts_a_new_client_stream_and_ignores_closed_ones() -> None:
    # The rule is about idle streams only: a reset or window update on a
    # stream that is over is ignored (RFC 9113 section 5.1, "closed"), and
    # a HEADERS opening the next client stream is a request.
    client_io, server_io = memory_pipe()

    async def service(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(request.uri.path.encode()))

    peer = RawEnd(client_io)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server_http2.Builder().serve_connection(server_io, service).serve)
        await peer.send(PREFACE, SettingsFrame(0), peer.headers(1, REQUEST, end=True))
        assert await peer.read_until(lambda f: f.stream_id == 1 and "END_STREAM" in f.flags)
        await peer.send(
            RstStreamFrame(1, error_code=CANCEL),
            WindowUpdateFrame(1, window_increment=1),
            peer.headers(3, [*REQUEST[:3], (":path", "/next")], end=True),
        )
        data = await peer.read_until(lambda f: isinstance(f, DataFrame | GoAwayFrame))
        assert isinstance(data, DataFrame)
        assert (data.stream_id, data.data) == (3, b"/next")
        tg.cancel_scope.cancel()


# -- the client receives -----------------------------------------------------------


async def _client_case(history: str, frame: Frame) -> tuple[GoAwayFrame, list[BaseException]]:
    """Run a client against a raw server that sends ``frame`` after ``history``.

    Returns the client's GOAWAY and what each request of the test raised.
    """
    client_io, server_io = memory_pipe()
    peer = RawEnd(server_io)
    failures: list[BaseException] = []
    async with anyio.create_task_group() as tg:
        await peer.send(SettingsFrame(0))
        sender, connection = await client_http2.handshake(client_io)
        tg.start_soon(connection.serve)
        preface = await peer.io.receive(len(PREFACE))
        assert preface == PREFACE

        async def in_flight() -> None:
            try:
                await sender.send_request(Request("GET", "http://example/"))
            except HyperError as exc:
                failures.append(exc)

        if history == "stream-open":
            tg.start_soon(in_flight)
            assert await peer.read_until(lambda f: isinstance(f, HeadersFrame))
        elif history == "stream-closed":
            answered: list[Response[Incoming]] = []

            async def one() -> None:
                answered.append(await sender.send_request(Request("GET", "http://example/")))

            tg.start_soon(one)
            assert await peer.read_until(lambda f: isinstance(f, HeadersFrame))
            await peer.send(peer.headers(1, [(":status", "200")], end=True))
            with anyio.fail_after(5):
                while not answered:  # noqa: ASYNC110 - filled by one()
                    await anyio.sleep(0.01)
            assert (await collect(answered[0].body)).data == b""
        await peer.send(frame)
        goaway = await peer.goaway()
        with anyio.fail_after(5):
            while history == "stream-open" and not failures:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        try:
            await sender.send_request(Request("GET", "http://example/after"))
        except HyperError as exc:
            failures.append(exc)
        tg.cancel_scope.cancel()
    return goaway, failures


@pytest.mark.parametrize("history", HISTORIES)
@pytest.mark.parametrize("kind", [*sorted(IDLE_FRAMES), "HEADERS"])
@pytest.mark.parametrize("sid", [3, 2], ids=["client-id", "server-id"])
async def test_client_refuses_frames_on_idle_streams(history: str, kind: str, sid: int) -> None:
    if kind == "HEADERS":
        frame: Frame = RawEnd(memory_pipe()[0]).headers(sid, [(":status", "200")], end=True)
    else:
        frame = IDLE_FRAMES[kind](sid)
    goaway, failures = await _client_case(history, frame)
    assert goaway.error_code == PROTOCOL_ERROR
    # The request in flight (if any) fails with the protocol error, and so
    # does (through ClosedError's cause) a request made afterwards.
    expected = 2 if history == "stream-open" else 1
    assert len(failures) == expected
    if history == "stream-open":
        assert isinstance(failures[0], ProtocolError)
        assert failures[0].error_code == PROTOCOL_ERROR
    last = failures[-1]
    assert isinstance(last, ProtocolError) or isinstance(last.__cause__, ProtocolError)
