"""The HTTP/1 server's hyper options ``pipeline_flush`` and ``ignore_invalid_headers``.

What belongs here: each option seen from the wire (raw request bytes in,
response bytes out), its default (off, hyper's), and the calls the
connection makes on its IO where the option is about them.
``pipeline_enabled``, hyper's own test of ``pipeline_flush``, is ported in
``test_server_h1_ported.py``.

Strategy: one ``http1.Connection`` per test over a loopback TCP socket or a
memory pipe, its IO wrapped in a :class:`~h1_recording_io.RecordingIO`; the
test is the client and speaks raw bytes. Every wait is bounded.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from h1_recording_io import RecordingIO, RecordingVectoredIO, io_pair

from hyper_core import ext
from hyper_core.body import Full, Incoming, StreamBody, collect
from hyper_core.error import ParseError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1

pytestmark = pytest.mark.anyio

WAIT = 10.0
GET = b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.fixture(params=["tcp", "memory"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Conn:
    """A running server connection: the recording IO, the client end, the outcome."""

    def __init__(self, io: RecordingIO, client: anyio.abc.ByteStream) -> None:
        self.io = io
        self.client = client
        self.done = anyio.Event()
        self.error: BaseException | None = None
        self.buf = bytearray()

    async def read_until(self, marker: bytes, count: int = 1) -> bytes:
        """Read until ``marker`` was seen ``count`` times; return all read so far."""
        with anyio.fail_after(WAIT):
            while self.buf.count(marker) < count:
                self.buf += await self.client.receive()
        data = bytes(self.buf)
        self.buf.clear()
        return data

    async def read_to_end(self) -> bytes:
        with anyio.fail_after(WAIT):
            while True:
                try:
                    self.buf += await self.client.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
        data = bytes(self.buf)
        self.buf.clear()
        return data

    async def outcome(self) -> BaseException | None:
        with anyio.fail_after(WAIT):
            await self.done.wait()
        return self.error


@asynccontextmanager
async def serving(
    service: Any, transport: str, io_class: type[RecordingIO] = RecordingIO, **options: Any
) -> AsyncIterator[Conn]:
    async with io_pair(transport) as (server, client), anyio.create_task_group() as tg:
        conn = Conn(io_class(server), client)

        async def run() -> None:
            try:
                await http1.Builder(auto_date_header=False, **options).serve_connection(
                    conn.io, service
                )
            except Exception as exc:
                conn.error = exc
            finally:
                conn.done.set()

        tg.start_soon(run)
        yield conn
        tg.cancel_scope.cancel()


async def numbered(request: Request[Incoming]) -> Response[Full]:
    """Answers ``/N`` with body ``N``."""
    return Response(200, body=Full(request.uri.path[1:].encode()))


def responses(data: bytes) -> list[bytes]:
    """The numeric bodies of the 200 responses in ``data``, in order."""
    return re.findall(rb"HTTP/1.1 200 OK\r\n(?:[^\r]+\r\n)*\r\n(\d+)", data)


# -- pipeline_flush ---------------------------------------------------------------


@pytest.mark.parametrize("pipeline_flush", [False, True])
async def test_pipelined_answers_go_out_in_one_write_only_with_pipeline_flush(
    transport: str, pipeline_flush: bool
) -> None:
    async with serving(numbered, transport, pipeline_flush=pipeline_flush) as conn:
        await conn.client.send(b"".join(GET % n for n in range(1, 6)))
        data = await conn.read_until(b"HTTP/1.1 200 OK", 5)
        await conn.client.aclose()
        assert await conn.outcome() is None
    # The same bytes either way, in request order.
    assert responses(data) == [b"1", b"2", b"3", b"4", b"5"]
    assert conn.io.written == data
    one = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1"
    assert conn.io.sends[0].startswith(one)
    # Held while the next requests were already in, then one write.
    assert len(conn.io.sends) == (1 if pipeline_flush else 5)


async def test_pipeline_flush_is_off_by_default(transport: str) -> None:
    async with serving(numbered, transport) as conn:
        await conn.client.send(GET % 1 + GET % 2)
        await conn.read_until(b"HTTP/1.1 200 OK", 2)
    assert len(conn.io.sends) == 2


async def test_held_answers_are_written_before_the_connection_reads(transport: str) -> None:
    # The second request is incomplete: the first answer cannot wait for it.
    async with serving(numbered, transport, pipeline_flush=True) as conn:
        await conn.client.send(GET % 1 + b"GET /2 HT")
        first = await conn.read_until(b"\r\n\r\n1")
        assert responses(first) == [b"1"]
        await conn.client.send(b"TP/1.1\r\nHost: a\r\n\r\n")
        assert responses(await conn.read_until(b"\r\n\r\n2")) == [b"2"]
    assert conn.io.sends == [first, conn.io.sends[1]]


async def test_held_answers_are_written_while_a_service_waits(transport: str) -> None:
    # /2's service waits until the client has the answer to /1: held until
    # /2 is answered, that answer would never come.
    got_first = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Full]:
        if request.uri.path == "/2":
            await got_first.wait()
        return await numbered(request)

    async with serving(service, transport, pipeline_flush=True) as conn:
        await conn.client.send(GET % 1 + GET % 2 + GET % 3)
        assert responses(await conn.read_until(b"\r\n\r\n1")) == [b"1"]
        got_first.set()
        assert responses(await conn.read_until(b"\r\n\r\n3")) == [b"2", b"3"]


async def test_held_answers_are_written_before_a_body_is_read(transport: str) -> None:
    # The client sends the second request's body only once it has the first
    # answer (as one waiting for 100 Continue would).
    async def echo(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full((await collect(request.body)).to_bytes()))

    post = b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n"
    async with serving(echo, transport, pipeline_flush=True) as conn:
        await conn.client.send(GET % 1 + post)
        assert responses(await conn.read_until(b"content-length: 0\r\n\r\n")) == []
        await conn.client.send(b"7")
        assert responses(await conn.read_until(b"\r\n\r\n7")) == [b"7"]


@pytest.mark.parametrize("wait_first", [False, True])
async def test_held_answers_precede_a_later_informational_response(
    transport: str, wait_first: bool
) -> None:
    # /2 sends 103 Early Hints (at once, or after waiting): the answer to /1,
    # held at that moment, must be on the wire before it.
    async def hints(request: Request[Incoming]) -> Response[Full]:
        if request.uri.path == "/2":
            if wait_first:
                await anyio.sleep(0.01)
            await ext.send_informational(request, 103, {"link": "</s.css>; rel=preload"})
        return await numbered(request)

    async with serving(hints, transport, pipeline_flush=True) as conn:
        await conn.client.send(GET % 1 + GET % 2 + GET % 3)
        data = await conn.read_until(b"\r\n\r\n3")
    first, early, second = (data.index(m) for m in (b"\r\n\r\n1", b"103 Early", b"\r\n\r\n2"))
    assert first < early < second
    assert responses(data) == [b"1", b"2", b"3"]


async def test_held_answers_are_bounded_by_max_buf_size(transport: str) -> None:
    big = b"x" * 3000

    async def large(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(big))

    async with serving(large, transport, pipeline_flush=True, max_buf_size=8192) as conn:
        await conn.client.send(b"".join(GET % n for n in range(10)))
        data = await conn.read_until(big, 10)
    assert data.count(big) == 10
    # At most two answers (about 3 KB each) fit in 8 KiB: several writes, none over it.
    assert 4 <= len(conn.io.sends) < 10
    assert all(len(chunk) <= 8192 for chunk in conn.io.sends)


async def test_held_answers_keep_the_64_kib_bound_of_one_write(transport: str) -> None:
    # The default max_buf_size (~400 KB) would hold more: one send never
    # carries more than 64 KiB, so send_stall_timeout's minimum read rate
    # holds with pipeline_flush too.
    big = b"y" * 20_000

    async def large(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(big))

    async with serving(large, transport, pipeline_flush=True) as conn:
        await conn.client.send(b"".join(GET % n for n in range(12)))
        data = await conn.read_until(big, 12)
    assert data.count(big) == 12
    # Three answers (20 KB and a head each) fit in 64 KiB, four do not.
    assert all(len(chunk) <= 65_536 for chunk in conn.io.sends)
    assert 4 <= len(conn.io.sends) < 12


async def test_held_answers_are_written_when_the_client_half_closes(transport: str) -> None:
    async with serving(numbered, transport, pipeline_flush=True, half_close=True) as conn:
        await conn.client.send(GET % 1 + GET % 2 + b"\r\n")
        await conn.client.send_eof()
        data = await conn.read_to_end()
        assert await conn.outcome() is None
    assert responses(data) == [b"1", b"2"]


async def test_held_answers_precede_the_400_of_a_bad_request(transport: str) -> None:
    async with serving(numbered, transport, pipeline_flush=True) as conn:
        await conn.client.send(GET % 1 + GET % 2 + b"BAD\x00 / HTTP/1.1\r\n\r\n")
        data = await conn.read_to_end()
        assert isinstance(await conn.outcome(), ParseError)
    assert responses(data) == [b"1", b"2"]
    assert data.index(b"HTTP/1.1 400 Bad Request") > data.index(b"\r\n\r\n2")


async def test_pipeline_flush_keeps_connection_close_last(transport: str) -> None:
    async with serving(numbered, transport, pipeline_flush=True) as conn:
        await conn.client.send(GET % 1 + b"GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = await conn.read_to_end()
        assert await conn.outcome() is None
    assert responses(data) == [b"1", b"2"]
    assert data.lower().count(b"connection: close") == 1  # h11 writes it Title-Case
    assert len(conn.io.sends) == 1


# -- writev -----------------------------------------------------------------------

A, B = b"a" * 5000, b"b" * 6000


async def streamed(request: Request[Incoming]) -> Response[StreamBody]:
    async def pieces() -> AsyncIterator[bytes]:
        yield A
        yield B

    return Response(200, body=StreamBody(pieces()))


@pytest.mark.parametrize(
    ("io_class", "writev", "calls"),
    [
        # Chunks of 4 KiB and more are framed as three pieces: size line,
        # data, CRLF. Without a vectored write, auto and False join them,
        # True sends each (no copy); with one, auto and True use it.
        (RecordingIO, None, ["send", "send"]),
        (RecordingIO, False, ["send", "send"]),
        (RecordingIO, True, ["send"] * 6),
        (RecordingVectoredIO, None, ["send_many", "send_many"]),
        (RecordingVectoredIO, True, ["send_many", "send_many"]),
        (RecordingVectoredIO, False, ["send", "send"]),
    ],
)
async def test_writev_decides_how_body_pieces_reach_the_io(
    transport: str, io_class: type[RecordingIO], writev: bool | None, calls: list[str]
) -> None:
    async with serving(streamed, transport, io_class=io_class, writev=writev) as conn:
        await conn.client.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = await conn.read_to_end()
        assert await conn.outcome() is None
    assert data.endswith(b"\r\n\r\n1388\r\n" + A + b"\r\n1770\r\n" + B + b"\r\n0\r\n\r\n")
    assert conn.io.written == data
    # The head alone, the two frames as the option says, then the last chunk.
    assert [kind for kind, _ in conn.io.calls] == ["send", *calls, "send"]


# -- allow_multiple_spaces_in_request_line_delimiters -----------------------------


async def request_line(request: Request[Incoming]) -> Response[Full]:
    host = request.headers.get("host") or ""
    return Response(200, body=Full(f"{request.method} {request.uri} {host}".encode()))


SPACED_LINE = b"GET  /echo  HTTP/1.1\r\nHost: hyper.rs\r\n\r\n"


async def test_multiple_spaces_in_the_request_line_get_400_by_default(transport: str) -> None:
    async with serving(request_line, transport) as conn:
        await conn.client.send(SPACED_LINE)
        data = await conn.read_to_end()
        assert isinstance(await conn.outcome(), ParseError)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_allow_multiple_spaces_in_request_line_delimiters(transport: str) -> None:
    # hyper's test_parse_allow_request_with_multiple_spaces_in_request_line.
    spaces = {"allow_multiple_spaces_in_request_line_delimiters": True}
    async with serving(request_line, transport, RecordingIO, **spaces) as conn:
        await conn.client.send(SPACED_LINE)
        data = await conn.read_until(b"hyper.rs")
    assert data.endswith(b"\r\n\r\nGET /echo hyper.rs")


# -- ignore_invalid_headers -------------------------------------------------------


async def fields(request: Request[Incoming]) -> Response[Full]:
    """Answers with the request's header lines, one per line."""
    lines = [name + b": " + value for name, value in request.headers.raw()]
    return Response(200, body=Full(b"\n".join(lines)))


