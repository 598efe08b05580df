"""The HTTP/1 client's hyper options: the lenient switches for responses and ``writev``.

What belongs here: ``http09_responses``,
``allow_spaces_after_header_name_in_responses``,
``ignore_invalid_headers_in_responses`` and ``writev`` seen from the wire
(request bytes out, raw response bytes in), each off by default as in
hyper; and the ``timer`` option that is gone. hyper's own HTTP/0.9 tests are
ported in ``test_client_h1_wire.py``; the line-by-line rules of the lenient
switches, on both codecs, are in ``test_h1_lenient.py``.

Strategy: a client connection of ours over a loopback TCP socket or a memory
pipe, driven in the test's task group; the test is the server and speaks
raw bytes. The suite runs on the codec ``HYPER_CORE_H1_CODEC`` picks; the
h11 codec refuses ``http09_responses`` when the builder is made.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.abc
import pytest
from h1_recording_io import RecordingIO, RecordingVectoredIO, io_pair

from hyper_core.body import Body, Empty, Frame, Incoming, StreamBody, collect
from hyper_core.client.conn import http1
from hyper_core.error import CanceledError, ParseError
from hyper_core.http import Request, Response, Version
from hyper_core.proto.h1 import _codec
from hyper_core.testing import FakeTimer

pytestmark = pytest.mark.anyio

T = TypeVar("T")
WAIT = 10.0
H11 = _codec.DEFAULT_IMPL == "h11"


def needs_http09(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """On the h11 codec the test becomes: ``http09_responses`` is refused at build time."""
    if not H11:
        return test

    @functools.wraps(test)
    async def refused(*args: Any, **kwargs: Any) -> None:
        with pytest.raises(ValueError, match="h11 codec"):
            http1.Builder(http09_responses=True)

    return refused


@pytest.fixture(params=["tcp", "memory"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Client:
    """A client connection of ours, its recording IO, and the server's raw end."""

    def __init__(
        self, sender: http1.SendRequest, io: RecordingIO, server: anyio.abc.ByteStream
    ) -> None:
        self.sender = sender
        self.io = io
        self.server = server
        self.tg: anyio.abc.TaskGroup | None = None
        self.buf = bytearray()

    async def read_request(self, marker: bytes = b"\r\n\r\n") -> bytes:
        with anyio.fail_after(WAIT):
            while marker not in self.buf:
                self.buf += await self.server.receive()
        end = self.buf.index(marker) + len(marker)
        data = bytes(self.buf[:end])
        del self.buf[:end]
        return data

    async def ask(self, request: Request[Any], reply: bytes, *, eof: bool = True) -> bytes:
        """Send ``request``, answer it with ``reply`` (then EOF), return its body."""
        response = await self.exchange(request, reply, eof=eof)
        return (await collect(response.body)).to_bytes()

    async def exchange(
        self, request: Request[Any], reply: bytes, *, eof: bool = True
    ) -> Response[Incoming]:
        async def answer() -> None:
            await self.read_request()
            await self.server.send(reply)
            if eof:
                await self.server.send_eof()

        assert self.tg is not None
        self.tg.start_soon(answer)
        with anyio.fail_after(WAIT):
            return await self.sender.send_request(request)


@asynccontextmanager
async def client(
    transport: str, io_class: type[RecordingIO] = RecordingIO, **options: Any
) -> AsyncIterator[Client]:
    async with io_pair(transport) as (ours, server):
        io = io_class(ours)
        sender, connection = await http1.Builder(**options).handshake(io)
        async with anyio.create_task_group() as tg:
            c = Client(sender, io, server)
            c.tg = tg
            tg.start_soon(connection.serve)
            yield c
            tg.cancel_scope.cancel()


def get(method: str = "GET", body: Body | None = None) -> Request[Any]:
    return Request(method, "/", headers={"host": "a"}, body=body or Empty())


async def completes(fn: Callable[[], Awaitable[T]]) -> T:
    with anyio.fail_after(WAIT):
        return await fn()


# -- http09_responses -------------------------------------------------------------


@needs_http09
async def test_http09_is_refused_by_default(transport: str) -> None:
    async with client(transport) as c:
        with pytest.raises(ParseError):
            await c.ask(get(), b"Mmmmh, baguettes.\r\n\r\n")


