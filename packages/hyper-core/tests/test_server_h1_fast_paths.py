"""The HTTP/1 server's hot-path shortcuts agree with the general code they skip.

What belongs here: checks that each shortcut taken for speed gives exactly
what the step-by-step path gives: the one-regex request-head parse
(``_parse.parse_request_head``) against ``parse_request_line`` plus
``parse_fields``; ``NativeCodec.send_message``'s one-step finish against
``send_head`` + ``send_data`` + ``send_end`` in both roles; and the
dispatcher's inline first step of the service against services that
suspend, that are not coroutines, and that raise at once; and the plain
answer against ``_answer`` (the same response, from a service that answers
at once and from one that suspends, gives the same bytes).

Strategy: hypothesis builds heads from a grammar that mixes valid and broken
pieces, so both the shortcut's answer and its refusals (None, then the slow
path's error) are exercised; the send shortcut is compared byte for byte and
state for state with a second codec that takes the long way; the service
shapes run over :func:`hyper_core.testing.memory_pipe`, every wait bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_core.body import Full, Incoming, collect
from hyper_core.error import HyperError, ParseError, UserError
from hyper_core.http import Request, Response, Version
from hyper_core.proto.h1._codec import Role
from hyper_core.proto.h1._events import HeaderList, RequestHead, ResponseHead
from hyper_core.proto.h1._native_codec import NativeCodec
from hyper_core.proto.h1._parse import (
    MAX_URI_LENGTH,
    parse_fields,
    parse_request_head,
    parse_request_line,
)
from hyper_core.server.conn import http1
from hyper_core.testing import memory_pipe

WAIT = 10.0
MAX_FIELDS = 5

# -- one-regex request-head parse ---------------------------------------------------


def slow_parse(block: bytes, max_fields: int) -> tuple[bytes, bytes, bytes, HeaderList]:
    """What the codec does when the shortcut declines: the step-by-step parse."""
    method, target, version, start = parse_request_line(block)
    if version != b"1.1" and version != b"1.0":
        raise ParseError("version", status_hint=505)
    return method, target, version, parse_fields(block, start, max_fields)


def _mostly(valid: list[bytes], broken: list[bytes]) -> st.SearchStrategy[bytes]:
    """Valid pieces most of the time, so whole heads are often valid too."""
    return st.sampled_from(valid * 6 + broken)


_methods = _mostly([b"GET", b"POST", b"M-SEARCH"], [b"G\x00T", b"", b"GET /"])
_targets = _mostly([b"/", b"/a?b=c", b"*", b"http://x/y"], [b"/a b", b"", b"/\x7f"])
_versions = _mostly([b"1.1", b"1.0"], [b"2.0", b"0.9", b"1.1 ", b"11"])
_names = _mostly([b"Host", b"x-a", b"Content-Length"], [b"bad name", b"", b"x:y", b" x"])
_values = _mostly(
    [b"a.test", b"", b"  v  ", b"a\tb", b"\x80\xff", b"1"], [b"a\x00b", b"a\rb", b"a\x01"]
)
_fields = st.lists(st.tuples(_names, _values), max_size=MAX_FIELDS + 2)
_line_ends = _mostly([b"\r\n"], [b"\n", b" \r\n"])


@settings(max_examples=500, deadline=None)
@given(_methods, _targets, _versions, _fields, _line_ends)
def test_one_regex_head_parse_agrees_with_the_step_by_step_parse(
    method: bytes, target: bytes, version: bytes, fields: list[tuple[bytes, bytes]], end: bytes
) -> None:
    block = method + b" " + target + b" HTTP/" + version + end
    block += b"".join(name + b":" + value + b"\r\n" for name, value in fields)
    try:
        expected: object = slow_parse(block, MAX_FIELDS)
    except ParseError:
        expected = None
    assert parse_request_head(block, MAX_FIELDS) == expected


def test_one_regex_head_parse_leaves_long_targets_and_too_many_fields_to_the_slow_path() -> None:
    long_target = b"GET /" + b"a" * MAX_URI_LENGTH + b" HTTP/1.1\r\nHost: a\r\n"
    assert parse_request_head(long_target, 100) is None
    with pytest.raises(ParseError) as info:
        parse_request_line(long_target)
    assert info.value.status_hint == 414
    many = b"GET / HTTP/1.1\r\n" + b"x: y\r\n" * 3
    assert parse_request_head(many, 3) is not None
    assert parse_request_head(many, 2) is None


# -- send_message's one-step finish -----------------------------------------------------


def long_way(codec: NativeCodec, head: RequestHead | ResponseHead, body: bytes) -> bytes:
    first = codec.send_head(head, len(body))
    if codec.our_state.name != "SEND_BODY":
        return first
    return first + b"".join(codec.send_data(body)) + codec.send_end()


def served_codec(request: bytes) -> NativeCodec:
    codec = NativeCodec(Role.SERVER)
    codec.receive_data(request)
    head = codec.next_event()
    assert isinstance(head, RequestHead)
    return codec


def state(codec: NativeCodec) -> tuple[object, ...]:
    return (codec.our_state, codec.their_state, codec.keep_alive, codec.our_body_allowed)


@pytest.mark.parametrize(
    ("request_bytes", "status", "fields", "body"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, [], b"hello"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, [], b""),
        (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", 200, [], b"hello"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 204, [], b""),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 304, [], b"hello"),
        (b"GET / HTTP/1.0\r\n\r\n", 200, [], b"hello"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, [], b"hello"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, [(b"Content-Length", b"5")], b"hello"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, [(b"Transfer-Encoding", b"chunked")], b"hi"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, [(b"Connection", b"close")], b"hi"),
    ],
)
def test_send_message_finishes_a_response_as_the_long_way_does(
    request_bytes: bytes, status: int, fields: HeaderList, body: bytes
) -> None:
    head = ResponseHead(status, b"X", b"1.1", fields)
    short, long = served_codec(request_bytes), served_codec(request_bytes)
    assert short.send_message(head, body) == long_way(long, head, body)
    assert state(short) == state(long)


@pytest.mark.parametrize(
    ("fields", "body"),
    [
        ([(b"Content-Length", b"4")], b"hello"),  # longer than declared
        ([(b"Content-Length", b"9")], b"hello"),  # shorter than declared
    ],
)
def test_send_message_still_refuses_a_body_that_does_not_fit_its_length(
    fields: HeaderList, body: bytes
) -> None:
    codec = served_codec(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(UserError):
        codec.send_message(ResponseHead(200, b"OK", b"1.1", fields), body)
    assert codec.our_state.name == "ERROR"


@pytest.mark.parametrize(
    ("method", "fields", "body"),
    [
        (b"GET", [(b"Host", b"a")], b""),
        (b"POST", [(b"Host", b"a")], b"data"),
        (b"POST", [(b"Host", b"a"), (b"Content-Length", b"4")], b"data"),
        (b"POST", [(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")], b"data"),
        (b"GET", [(b"Host", b"a"), (b"Connection", b"close")], b""),
    ],
)
def test_send_message_finishes_a_request_as_the_long_way_does(
    method: bytes, fields: HeaderList, body: bytes
) -> None:
    head = RequestHead(method, b"/", b"1.1", fields)
    short, long = NativeCodec(Role.CLIENT), NativeCodec(Role.CLIENT)
    assert short.send_message(head, body) == long_way(long, head, body)
    assert state(short) == state(long)


# -- the service's first step, run inline --------------------------------------------------


class _Later:
    """An awaitable that is not a coroutine, and suspends once before answering."""

    def __await__(self) -> Generator[Any, None, Response[Full]]:
        yield from anyio.lowlevel.checkpoint().__await__()
        return Response(200, body=Full(b"later"))


async def _sleepy(request: Request[Incoming]) -> Response[Full]:
    await anyio.lowlevel.checkpoint()
    return Response(200, body=Full(b"sleepy"))


async def _raises(request: Request[Incoming]) -> Response[Full]:
    raise RuntimeError("boom")


async def _exchange(service: Any, requests: int, body: bytes) -> tuple[bytes, BaseException | None]:
    server_io, client_io = memory_pipe()
    error: BaseException | None = None
    received = bytearray()
    async with server_io, client_io, anyio.create_task_group() as tg:

        async def run() -> None:
            nonlocal error
            try:
                await http1.Builder().serve_connection(server_io, service)
            except HyperError as exc:
                error = exc

        tg.start_soon(run)
        with anyio.fail_after(WAIT):
            await client_io.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * requests)
            # Every answer first (a client that leaves while a slow service
            # runs cancels it), then the end of the client's side.
            while body and received.count(body) < requests:
                received += await client_io.receive()
            await client_io.send_eof()
            while True:
                try:
                    received += await client_io.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return bytes(received), error


anyio_test = pytest.mark.anyio


@anyio_test
async def test_a_service_that_suspends_is_awaited_to_its_answer() -> None:
    received, error = await _exchange(_sleepy, 3, b"sleepy")
    assert error is None
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert received.endswith(b"sleepy")


@anyio_test
async def test_a_service_returning_a_plain_awaitable_is_served() -> None:
    received, error = await _exchange(lambda request: _Later(), 2, b"later")
    assert error is None
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert received.endswith(b"later")


@anyio_test
async def test_a_service_that_raises_at_its_first_step_gets_a_500() -> None:
    received, error = await _exchange(_raises, 1, b"")
    assert received.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert isinstance(error, UserError)
    assert isinstance(error.__cause__, RuntimeError)


async def _reads(request: Request[Incoming]) -> Response[Full]:
    # Reads all of the body, its first frame, or nothing, then answers what it read.
    want = {"/all": None, "/part": 1, "/none": 0}[request.uri.path]
    data = b""
    while want is None or len(data) < want:
        frame = await request.body.frame()
        if frame is None:
            break
        if frame.data_ref is not None:
            data += frame.data_ref
    return Response(200, body=Full(request.uri.path.encode() + b"=" + data + b";"))


@anyio_test
async def test_answers_to_requests_with_bodies_keep_the_connection_in_step() -> None:
    # The plain answer to a request whose body was read to its end parses the
    # body's end itself; bodies read in part or not at all are drained by the
    # general path. Pipelined, every request still gets its own answer.
    server_io, client_io = memory_pipe()
    requests = (
        b"POST /all HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello"
        b"POST /part HTTP/1.1\r\nhost: a\r\ncontent-length: 6\r\n\r\nabcdef"
        b"POST /all HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
        b"POST /none HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n\r\nskip"
        b"POST /all HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n"
        b"GET /all HTTP/1.1\r\nhost: a\r\n\r\n"
    )
    expected = [b"/all=hello;", b"/part=abc;", b"/all=xyz;", b"/none=;", b"/all=;", b"/all=;"]
    received = b""
    async with server_io, client_io, anyio.create_task_group() as tg:

        async def run() -> None:
            await http1.Builder().serve_connection(server_io, _reads)

        tg.start_soon(run)
        with anyio.fail_after(WAIT):
            # The first body comes late, the second in two pieces.
            first, second = requests.index(b"hello") + 3, requests.index(b"abcdef") + 3
            for piece in (requests[:first], requests[first:second], requests[second:]):
                await client_io.send(piece)
                await anyio.sleep(0.01)
            while received.count(b"HTTP/1.1 200 OK\r\n") < len(expected) or not received.endswith(
                expected[-1]
            ):
                received += await client_io.receive()
            await client_io.send_eof()
    bodies = [part.rpartition(b"\r\n\r\n")[2] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == expected


# -- the plain answer against _answer ------------------------------------------------

# Each request asks the server to close after its answer, so the whole
# answer is what the client reads up to the end of the stream.
_ANSWERS: list[tuple[bytes, Callable[[], Response[Any]]]] = [
    (b"GET / HTTP/1.1", lambda: Response(200, body=Full(b"hello"))),
    (b"GET / HTTP/1.1", lambda: Response(200)),  # Empty
    (b"GET / HTTP/1.1", lambda: Response(404, headers={"x-a": "1"}, body=Full(b"no"))),
    (b"HEAD / HTTP/1.1", lambda: Response(200, body=Full(b"hello"))),
    (b"GET / HTTP/1.1", lambda: Response(204)),
    (b"GET / HTTP/1.1", lambda: Response(304, body=Full(b"cached"))),
    (b"GET / HTTP/1.0", lambda: Response(200, body=Full(b"old"))),
    (b"GET / HTTP/1.1", lambda: Response(200, headers={"connection": "close"})),
    (b"GET / HTTP/1.1", lambda: Response(200, body=Full(b"z" * 70_000))),  # > WRITE_CHUNK
    (b"GET / HTTP/1.1", lambda: Response(200, body=Full(b"x"), version=Version.HTTP_10)),
    (
        b"POST / HTTP/1.1\r\nContent-Length: 3",
        lambda: Response(201, headers={"transfer-encoding": "chunked"}, body=Full(b"made")),
    ),
]


async def _wire(head: bytes, answer: Response[Any], *, suspend: bool) -> bytes:
    """What the server writes, to its end, for ``head`` answered with ``answer``."""

    async def service(request: Request[Incoming]) -> Response[Any]:
        if suspend:  # a service that suspends is answered by _answer
            await anyio.lowlevel.checkpoint()
        await collect(request.body)
        return answer

    request = head + b"\r\nHost: a\r\nConnection: close\r\n\r\n"
    if b"Content-Length: 3" in head:
        request += b"abc"
    server_io, client_io = memory_pipe()
    received = bytearray()
    async with server_io, client_io, anyio.create_task_group() as tg:

        async def run() -> None:
            await http1.Builder(auto_date_header=False).serve_connection(server_io, service)

        tg.start_soon(run)
        with anyio.fail_after(WAIT):
            await client_io.send(request)
            while True:
                try:
                    received += await client_io.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return bytes(received)


@anyio_test
@pytest.mark.parametrize(("head", "answer"), _ANSWERS)
async def test_the_plain_answer_writes_what_the_general_path_writes(
    head: bytes, answer: Callable[[], Response[Any]]
) -> None:
    plain = await _wire(head, answer(), suspend=False)
    general = await _wire(head, answer(), suspend=True)
    assert plain.startswith(b"HTTP/1.")
    assert plain == general
