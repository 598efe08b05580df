"""Robustness: malformed and truncated responses against our HTTP/1 client.

Each row of ``CASES`` is a reply from a hostile or broken server, the error
class the client must raise for it, and where: from ``send_request``
("head") or while reading the body ("body"). For every row the test also
checks that the error is a :class:`~hyper_core.error.HyperError` (nothing
from a parser or runtime leaks), that a body cut short is never passed off
as complete, that the connection is closed afterwards (``is_closed()``,
``ready()`` raising ``ClosedError`` with the error as its cause) and that
the connection task ended without raising.

Transport: the server side is raw bytes over an in-memory pipe and over a
real loopback TCP socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute, SocketListener

from hyper_core.body import Incoming
from hyper_core.client.conn import http1
from hyper_core.error import ClosedError, HyperError, IncompleteMessageError, ParseError
from hyper_core.http import Request, Response
from hyper_core.testing import memory_pipe

pytestmark = pytest.mark.anyio

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


class Case(NamedTuple):
    reply: bytes
    error: type[HyperError]
    where: str  # "head": send_request raises; "body": reading the body raises
    status_hint: int | None = None  # checked when given (431: hyper's is_parse_too_large)


CASES: dict[str, Case] = {
    # -- status line --
    "version_not_http": Case(b"HEAT/1.1 200 OK\r\n\r\n", ParseError, "head"),
    "version_2_0": Case(b"HTTP/2.0 200 OK\r\n\r\n", ParseError, "head"),
    "version_lowercase": Case(b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ParseError, "head"),
    "http09_no_status_line": Case(b"hello world\r\n\r\n", ParseError, "head"),
    "status_out_of_range_001": Case(b"HTTP/1.1 001 OK\r\n\r\n", ParseError, "head"),
    "status_one_digit": Case(b"HTTP/1.1 1 OK\r\n\r\n", ParseError, "head"),
    "status_two_digits": Case(b"HTTP/1.1 20 OK\r\n\r\n", ParseError, "head"),
    "status_four_digits": Case(b"HTTP/1.1 2000 OK\r\n\r\n", ParseError, "head"),
    "status_not_digits": Case(b"HTTP/1.1 abc OK\r\n\r\n", ParseError, "head"),
    "status_no_space": Case(b"HTTP/1.1200 OK\r\n\r\n", ParseError, "head"),
    "reason_control_char": Case(
        b"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "switching_protocols_unasked": Case(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", ParseError, "head"
    ),
    # -- header fields --
    "bare_lf_line_endings": Case(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", ParseError, "head"),
    "bare_cr_in_value": Case(
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "nul_in_value": Case(
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "control_char_in_value": Case(
        b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "line_without_colon": Case(
        b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "space_before_colon": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", ParseError, "head"
    ),
    "empty_name": Case(
        b"HTTP/1.1 200 OK\r\n: nothing\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "invalid_name_char": Case(
        b"HTTP/1.1 200 OK\r\nBad[Name]: x\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "obs_fold_not_allowed": Case(
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", ParseError, "head"
    ),
    "too_many_headers": Case(
        b"HTTP/1.1 200 OK\r\n"
        + b"".join(b"X-%d: v\r\n" % i for i in range(101))
        + b"Content-Length: 0\r\n\r\n",
        ParseError,
        "head",
        431,
    ),
    "head_too_large": Case(
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 500_000 + b"\r\n\r\n", ParseError, "head", 431
    ),
    # -- framing (RFC 9112 section 6.3): ambiguity is rejected, never guessed --
    "content_length_letters": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", ParseError, "head"
    ),
    "content_length_negative": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ParseError, "head"
    ),
    "content_length_plus_sign": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", ParseError, "head"
    ),
    "content_length_conflicting_fields": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ParseError,
        "head",
    ),
    "content_length_conflicting_list": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3,4\r\n\r\nabcd", ParseError, "head"
    ),
    "transfer_encoding_in_http10": Case(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ParseError, "head"
    ),
    "chunked_applied_twice": Case(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        ParseError,
        "head",
    ),
    # -- chunked body --
    "chunk_size_not_hex": Case(CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", ParseError, "body"),
    "chunk_size_missing": Case(CHUNKED + b"\r\nhello\r\n0\r\n\r\n", ParseError, "body"),
    "chunk_size_overflow": Case(
        CHUNKED + b"f0000000000000003\r\nabc\r\n0\r\n\r\n", ParseError, "body"
    ),
    "chunk_data_without_crlf": Case(CHUNKED + b"5\r\nhelloXX0\r\n\r\n", ParseError, "body"),
    "chunk_size_bare_lf": Case(CHUNKED + b"5\nhello\r\n0\r\n\r\n", ParseError, "body"),
    "chunk_extension_bare_lf": Case(CHUNKED + b"5;a\nb\r\nhello\r\n0\r\n\r\n", ParseError, "body"),
    "chunk_extensions_over_16k": Case(
        CHUNKED + b"5;" + b"a" * 17_000 + b"\r\nhello\r\n0\r\n\r\n", ParseError, "body"
    ),
    "trailers_over_16k": Case(
        CHUNKED + b"0\r\nX: " + b"a" * 17_000 + b"\r\n\r\n", ParseError, "body", 431
    ),
    "trailer_without_colon": Case(CHUNKED + b"0\r\nnocolon\r\n\r\n", ParseError, "body"),
    # -- cut short: the server closes mid-message --
    "eof_before_any_byte": Case(b"", IncompleteMessageError, "head"),
    "eof_in_status_line": Case(b"HTTP/1.1 20", IncompleteMessageError, "head"),
    "eof_in_header_block": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", IncompleteMessageError, "head"
    ),
    "eof_after_100_continue": Case(
        b"HTTP/1.1 100 Continue\r\n\r\n", IncompleteMessageError, "head"
    ),
    "eof_before_content_length_body": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", IncompleteMessageError, "body"
    ),
    "eof_in_content_length_body": Case(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", IncompleteMessageError, "body"
    ),
    "eof_in_chunk_data": Case(CHUNKED + b"5\r\nhel", IncompleteMessageError, "body"),
    "eof_before_chunk_crlf": Case(CHUNKED + b"5\r\nhello", IncompleteMessageError, "body"),
    "eof_before_last_chunk": Case(CHUNKED + b"5\r\nhello\r\n", IncompleteMessageError, "body"),
    "eof_in_last_chunk_size": Case(CHUNKED + b"5\r\nhello\r\n0", IncompleteMessageError, "body"),
    "eof_before_end_of_trailers": Case(
        CHUNKED + b"5\r\nhello\r\n0\r\n", IncompleteMessageError, "body"
    ),
    "eof_in_trailer_field": Case(CHUNKED + b"0\r\nX-T: 1\r\n", IncompleteMessageError, "body"),
}


@asynccontextmanager
async def transport_pair(kind: str) -> AsyncIterator[tuple[ByteStream, ByteStream]]:
    if kind == "memory":
        client, server = memory_pipe()
        async with client, server:
            yield client, server
        return
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as listener:
        port = listener.extra(SocketAttribute.local_port)
        tcp_client = await anyio.connect_tcp("127.0.0.1", port)
        accepting = listener.listeners[0]
        assert isinstance(accepting, SocketListener)
        tcp_server = await accepting.accept()
        async with tcp_client, tcp_server:
            yield tcp_client, tcp_server


async def fake_server(stream: ByteStream, reply: bytes) -> None:
    received = b""
    while b"\r\n\r\n" not in received:
        received += await stream.receive()
    try:
        await stream.send(reply)
        await stream.send_eof()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the client gave up on the reply midway, as it should on a bad head


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert {case.error for case in CASES.values()} == {ParseError, IncompleteMessageError}


@pytest.mark.parametrize("kind", ["memory", "tcp"])
@pytest.mark.parametrize("name", list(CASES))
async def test_malformed_response(name: str, kind: str) -> None:
    case = CASES[name]
    served = anyio.Event()
    async with transport_pair(kind) as (client_io, server_io):
        sender, connection = await http1.handshake(client_io)

        async def drive() -> None:
            await connection  # must not raise: the error belongs to the request
            served.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(drive)
                tg.start_soon(fake_server, server_io, case.reply)
                received = bytearray()

                async def exchange() -> None:
                    response: Response[Incoming] = await sender.send_request(Request("GET", "/"))
                    assert case.where == "body", f"the head was accepted: {response!r}"
                    async for chunk in response.body:
                        received.extend(chunk)

                with pytest.raises(HyperError) as info:
                    await exchange()
                error = info.value
                assert type(error) is case.error, repr(error)
                if case.where == "body":
                    # What was delivered is a strict prefix, never the whole message.
                    assert bytes(received) in (b"", b"hel", b"hello")
                if case.status_hint is not None:
                    assert isinstance(error, ParseError)
                    assert error.status_hint == case.status_hint
                await served.wait()
                assert sender.is_closed()
                with pytest.raises(ClosedError) as closed:
                    await sender.ready()
                assert closed.value.__cause__ is error