def test_http09_responses_cannot_be_built_on_the_h11_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_codec, "DEFAULT_IMPL", "h11")
    with pytest.raises(ValueError, match="h11 codec"):
        http1.Builder(http09_responses=True)
    with pytest.raises(ValueError, match="h11 codec"):
        _codec.new_codec(_codec.Role.CLIENT, impl="h11", http09_responses=True)


@needs_http09
async def test_http09_body_is_everything_to_the_close_and_the_connection_ends(
    transport: str,
) -> None:
    async with client(transport, http09_responses=True) as c:
        response = await c.exchange(get(), b"no status line\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
        assert (response.status, response.version) == (200, Version.HTTP_09)
        body = (await collect(response.body)).to_bytes()
        assert body == b"no status line\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
        # Read to the close: the connection is over as soon as the body is.
        assert c.sender.is_closed()


@needs_http09
async def test_http09_to_head_has_no_body(transport: str) -> None:
    async with client(transport, http09_responses=True) as c:
        response = await c.exchange(get("HEAD"), b"whatever")
        assert response.status == 200
        assert (await collect(response.body)).to_bytes() == b""
        # Read to the close: the connection is over as soon as the body is.
        assert c.sender.is_closed()


@needs_http09
@pytest.mark.parametrize(
    ("reply", "http09"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi", False, id="http11"),
        pytest.param(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nhi", False, id="http10"),
        pytest.param(b"HTTP/1.2 200 OK\r\n\r\nhi", True, id="http12-is-0.9"),
        pytest.param(b"HTTP/1.1\t200 OK\r\n\r\nhi", True, id="no-space-is-0.9"),
        pytest.param(b"hi", True, id="plain"),
    ],
)
async def test_what_counts_as_http09(transport: str, reply: bytes, http09: bool) -> None:
    # As httparse decides: not "HTTP/1.0 " or "HTTP/1.1 " at the start.
    async with client(transport, http09_responses=True) as c:
        response = await c.exchange(get(), reply)
        body = (await collect(response.body)).to_bytes()
    assert (response.version is Version.HTTP_09) is http09
    assert body == (reply if http09 else b"hi")


@needs_http09
async def test_http09_waits_for_enough_bytes_to_decide(transport: str) -> None:
    async with client(transport, http09_responses=True) as c:

        async def answer() -> None:
            await c.read_request()
            for piece in (b"HT", b"TP/1", b".1 200 OK\r\ncontent-length: 2\r\n\r\nhi"):
                await c.server.send(piece)
                await anyio.sleep(0.01)

        assert c.tg is not None
        c.tg.start_soon(answer)
        response = await completes(lambda: c.sender.send_request(get()))
        assert response.version is Version.HTTP_11
        assert (await collect(response.body)).to_bytes() == b"hi"


@needs_http09
async def test_only_the_first_response_may_be_http09(transport: str) -> None:
    async with client(transport, http09_responses=True) as c:
        reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
        assert await c.ask(get(), reply, eof=False) == b"hi"
        with pytest.raises(ParseError):
            await c.ask(get(), b"Mmmmh, baguettes.\r\n\r\n")


# -- allow_spaces_after_header_name_in_responses ----------------------------------

SPACED = b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Credentials : true\r\ncontent-length: 0\r\n\r\n"


async def test_spaces_before_a_colon_are_refused_by_default(transport: str) -> None:
    async with client(transport) as c:
        with pytest.raises(ParseError, match="whitespace between a header name and its colon"):
            await c.ask(get(), SPACED)


async def test_allow_spaces_after_header_name_in_responses(transport: str) -> None:
    # hyper's test_parse_allow_response_with_spaces_before_colons.
    async with client(transport, allow_spaces_after_header_name_in_responses=True) as c:
        response = await c.exchange(get(), SPACED)
    assert response.headers.raw() == [
        (b"Access-Control-Allow-Credentials", b"true"),
        (b"content-length", b"0"),
    ]


async def test_a_spaced_framing_field_frames_the_response(transport: str) -> None:
    # RFC 9112 section 5.1: a proxy removes the whitespace, so this is the
    # message's Content-Length, and the next response is read after it.
    reply = b"HTTP/1.1 200 OK\r\nContent-Length\t : 2\r\n\r\nhi"
    async with client(transport, allow_spaces_after_header_name_in_responses=True) as c:
        assert await c.ask(get(), reply + b"HTTP/1.1 204 No Content\r\n\r\n", eof=False) == b"hi"


# -- ignore_invalid_headers_in_responses ------------------------------------------

INVALID = (
    b"HTTP/1.1 200 OK\r\nX-Before: 1\r\nBad Name: x\r\nX-Ctl: a\x01b\r\nX-After: 2\r\n"
    b"content-length: 2\r\n\r\nhi"
)


async def test_invalid_response_lines_are_refused_by_default(transport: str) -> None:
    async with client(transport) as c:
        with pytest.raises(ParseError, match="header name"):
            await c.ask(get(), INVALID)


async def test_ignore_invalid_headers_in_responses_drops_them(transport: str) -> None:
    async with client(transport, ignore_invalid_headers_in_responses=True) as c:
        response = await c.exchange(get(), INVALID, eof=False)
        assert (await collect(response.body)).to_bytes() == b"hi"
        assert response.headers.raw() == [
            (b"X-Before", b"1"),
            (b"X-After", b"2"),
            (b"content-length", b"2"),
        ]
        # The connection stays usable: the next response is where it should be.
        assert await c.ask(get(), b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nbye") == b"bye"


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"Content-Length : 5", id="spaced-content-length"),
        pytest.param(b"Transfer-Encoding\x0b: chunked", id="te-vertical-tab"),
        pytest.param(b"Content-Length: 2\x7f", id="content-length-del"),
        pytest.param(b"X: a\x00", id="nul"),
    ],
)
async def test_framing_lines_in_responses_are_never_dropped(transport: str, line: bytes) -> None:
    reply = b"HTTP/1.1 200 OK\r\n" + line + b"\r\ncontent-length: 2\r\n\r\nhi"
    async with client(transport, ignore_invalid_headers_in_responses=True) as c:
        with pytest.raises(ParseError, match="never ignored"):
            await c.ask(get(), reply)