INVALID_LINES = [
    pytest.param(b"Bad Name: x", id="space-in-name"),
    pytest.param(b"X-Spaced : x", id="space-before-colon"),
    pytest.param(b"X-Ctl: a\x01b", id="control-byte-in-value"),
    pytest.param(b"NoColon", id="no-colon"),
    pytest.param(b": empty-name", id="empty-name"),
    pytest.param(b"X-Del\x7f: x", id="del-in-name"),
]


@pytest.mark.parametrize("line", INVALID_LINES)
async def test_invalid_header_lines_get_400_by_default(transport: str, line: bytes) -> None:
    async with serving(fields, transport) as conn:
        await conn.client.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n")
        data = await conn.read_to_end()
        assert isinstance(await conn.outcome(), ParseError)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


@pytest.mark.parametrize("line", INVALID_LINES)
async def test_ignore_invalid_headers_drops_the_line(transport: str, line: bytes) -> None:
    async with serving(fields, transport, ignore_invalid_headers=True) as conn:
        head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Before: 1\r\n" + line + b"\r\nX-After: 2\r\n\r\n"
        await conn.client.send(head + GET % 2)
        data = await conn.read_until(b"HTTP/1.1 200 OK", 2)
    body = data.split(b"\r\n\r\n")[1]
    assert body.startswith(b"Host: a\nX-Before: 1\nX-After: 2")
    # The connection carries on: the next request is read from the right place.
    assert data.endswith(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nHost: a")


async def test_a_continuation_line_of_a_dropped_line_is_dropped_too(transport: str) -> None:
    async with serving(fields, transport, ignore_invalid_headers=True) as conn:
        await conn.client.send(b"GET / HTTP/1.1\r\nHost: a\r\nX y: 1\r\n folded\r\nZ: 3\r\n\r\n")
        data = await conn.read_until(b"Z: 3")
    assert data.endswith(b"\r\n\r\nHost: a\nZ: 3")


NEVER_DROPPED = [
    pytest.param(b"Content-Length : 5", id="content-length-space-before-colon"),
    pytest.param(b"Transfer-Encoding\x0b: chunked", id="te-vertical-tab"),
    pytest.param(b"Transfer-Encoding : chunked", id="te-space-before-colon"),
    pytest.param(b" Transfer-Encoding: chunked", id="te-leading-space"),
    pytest.param(b"Content-Length: 5\x01", id="content-length-control-byte"),
    pytest.param(b"Transfer-Encoding chunked", id="te-no-colon"),
    pytest.param(b"Content_Length\x0c: 5", id="content-length-underscore-formfeed"),
    pytest.param(b"Host : evil.example", id="host-space-before-colon"),
    pytest.param(b"X-Nul: a\x00b", id="nul"),
    pytest.param(b"X-Cr: a\rb", id="bare-cr"),
    pytest.param(b"X-Lf: a\nb", id="bare-lf"),
]


@pytest.mark.parametrize("line", NEVER_DROPPED)
async def test_lines_that_touch_framing_are_never_dropped(transport: str, line: bytes) -> None:
    # A front end that reads any of these as the field it resembles would
    # frame (or route) the request differently: refused, not dropped.
    seen: list[bytes] = []

    async def service(request: Request[Incoming]) -> Response[Full]:
        seen.append(request.uri.path.encode())
        return Response(200, body=Full(b"ok"))

    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    async with serving(service, transport, ignore_invalid_headers=True) as conn:
        await conn.client.send(
            b"POST / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled
        )
        data = await conn.read_to_end()
        assert isinstance(await conn.outcome(), ParseError)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert seen == []


async def test_a_continuation_of_a_framing_field_is_never_dropped(transport: str) -> None:
    async with serving(fields, transport, ignore_invalid_headers=True) as conn:
        await conn.client.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n 5\r\n\r\n")
        data = await conn.read_to_end()
        assert isinstance(await conn.outcome(), ParseError)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_dropped_lines_still_count_against_max_headers(transport: str) -> None:
    async with serving(fields, transport, ignore_invalid_headers=True, max_headers=2) as conn:
        await conn.client.send(b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\nX: 2\r\n\r\n")
        data = await conn.read_to_end()
        assert isinstance(await conn.outcome(), ParseError)
    assert data.startswith(b"HTTP/1.1 431 ")


async def test_trailers_are_never_read_leniently(transport: str) -> None:
    async def read_body(request: Request[Incoming]) -> Response[Full]:
        await collect(request.body)
        return Response(200, body=Full(b"ok"))

    async with serving(read_body, transport, ignore_invalid_headers=True) as conn:
        await conn.client.send(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nhi\r\n0\r\nBad Trailer: x\r\n\r\n"
        )
        data = await conn.read_to_end()
        assert await conn.outcome() is not None
    assert not data.startswith(b"HTTP/1.1 200")