# -- writev -----------------------------------------------------------------------


def streamed(*chunks: bytes) -> StreamBody:
    async def gen() -> AsyncIterator[bytes | Frame]:
        for chunk in chunks:
            yield chunk

    return StreamBody(gen())


A, B = b"a" * 5000, b"b" * 6000
# 5000 and 6000 in hex; pieces of 4 KiB and more are framed as three pieces.
BODY_WIRE = b"1388\r\n" + A + b"\r\n1770\r\n" + B + b"\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("io_class", "writev", "calls"),
    [
        # No vectored write on the IO: auto and False join a frame's pieces
        # into one send, True sends each piece as it is (no copy).
        (RecordingIO, None, ["send", "send"]),
        (RecordingIO, False, ["send", "send"]),
        (RecordingIO, True, ["send"] * 6),
        # A vectored write: auto and True use it, False joins.
        (RecordingVectoredIO, None, ["send_many", "send_many"]),
        (RecordingVectoredIO, True, ["send_many", "send_many"]),
        (RecordingVectoredIO, False, ["send", "send"]),
    ],
)
async def test_writev_decides_how_body_pieces_reach_the_io(
    transport: str, io_class: type[RecordingIO], writev: bool | None, calls: list[str]
) -> None:
    async with client(transport, io_class, writev=writev) as c:

        async def answer() -> None:
            await c.read_request(b"0\r\n\r\n")
            await c.server.send(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")

        assert c.tg is not None
        c.tg.start_soon(answer)
        response = await completes(lambda: c.sender.send_request(get("POST", streamed(A, B))))
        assert response.status == 200
    body = c.io.written.split(b"\r\n\r\n", 1)[1]
    assert body == BODY_WIRE  # the same bytes whatever the option
    # The head goes out alone, then the two frames as the option says, then
    # the end of the body (one send).
    assert [kind for kind, _ in c.io.calls[1:]] == [*calls, "send"]
    assert c.io.calls[-1] == ("send", b"0\r\n\r\n")


def test_the_timer_option_is_gone() -> None:
    # It was accepted and did nothing (hyper's HTTP/1 client has none either).
    with pytest.raises(TypeError, match="timer"):
        http1.Builder(timer=FakeTimer())  # type: ignore[call-arg]


async def test_a_closed_connection_refuses_requests_after_http09(transport: str) -> None:
    if H11:
        return
    async with client(transport, http09_responses=True) as c:
        response = await c.exchange(get(), b"done")
        await collect(response.body)
        # Read to the close: the connection is over as soon as the body is.
        assert c.sender.is_closed()
        with pytest.raises(CanceledError):
            await c.sender.send_request(get())
