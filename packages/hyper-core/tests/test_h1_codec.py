"""The HTTP/1 codec seam (``hyper_core.proto.h1``): bytes in, events out, and back.

What belongs here: tests of the sans-I/O codec alone, for both roles, with no
socket and no event loop: parsing (including every hostile-input check the
codec adds to h11's grammar), the framing rules applied on send, and the
state machine. Any future codec behind the seam must pass this file.

Strategy: each test feeds bytes to a codec made by ``new_codec`` and checks
the events, the bytes produced, and the states; a few hypothesis properties
check that what our client codec writes our server codec reads back the
same, and that arbitrary bytes never raise anything but the codec's errors.
Every test runs on each implementation behind the seam (the ``codec_impl``
fixture: ``native`` and ``h11``). Where h11 cannot do what hyper does (the
differences listed in ``_h11_codec.py``), the test states the expected
result for each codec explicitly.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hyper_core.error import IncompleteMessageError, ParseError, UserError
from hyper_core.proto._date import date_line, http_date
from hyper_core.proto.h1 import (
    NEED_DATA,
    PAUSED,
    Codec,
    CodecState,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    RequestHead,
    ResponseHead,
    Role,
    Sentinel,
    new_codec,
)
from hyper_core.proto.h1._codec import IMPLS


@pytest.fixture(params=IMPLS)
def codec_impl(request: pytest.FixtureRequest) -> str:
    """Each seam test runs on every codec behind the seam."""
    impl: str = request.param
    return impl


def server(impl: str, **options: object) -> Codec:
    return new_codec(Role.SERVER, impl=impl, **options)  # type: ignore[arg-type]


def client(impl: str, **options: object) -> Codec:
    return new_codec(Role.CLIENT, impl=impl, **options)  # type: ignore[arg-type]


def events(codec: Codec, data: bytes = b"") -> list[Event | Sentinel]:
    """Feed ``data`` and collect events up to NEED_DATA / PAUSED (included)."""
    if data:
        codec.receive_data(data)
    out: list[Event | Sentinel] = []
    for _ in range(1000):
        event = codec.next_event()
        out.append(event)
        if isinstance(event, (Sentinel, ConnectionClosed)):
            return out
    raise AssertionError("no NEED_DATA after 1000 events")


def body(evs: list[Event | Sentinel]) -> bytes:
    return b"".join(e.data for e in evs if isinstance(e, Data))


def waiting_100(codec: Codec) -> bool:
    # A call, not the property: mypy would keep a narrowed property value
    # across the calls that change it.
    return codec.they_are_waiting_for_100_continue


def their(codec: Codec) -> CodecState:
    return codec.their_state


def parse_error(codec: Codec, data: bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        events(codec, data)
    assert codec.their_state is CodecState.ERROR
    return info.value


def req(*lines: bytes, body: bytes = b"", start: bytes = b"GET / HTTP/1.1") -> bytes:
    return b"".join(x + b"\r\n" for x in (start, *lines)) + b"\r\n" + body


HOST = b"Host: a.test"
HOST_PAIR = (b"Host", b"a")
CHUNKED_POST = req(HOST, b"Transfer-Encoding: chunked", start=b"POST / HTTP/1.1")


# -- server: parsing requests ---------------------------------------------------


def test_simple_get_and_states(codec_impl: str) -> None:
    codec = server(codec_impl)
    evs = events(codec, req(HOST, b"User-Agent: t"))
    head = evs[0]
    assert isinstance(head, RequestHead)
    assert (head.method, head.target, head.version) == (b"GET", b"/", b"1.1")
    assert head.headers == [(b"Host", b"a.test"), (b"User-Agent", b"t")]
    assert isinstance(evs[1], EndOfMessage)
    assert evs[2] is NEED_DATA
    assert codec.their_state is CodecState.DONE
    assert codec.our_state is CodecState.SEND_RESPONSE
    assert codec.keep_alive


def test_head_split_across_reads(codec_impl: str) -> None:
    codec = server(codec_impl)
    data = req(HOST, b"X: 1", body=b"")
    for i in range(len(data) - 1):
        codec.receive_data(data[i : i + 1])
        assert codec.next_event() is NEED_DATA
    codec.receive_data(data[-1:])
    assert isinstance(codec.next_event(), RequestHead)


def next_target(codec: Codec) -> bytes:
    """Answer the request in progress, start the next cycle, and parse the next head's target."""
    codec.send_message(ResponseHead(200, b"OK", b"1.1", []), b"")
    codec.start_next_cycle()
    head = codec.next_event()
    assert isinstance(head, RequestHead)
    return head.target


def test_pipelined_requests_pause_until_next_cycle(codec_impl: str) -> None:
    codec = server(codec_impl)
    evs = events(codec, req(HOST, start=b"GET /a HTTP/1.1") + req(HOST, start=b"GET /b HTTP/1.1"))
    assert evs[-1] is PAUSED
    assert next_target(codec) == b"/b"


def test_leading_empty_lines_are_ignored(codec_impl: str) -> None:
    head = events(server(codec_impl), b"\r\n\r\n" + req(HOST))[0]
    assert isinstance(head, RequestHead)


def test_content_length_body_in_pieces(codec_impl: str) -> None:
    codec = server(codec_impl)
    evs = events(codec, req(HOST, b"Content-Length: 10", start=b"POST / HTTP/1.1", body=b"12345"))
    assert codec.their_body_length == 5
    assert body(evs) == b"12345"
    evs = events(codec, b"67890")
    assert body(evs) == b"67890"
    assert isinstance(evs[-2], EndOfMessage)


def test_request_with_its_whole_body_in_one_read(codec_impl: str) -> None:
    payload = bytes(range(256)) * 64  # 16 KiB, every byte value
    codec = server(codec_impl)
    evs = events(
        codec, req(HOST, b"Content-Length: 16384", start=b"POST /u HTTP/1.1", body=payload)
    )
    assert isinstance(evs[0], RequestHead)
    assert evs[0].target == b"/u"
    assert body(evs) == payload
    assert isinstance(evs[-2], EndOfMessage)
    assert evs[-1] is NEED_DATA
    assert codec.their_state is CodecState.DONE


def test_a_second_read_before_the_first_is_parsed(codec_impl: str) -> None:
    data = req(HOST, b"Content-Length: 6", start=b"POST / HTTP/1.1", body=b"abcdef")
    for cut in (5, len(data) - 8, len(data) - 3):
        codec = server(codec_impl)
        codec.receive_data(data[:cut])
        codec.receive_data(data[cut:])
        evs = events(codec)
        assert isinstance(evs[0], RequestHead)
        assert body(evs) == b"abcdef"
        assert isinstance(evs[-2], EndOfMessage)


def test_body_and_the_next_request_in_one_read(codec_impl: str) -> None:
    post = req(HOST, b"Content-Length: 5", start=b"POST /a HTTP/1.1", body=b"12345")
    codec = server(codec_impl)
    evs = events(codec, post + req(HOST, start=b"GET /b HTTP/1.1"))
    assert body(evs) == b"12345"
    assert isinstance(evs[-2], EndOfMessage)
    assert evs[-1] is PAUSED
    assert next_target(codec) == b"/b"


def test_a_read_not_yet_parsed_is_trailing_data(codec_impl: str) -> None:
    codec = server(codec_impl)
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert codec.input_pending
    assert codec.trailing_data == (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", False)
    assert isinstance(codec.next_event(), RequestHead)
    assert not codec.input_pending


def test_bytes_after_a_bad_head_stay_buffered(codec_impl: str) -> None:
    codec = server(codec_impl)
    parse_error(codec, b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\nAFTER")
    assert codec.trailing_data[0].endswith(b"AFTER")


def test_chunked_body_with_extensions_and_trailers(codec_impl: str) -> None:
    codec = server(codec_impl)
    evs = events(
        codec,
        req(HOST, b"Transfer-Encoding: chunked", start=b"POST / HTTP/1.1")
        + b'5;name=value\r\nhello\r\n6;x;y="q"\r\n world\r\n0\r\nX-Sum: 1\r\nX-Sum: 2\r\n\r\n',
    )
    assert body(evs) == b"hello world"
    end = evs[-2]
    assert isinstance(end, EndOfMessage)
    assert end.trailers == [(b"X-Sum", b"1"), (b"X-Sum", b"2")]
    assert codec.their_body_length == 0


def test_whitespace_before_a_chunk_extension(codec_impl: str) -> None:
    # RFC 9112 section 7.1.1 allows BWS before ";" (hyper too), but h11 and
    # llhttp both refuse it: two parsers must not frame it differently.
    data = CHUNKED_POST + b"5 ; x\r\nhello\r\n0\r\n\r\n"
    assert "chunk size" in str(parse_error(server(codec_impl), data))


def test_chunked_upper_and_lower_hex(codec_impl: str) -> None:
    evs = events(
        server(codec_impl),
        req(HOST, b"Transfer-Encoding: chunked", start=b"POST / HTTP/1.1")
        + b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
    )
    assert body(evs) == b"0123456789abcdefghij"


def test_cl_and_te_uses_chunked_removes_length_and_closes(codec_impl: str) -> None:
    codec = server(codec_impl)
    evs = events(
        codec,
        req(HOST, b"Content-Length: 3", b"Transfer-Encoding: chunked", start=b"POST / HTTP/1.1")
        + b"5\r\nhello\r\n0\r\n\r\n",
    )
    head = evs[0]
    assert isinstance(head, RequestHead)
    assert [n for n, _ in head.headers] == [b"Host", b"Transfer-Encoding"]
    assert body(evs) == b"hello"
    assert not codec.keep_alive
    response = codec.send_message(ResponseHead(200, b"OK", b"1.1", []), b"")
    assert b"connection: close\r\n" in response
    assert codec.our_state is CodecState.MUST_CLOSE


def test_duplicate_equal_content_length_is_kept_once(codec_impl: str) -> None:
    head = events(
        server(codec_impl),
        req(HOST, b"Content-Length: 2", b"Content-Length: 2", start=b"POST / HTTP/1.1", body=b"ab"),
    )[0]
    assert isinstance(head, RequestHead)
    assert [n for n, _ in head.headers].count(b"Content-Length") == 1


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        ((b"Content-Length: 1", b"Content-Length: 2"), 400),
        ((b"Content-Length: +5",), 400),
        ((b"Content-Length: 3,3",), 400),
        ((b"Content-Length: -1",), 400),
        ((b"Content-Length: 18446744073709551616",), 400),
        ((b"Transfer-Encoding: gzip",), 400),
        ((b"Transfer-Encoding: chunked, gzip",), 400),
        ((b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"), 400),
        ((b"Transfer-Encoding: chunked, chunked",), 400),
        ((b"Transfer-Encoding: gzip, chunked",), 501),
        ((b"Transfer-Encoding:",), 400),
    ],
)
def test_bad_framing_fields(codec_impl: str, lines: tuple[bytes, ...], status: int) -> None:
    error = parse_error(server(codec_impl), req(HOST, *lines, start=b"POST / HTTP/1.1"))
    assert error.status_hint == status


def test_transfer_encoding_on_http10_is_rejected(codec_impl: str) -> None:
    error = parse_error(
        server(codec_impl), req(b"Transfer-Encoding: chunked", start=b"POST / HTTP/1.0")
    )
    assert error.status_hint == 400


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (req(HOST, b"X: a", b" folded"), "folding"),
        (req(HOST, b"X : a"), "whitespace"),
        (req(HOST, b"X: a\x00b"), "NUL"),
        (req(HOST, b"X: a\rb"), "CR"),
        (req(HOST, b"X: a\x01b"), "control"),
        (req(HOST, b": a"), "empty"),
        (req(HOST, b"X(: a"), "invalid character"),
        (req(HOST, b"no colon"), "colon"),
        (b"GET / HTTP/1.1\nHost: a\n\n", "bare LF"),
        (b"GET / HTTP/1.1\r\nHost: a\n\n", "bare LF"),
    ],
)
def test_malformed_fields(codec_impl: str, data: bytes, fragment: str) -> None:
    error = parse_error(server(codec_impl), data)
    assert error.status_hint == 400
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GE T / HTTP/1.1\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (req(HOST, b"Host: b.test"), 400),
        (req(b"Host: a b"), 400),
        (req(HOST, start=b"GET a HTTP/1.1"), 400),
        (req(HOST, start=b"GET * HTTP/1.1"), 400),
        (req(HOST, start=b"CONNECT / HTTP/1.1"), 400),
        (req(HOST, start=b"CONNECT a.test HTTP/1.1"), 400),
    ],
)
def test_bad_request_lines(codec_impl: str, data: bytes, status: int) -> None:
    assert parse_error(server(codec_impl), data).status_hint == status


@pytest.mark.parametrize(
    "start",
    [b"OPTIONS * HTTP/1.1", b"CONNECT a.test:443 HTTP/1.1", b"GET http://a.test/x?y HTTP/1.1"],
)
def test_other_target_forms(codec_impl: str, start: bytes) -> None:
    head = events(server(codec_impl), req(HOST, start=start))[0]
    assert isinstance(head, RequestHead)


def test_http10_needs_no_host(codec_impl: str) -> None:
    codec = server(codec_impl)
    head = events(codec, b"GET / HTTP/1.0\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    assert not codec.keep_alive


def test_http10_keep_alive_is_honoured(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    out = codec.send_message(ResponseHead(200, b"OK", b"1.1", []), b"")
    if codec_impl == "native":
        assert out == b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
        assert codec.keep_alive
        codec.start_next_cycle()
    else:
        # h11 keeps no HTTP/1.0 connection alive and answers in HTTP/1.1.
        assert out == b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nConnection: close\r\n\r\n"
        assert not codec.keep_alive
        assert codec.our_state is CodecState.MUST_CLOSE


def test_http2_preface_is_closed_without_an_answer(codec_impl: str) -> None:
    error = parse_error(server(codec_impl), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert error.status_hint is None


def test_limits_give_431_and_414(codec_impl: str) -> None:
    assert (
        parse_error(
            server(codec_impl, max_headers=3), req(HOST, b"A: 1", b"B: 2", b"C: 3")
        ).status_hint
        == 431
    )
    assert (
        parse_error(
            server(codec_impl, max_buf_size=8192), req(HOST, b"X: " + b"a" * 9000)
        ).status_hint
        == 431
    )
    # Incomplete but already too big: refused before the end arrives.
    assert (
        parse_error(server(codec_impl, max_buf_size=8192), b"GET /" + b"a" * 9000).status_hint
        == 431
    )
    assert (
        parse_error(
            server(codec_impl), req(HOST, start=b"GET /" + b"a" * 65534 + b" HTTP/1.1")
        ).status_hint
        == 414
    )
    assert parse_error(server(codec_impl), req(HOST, b"x" * 65536 + b": y")).status_hint == 431


def test_uri_at_the_limit_is_accepted(codec_impl: str) -> None:
    head = events(server(codec_impl), req(HOST, start=b"GET /" + b"a" * 65533 + b" HTTP/1.1"))[0]
    assert isinstance(head, RequestHead)


@pytest.mark.parametrize(
    ("chunks", "fragment"),
    [
        (b"f0000000000000003\r\nabc\r\n0\r\n\r\n", "overflow"),
        (b"zz\r\n", "chunk size"),
        (b"\r\n", "chunk size"),
        (b"5\r\nhelloXY0\r\n\r\n", "CRLF"),
        (b"5\r\nhello\n0\r\n\r\n", "CRLF"),
        (b"5;a\nb\r\nhello\r\n0\r\n\r\n", "chunk size"),
        (b"5;" + b"e" * 16_400 + b"\r\nhello\r\n0\r\n\r\n", "16 KiB"),
    ],
)
def test_bad_chunks(codec_impl: str, chunks: bytes, fragment: str) -> None:
    error = parse_error(server(codec_impl), CHUNKED_POST + chunks)
    assert fragment in str(error)


def test_chunk_extensions_count_over_the_whole_body(codec_impl: str) -> None:
    one = b"1;" + b"e" * 9000 + b"\r\nx\r\n"
    error = parse_error(server(codec_impl), CHUNKED_POST + one + one)
    assert "16 KiB" in str(error)


def test_trailer_limits(codec_impl: str) -> None:
    many = b"".join(b"T%d: v\r\n" % i for i in range(5))
    assert (
        parse_error(
            server(codec_impl, max_headers=3), CHUNKED_POST + b"0\r\n" + many + b"\r\n"
        ).status_hint
        == 431
    )
    big = b"T: " + b"v" * 17_000 + b"\r\n\r\n"
    assert parse_error(server(codec_impl), CHUNKED_POST + b"0\r\n" + big).status_hint == 431


def test_eof_handling(codec_impl: str) -> None:
    idle = server(codec_impl)
    idle.receive_data(b"")
    assert isinstance(idle.next_event(), ConnectionClosed)
    assert idle.their_state is CodecState.CLOSED

    partial = server(codec_impl)
    partial.receive_data(b"GET / HTTP/1.1\r\n")
    partial.receive_data(b"")
    with pytest.raises(IncompleteMessageError):
        partial.next_event()

    mid_body = server(codec_impl)
    events(mid_body, req(HOST, b"Content-Length: 5", start=b"POST / HTTP/1.1", body=b"ab"))
    mid_body.receive_data(b"")
    with pytest.raises(IncompleteMessageError):
        mid_body.next_event()
    assert mid_body.their_state is CodecState.ERROR


def test_expect_continue_flags(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(
        codec, req(HOST, b"Expect: 100-Continue", b"Content-Length: 5", start=b"POST / HTTP/1.1")
    )
    assert waiting_100(codec)
    assert codec.send_informational(ResponseHead(100, b"Continue", b"1.1", [])) == (
        b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    assert not waiting_100(codec)

    for data in (
        req(HOST, b"Expect: 100-continue"),  # no body
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    ):
        other = server(codec_impl)
        events(other, data)
        assert not other.they_are_waiting_for_100_continue


def test_upgrade_states(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, req(HOST, b"Upgrade: ws", b"Connection: upgrade") + b"first bytes")
    assert codec.upgrade_requested
    assert their(codec) is CodecState.MIGHT_SWITCH_PROTOCOL
    out = codec.send_message(
        ResponseHead(101, b"Switching Protocols", b"1.1", [(b"Upgrade", b"ws")]), b""
    )
    assert b"content-length" not in out
    assert codec.our_state is CodecState.SWITCHED_PROTOCOL
    assert their(codec) is CodecState.SWITCHED_PROTOCOL
    assert codec.trailing_data == (b"first bytes", False)
    assert codec.next_event() is PAUSED

    declined = server(codec_impl)
    events(declined, req(HOST, b"Upgrade: ws"))
    declined.send_message(ResponseHead(200, b"OK", b"1.1", []), b"")
    assert declined.their_state is CodecState.DONE
    declined.start_next_cycle()

    http10 = server(codec_impl)
    events(http10, req(b"Upgrade: ws", start=b"GET / HTTP/1.0"))
    assert not http10.upgrade_requested


def test_101_without_an_upgrade_request_is_a_user_error(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, req(HOST))
    with pytest.raises(UserError):
        codec.send_head(ResponseHead(101, b"Switching Protocols", b"1.1", []))


# -- server: encoding responses ---------------------------------------------------


def answered(
    impl: str, request: bytes, head: ResponseHead, body: bytes = b"", **options: object
) -> bytes:
    codec = server(impl, **options)
    events(codec, request)
    return codec.send_message(head, body)


def ok(*fields: tuple[bytes, bytes], status: int = 200) -> ResponseHead:
    return ResponseHead(status, b"OK", b"1.1", list(fields))


def test_response_framing_rules(codec_impl: str) -> None:
    get = req(HOST)
    assert (
        answered(codec_impl, get, ok(), b"abc")
        == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"
    )
    assert answered(codec_impl, req(HOST, start=b"HEAD / HTTP/1.1"), ok(), b"abc") == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n"
    )
    # A response to HEAD with no length: hyper sends no framing field, h11
    # declares chunked (the framing a GET would have had).
    assert answered(codec_impl, req(HOST, start=b"HEAD / HTTP/1.1"), ok(), b"") == (
        b"HTTP/1.1 200 OK\r\n\r\n"
        if codec_impl == "native"
        else b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for status in (204, 304):
        out = answered(codec_impl, get, ok((b"Content-Length", b"3"), status=status), b"abc")
        assert out == b"HTTP/1.1 %d OK\r\n\r\n" % status
    out = answered(
        codec_impl, req(HOST, start=b"CONNECT a:1 HTTP/1.1"), ok((b"Content-Length", b"3")), b""
    )
    assert out == b"HTTP/1.1 200 OK\r\n\r\n"


def test_streamed_response_framing(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, req(HOST))
    # h11 rewrites the framing fields it manages, in Title-Case.
    te = b"transfer-encoding" if codec_impl == "native" else b"Transfer-Encoding"
    assert codec.send_head(ok(), None) == b"HTTP/1.1 200 OK\r\n%s: chunked\r\n\r\n" % te
    assert codec.send_data(b"") == []
    assert b"".join(codec.send_data(b"x" * 5000)) == b"1388\r\n" + b"x" * 5000 + b"\r\n"
    assert codec.send_end() == b"0\r\n\r\n"
    assert codec.our_state is CodecState.DONE

    old = server(codec_impl)
    events(old, b"GET / HTTP/1.0\r\n\r\n")
    assert old.send_head(ok((b"Transfer-Encoding", b"chunked")), None) == (
        b"HTTP/1.0 200 OK\r\nconnection: close\r\n\r\n"
        if codec_impl == "native"
        else b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"  # h11 answers 1.0 with 1.1
    )
    assert old.send_data(b"abc") == [b"abc"]
    assert old.send_end() == b""
    assert old.our_state is CodecState.MUST_CLOSE


def test_content_length_mismatch_is_a_user_error(codec_impl: str) -> None:
    longer = server(codec_impl)
    events(longer, req(HOST))
    with pytest.raises(UserError, match="longer than its Content-Length"):
        longer.send_message(ok((b"Content-Length", b"2")), b"abc")
    assert longer.our_state is CodecState.ERROR

    shorter = server(codec_impl)
    events(shorter, req(HOST))
    shorter.send_head(ok((b"Content-Length", b"5")), None)
    shorter.send_data(b"abc")
    with pytest.raises(UserError, match="shorter than its Content-Length"):
        shorter.send_end()
    assert shorter.our_state is CodecState.ERROR


def test_both_length_fields_from_the_user_is_an_error(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, req(HOST))
    with pytest.raises(UserError, match="both"):
        codec.send_head(ok((b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")))


def test_title_case_and_date(codec_impl: str) -> None:
    out = answered(
        codec_impl,
        req(HOST),
        ok((b"x-custom-thing", b"1")),
        b"",
        title_case_headers=True,
        auto_date_header=True,
    )
    assert out.startswith(b"HTTP/1.1 200 OK\r\nX-Custom-Thing: 1\r\nContent-Length: 0\r\nDate: ")
    assert http_date() in out
    user_date = answered(
        codec_impl, req(HOST), ok((b"Date", b"yesterday")), b"", auto_date_header=True
    )
    assert user_date.count(b"ate: ") == 1


def test_http_date_is_cached_and_well_formed() -> None:
    first = http_date()
    assert http_date() is first or http_date() == first
    assert len(first) == 29
    assert first.endswith(b" GMT")


def test_date_line_is_the_field_line_of_the_cached_date() -> None:
    value, line, title = http_date(), date_line(), date_line(title_case=True)
    for _ in range(3):  # a second boundary may pass between the calls: retry
        if http_date() == value:
            break
        value, line, title = http_date(), date_line(), date_line(title_case=True)
    assert line == b"date: " + value
    assert title == b"Date: " + value


def test_status_lines_follow_status_reason_and_version(codec_impl: str) -> None:
    # The status line is cached per status: another reason or version for
    # the same status must still be written as given.
    get, get10 = req(HOST), req(start=b"GET / HTTP/1.0")
    for _ in range(2):
        assert answered(codec_impl, get, ok()).startswith(b"HTTP/1.1 200 OK\r\n")
        cool = ResponseHead(200, b"Cool", b"1.1", [])
        assert answered(codec_impl, get, cool).startswith(b"HTTP/1.1 200 Cool\r\n")
        # h11 answers every request as HTTP/1.1; the native codec answers in kind.
        version = b"1.1" if codec_impl == "h11" else b"1.0"
        assert answered(codec_impl, get10, ok()).startswith(b"HTTP/%s 200 OK\r\n" % version)
        teapot = ResponseHead(418, b"I'm a teapot", b"1.1", [])
        assert answered(codec_impl, get, teapot).startswith(b"HTTP/1.1 418 I'm a teapot\r\n")
        empty = ResponseHead(599, b"", b"1.1", [])
        assert answered(codec_impl, get, empty).startswith(b"HTTP/1.1 599 \r\n")


def test_content_length_lines_for_many_lengths(codec_impl: str) -> None:
    # More lengths than the bounded cache of content-length lines holds.
    for length in (*range(0, 3000, 7), 13, 2**40):
        out = answered(codec_impl, req(HOST), ok(), b"x" * min(length, 64))
        assert b"content-length: %d\r\n" % min(length, 64) in out
    out = answered(codec_impl, req(HOST), ok(), b"abc", title_case_headers=True)
    assert b"\r\nContent-Length: 3\r\n" in out


def test_trailers_sent_only_when_declared_and_accepted(codec_impl: str) -> None:
    trailers = [(b"X-Sum", b"1"), (b"Host", b"no"), (b"X-Other", b"no")]
    accepting = server(codec_impl)
    events(accepting, req(HOST, b"TE: trailers"))
    accepting.send_head(ok((b"Trailer", b"x-sum")), None)
    assert accepting.send_end(trailers) == b"0\r\nX-Sum: 1\r\n\r\n"

    refusing = server(codec_impl)
    events(refusing, req(HOST))
    refusing.send_head(ok((b"Trailer", b"x-sum")), None)
    assert refusing.send_end(trailers) == b"0\r\n\r\n"


def test_error_response_after_a_parse_error(codec_impl: str) -> None:
    codec = server(codec_impl)
    with pytest.raises(ParseError):
        events(codec, b"GE T / HTTP/1.1\r\n\r\n")
    out = codec.send_message(ResponseHead(400, b"Bad Request", b"1.1", []), b"")
    assert out == b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def test_state_machine_refuses_misuse(codec_impl: str) -> None:
    early = server(codec_impl)
    with pytest.raises(UserError):
        early.send_head(ok())  # no request yet
    assert early.our_state is CodecState.ERROR
    assert not early.keep_alive

    codec = server(codec_impl)
    events(codec, req(HOST))
    with pytest.raises(UserError):
        codec.start_next_cycle()  # response not sent
    with pytest.raises(UserError):
        codec.send_head(RequestHead(b"GET", b"/", b"1.1", []))  # wrong role
    codec.send_failed()
    assert codec.our_state is CodecState.ERROR
    assert not codec.keep_alive
    with pytest.raises(UserError):
        codec.send_data(b"x")


def test_disable_keep_alive(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, req(HOST))
    codec.disable_keep_alive()
    assert b"connection: close" in codec.send_message(ok(), b"")
    assert codec.our_state is CodecState.MUST_CLOSE
    assert codec.their_state is CodecState.MUST_CLOSE


def test_max_buf_size_minimum(codec_impl: str) -> None:
    with pytest.raises(ValueError, match="8192"):
        server(codec_impl, max_buf_size=8191)


# -- client: encoding requests -------------------------------------------------------


def sent(impl: str, head: RequestHead, body_length: int | None) -> tuple[Codec, bytes]:
    codec = client(impl)
    return codec, codec.send_head(head, body_length)


def test_request_framing_rules(codec_impl: str) -> None:
    host = (b"Host", b"a")
    _, out = sent(codec_impl, RequestHead(b"GET", b"/", b"1.1", [host]), 0)
    assert out == b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    _, out = sent(codec_impl, RequestHead(b"GET", b"/", b"1.1", [host]), None)
    assert out == b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    _, out = sent(codec_impl, RequestHead(b"POST", b"/", b"1.1", [host]), 3)
    assert out == b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 3\r\n\r\n"
    codec, out = sent(codec_impl, RequestHead(b"POST", b"/", b"1.1", [host]), None)
    assert out == b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n"
    assert b"".join(codec.send_data(b"abc")) == b"3\r\nabc\r\n"
    assert codec.send_end() == b"0\r\n\r\n"
    _, out = sent(
        codec_impl,
        RequestHead(
            b"POST",
            b"/",
            b"1.1",
            [host, (b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")],
        ),
        3,
    )
    assert out == b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_request_transfer_coding_is_repaired_or_refused(codec_impl: str) -> None:
    head = RequestHead(
        b"POST", b"/", b"1.1", [HOST_PAIR, (b"TE-x", b"1"), (b"Transfer-Encoding", b"gzip")]
    )
    if codec_impl == "native":
        _, out = sent(codec_impl, head, None)
        assert b"Transfer-Encoding: gzip, chunked\r\n" in out
    else:
        # h11 knows no transfer coding but chunked.
        codec = client(codec_impl)
        with pytest.raises(UserError, match="chunked"):
            codec.send_head(head, None)
        assert codec.our_state is CodecState.ERROR


def test_http10_request(codec_impl: str) -> None:
    head = RequestHead(b"POST", b"/", b"1.0", [(b"Transfer-Encoding", b"chunked")])
    codec = client(codec_impl)
    if codec_impl == "native":
        assert codec.send_head(head, None) == b"POST / HTTP/1.0\r\n\r\n"
        assert not codec.our_body_allowed
    else:
        # h11 writes HTTP/1.1 requests only.
        with pytest.raises(UserError, match=r"HTTP/1\.1 requests only"):
            codec.send_head(head, None)
        assert codec.our_state is CodecState.ERROR


def test_http11_request_without_host(codec_impl: str) -> None:
    head = RequestHead(b"GET", b"/", b"1.1", [])
    codec = client(codec_impl)
    if codec_impl == "native":
        # hyper writes the request as given (the caller adds Host).
        assert codec.send_head(head, 0) == b"GET / HTTP/1.1\r\n\r\n"
    else:
        with pytest.raises(UserError, match="Host"):
            codec.send_head(head, 0)


def test_request_trailers_need_a_trailer_field(codec_impl: str) -> None:
    codec, _ = sent(
        codec_impl, RequestHead(b"POST", b"/", b"1.1", [HOST_PAIR, (b"Trailer", b"x-sum")]), None
    )
    assert codec.send_end([(b"X-Sum", b"1"), (b"X-No", b"2")]) == b"0\r\nX-Sum: 1\r\n\r\n"
    plain, _ = sent(codec_impl, RequestHead(b"POST", b"/", b"1.1", [HOST_PAIR]), None)
    assert plain.send_end([(b"X-Sum", b"1")]) == b"0\r\n\r\n"


# -- client: parsing responses ---------------------------------------------------------


def exchange(
    impl: str,
    response: bytes,
    method: bytes = b"GET",
    fields: list[tuple[bytes, bytes]] | None = None,
) -> tuple[Codec, list[Event | Sentinel]]:
    codec = client(impl)
    codec.send_head(RequestHead(method, b"/", b"1.1", fields or [(b"Host", b"a")]), 0)
    if codec.our_state is CodecState.SEND_BODY:
        codec.send_end()
    return codec, events(codec, response)


def test_informational_then_final_response(codec_impl: str) -> None:
    codec, evs = exchange(
        codec_impl,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    )
    statuses = [e.status for e in evs if isinstance(e, ResponseHead)]
    assert statuses == [100, 103, 200]
    assert body(evs) == b"hi"
    assert codec.their_state is CodecState.DONE
    codec.start_next_cycle()


@pytest.mark.parametrize(
    ("response", "method", "expected_body", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"HEAD", b"", False),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", b"GET", b"", True),
        (b"HTTP/1.1 304 Not Modified\r\n\r\n", b"GET", b"", True),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3,3\r\nContent-Length: 3\r\n\r\nabc",
            b"GET",
            b"abc",
            True,
        ),
    ],
)
def test_response_framing(
    codec_impl: str, response: bytes, method: bytes, expected_body: bytes, reusable: bool
) -> None:
    codec, evs = exchange(codec_impl, response, method)
    assert body(evs) == expected_body
    assert isinstance(evs[-2], EndOfMessage)
    if reusable:
        codec.start_next_cycle()
    else:
        # HEAD: the 5 bytes that followed were not asked for.
        with pytest.raises(ParseError):
            codec.start_next_cycle()


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
    ],
)
def test_close_delimited_responses(codec_impl: str, response: bytes) -> None:
    codec, evs = exchange(codec_impl, response)
    assert body(evs) == b"until the end"
    assert not codec.keep_alive
    codec.receive_data(b"")
    assert isinstance(codec.next_event(), EndOfMessage)
    assert codec.their_state is CodecState.MUST_CLOSE


@pytest.mark.parametrize(
    ("response", "native_body"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", b"ab"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: yolo\r\n\r\nuntil the end", b"until the end"),
    ],
)
def test_response_with_another_transfer_coding(
    codec_impl: str, response: bytes, native_body: bytes
) -> None:
    if codec_impl == "native":
        # hyper: chunked when it is the last coding, else read until close.
        codec, evs = exchange(codec_impl, response)
        codec.receive_data(b"")
        evs += events(codec)
        assert body(evs) == native_body
        assert any(isinstance(e, EndOfMessage) for e in evs)
    else:
        # h11 supports no transfer coding but chunked alone.
        codec = client(codec_impl)
        codec.send_head(RequestHead(b"GET", b"/", b"1.1", [HOST_PAIR]), 0)
        error = parse_error(codec, response)
        assert error.status_hint == 501
        assert "chunked" in str(error)


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3,4\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 001 Weird\r\n\r\n",
        b"HEAT/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nFold: a\r\n b\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
)
def test_malformed_responses(codec_impl: str, response: bytes) -> None:
    codec = client(codec_impl)
    codec.send_head(RequestHead(b"GET", b"/", b"1.1", [HOST_PAIR]), 0)
    with pytest.raises(ParseError):
        events(codec, response)
    assert codec.their_state is CodecState.ERROR


def test_too_large_response_head_hints_431(codec_impl: str) -> None:
    # The hint tells a client the kind of error too (hyper's is_parse_too_large).
    codec = client(codec_impl, max_headers=2)
    codec.send_head(RequestHead(b"GET", b"/", b"1.1", [HOST_PAIR]), 0)
    with pytest.raises(ParseError) as info:
        events(codec, b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
    assert info.value.status_hint == 431


def test_obs_fold_allowed_when_asked(codec_impl: str) -> None:
    codec = client(codec_impl, allow_obs_fold=True)
    codec.send_head(RequestHead(b"GET", b"/", b"1.1", [HOST_PAIR]), 0)
    head = events(
        codec, b"HTTP/1.1 200 OK\r\nFold: just\r\n some\r\n\t folding\r\nContent-Length: 0\r\n\r\n"
    )[0]
    assert isinstance(head, ResponseHead)
    assert head.headers[0] == (b"Fold", b"just some folding")


def test_response_cut_short_is_incomplete(codec_impl: str) -> None:
    codec, _ = exchange(codec_impl, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    codec.receive_data(b"")
    with pytest.raises(IncompleteMessageError):
        codec.next_event()
    chunked, _ = exchange(
        codec_impl, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    chunked.receive_data(b"")
    with pytest.raises(IncompleteMessageError):
        chunked.next_event()


def test_client_upgrades(codec_impl: str) -> None:
    codec, evs = exchange(
        codec_impl,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\nnew protocol",
        fields=[HOST_PAIR, (b"Upgrade", b"ws"), (b"Connection", b"upgrade")],
    )
    assert isinstance(evs[0], ResponseHead)
    assert evs[1] is PAUSED
    assert codec.their_state is CodecState.SWITCHED_PROTOCOL
    assert codec.our_state is CodecState.SWITCHED_PROTOCOL
    assert codec.trailing_data == (b"new protocol", False)

    tunnel, evs = exchange(codec_impl, b"HTTP/1.1 200 OK\r\n\r\ntunnel", method=b"CONNECT")
    assert tunnel.their_state is CodecState.SWITCHED_PROTOCOL
    assert tunnel.trailing_data[0] == b"tunnel"


def test_bytes_before_any_request_are_an_error(codec_impl: str) -> None:
    codec = client(codec_impl)
    codec.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(ParseError):
        codec.next_event()
    fresh = client(codec_impl)
    fresh.receive_data(b"surprise")
    with pytest.raises(ParseError):
        fresh.send_head(RequestHead(b"GET", b"/", b"1.1", [HOST_PAIR]), 0)


# -- properties ------------------------------------------------------------------------

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ;=,/", max_size=20).map(str.strip)


@pytest.mark.parametrize("codec_impl", IMPLS)
@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"X-CUSTOM"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-._~%", max_size=30),
    fields=st.lists(st.tuples(_token, _value), max_size=10),
    payload=st.binary(max_size=300),
    chunked=st.booleans(),
)
def test_client_to_server_round_trip(
    codec_impl: str,
    method: bytes,
    path: str,
    fields: list[tuple[str, str]],
    payload: bytes,
    chunked: bool,
) -> None:
    reserved = {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
    pairs = [(b"Host", b"a.test")] + [
        (n.encode(), v.encode()) for n, v in fields if n not in reserved
    ]
    sender = client(codec_impl)
    head = RequestHead(method, b"/" + path.encode(), b"1.1", pairs)
    wire = sender.send_head(head, None if chunked else len(payload))
    if sender.our_body_allowed:
        wire += b"".join(sender.send_data(payload)) + sender.send_end()
        expected = payload
    else:
        sender.send_end()
        expected = b""
    receiver = server(codec_impl)
    evs = events(receiver, wire)
    got = evs[0]
    assert isinstance(got, RequestHead)
    assert (got.method, got.target) == (head.method, head.target)
    assert [
        p for p in got.headers if p[0] not in (b"content-length", b"transfer-encoding")
    ] == pairs
    assert body(evs) == expected
    assert receiver.their_state is CodecState.DONE


@pytest.mark.parametrize("codec_impl", IMPLS)
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_arbitrary_bytes_only_raise_codec_errors(codec_impl: str, data: bytes, eof: bool) -> None:
    for codec in (server(codec_impl), client(codec_impl)):
        if codec.role is Role.CLIENT:
            codec.send_head(RequestHead(b"GET", b"/", b"1.1", [HOST_PAIR]), 0)
        try:
            codec.receive_data(
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n" + data
                if codec.role is Role.SERVER and data[:1] == b"!"
                else data
            )
            if eof:
                codec.receive_data(b"")
            events(codec)
        except (ParseError, IncompleteMessageError):
            assert codec.their_state is CodecState.ERROR


# -- h11 as an oracle ----------------------------------------------------------------

_wire_token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
    min_size=1,
    max_size=10,
)
_wire_value = st.binary(max_size=20).map(lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E))


@pytest.mark.parametrize("codec_impl", IMPLS)
@settings(max_examples=300, deadline=None)
@given(
    target=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-._~%?=&", max_size=30),
    fields=st.lists(st.tuples(_wire_token, _wire_value), max_size=8),
    payload=st.binary(max_size=200),
    chunk=st.integers(min_value=1, max_value=64),
    chunked=st.booleans(),
)
def test_requests_parse_as_h11_parses_them(
    codec_impl: str,
    target: str,
    fields: list[tuple[str, bytes]],
    payload: bytes,
    chunk: int,
    chunked: bool,
) -> None:
    import h11

    skip = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te"}
    pairs = [(n.encode(), v) for n, v in fields if n.lower() not in skip]
    framing = (
        [(b"Transfer-Encoding", b"chunked")]
        if chunked
        else [(b"Content-Length", b"%d" % len(payload))]
    )
    head = [(b"Host", b"a.test"), *pairs, *framing]
    if chunked:
        pieces = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
        wire_body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        wire_body = payload
    wire = (
        b"POST /"
        + target.encode()
        + b" HTTP/1.1\r\n"
        + b"".join(n + b": " + v + b"\r\n" for n, v in head)
        + b"\r\n"
        + wire_body
    )

    oracle = h11.Connection(h11.SERVER)
    oracle.receive_data(wire)
    h11_events = []
    while True:
        event = oracle.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            break
        h11_events.append(event)
    h11_request = h11_events[0]
    assert isinstance(h11_request, h11.Request)
    h11_body = b"".join(bytes(e.data) for e in h11_events if isinstance(e, h11.Data))

    ours = events(server(codec_impl), wire)
    request_head = ours[0]
    assert isinstance(request_head, RequestHead)
    assert request_head.method == h11_request.method
    assert request_head.target == h11_request.target
    assert request_head.headers == h11_request.headers.raw_items()
    assert body(ours) == h11_body == payload
    assert isinstance(ours[-2], EndOfMessage)
    assert isinstance(h11_events[-1], h11.EndOfMessage)


# -- the h11 codec: h11's checks of outgoing fields, made once ---------------------

# Fields h11's grammar refuses (a name that is not a token; a value with CR,
# LF, NUL or edge whitespace). A CR LF inside a value must not become a second
# field on the wire (response splitting), whatever the codec writes first.
_BAD_OUTGOING_FIELDS = [
    ((b"X-A", b"1\r\nInjected: yes"), "Illegal header value"),
    ((b"X-A", b"1\nInjected: yes"), "Illegal header value"),
    ((b"X-A: b", b"v"), "Illegal header name"),
    ((b"Bad Name", b"v"), "Illegal header name"),
    ((b"", b"v"), "Illegal header name"),
    ((b"X-A", b" leading"), "Illegal header value"),
    ((b"X-A", b"trailing\t"), "Illegal header value"),
    ((b"X-A", b"nul\x00byte"), "Illegal header value"),
]


@pytest.mark.parametrize(("field", "message"), _BAD_OUTGOING_FIELDS)
def test_h11_codec_refuses_response_fields_h11_refuses(
    field: tuple[bytes, bytes], message: str
) -> None:
    codec = server("h11")
    events(codec, req(HOST))
    with pytest.raises(UserError, match=message):
        codec.send_message(ok((b"X-Fine", b"1"), field), b"abc")
    assert codec.our_state is CodecState.ERROR
    assert not codec.keep_alive


@pytest.mark.parametrize(("field", "message"), _BAD_OUTGOING_FIELDS)
def test_h11_codec_refuses_request_fields_h11_refuses(
    field: tuple[bytes, bytes], message: str
) -> None:
    codec = client("h11")
    with pytest.raises(UserError, match=message):
        codec.send_head(RequestHead(b"POST", b"/", b"1.1", [HOST_PAIR, field]), 3)
    assert codec.our_state is CodecState.ERROR


@pytest.mark.parametrize(
    "value", [b"1\r\nInjected: yes", b"1\nInjected: yes", b" leading", b"nul\x00byte"]
)
def test_h11_codec_refuses_declared_trailers_h11_refuses(value: bytes) -> None:
    codec = server("h11")
    events(codec, req(HOST, b"TE: trailers"))
    codec.send_head(ok((b"Trailer", b"x-a")), None)
    with pytest.raises(UserError, match="Illegal header value"):
        codec.send_end([(b"X-A", value)])
    assert codec.our_state is CodecState.ERROR


def test_undeclared_trailers_are_dropped_unread(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, req(HOST, b"TE: trailers"))
    codec.send_head(ok((b"Trailer", b"x-a")), None)
    end = codec.send_end([(b"X-A", b"1"), (b"Bad Name", b"x"), (b"X-B", b"1\r\nInjected: yes")])
    assert end == b"0\r\nX-A: 1\r\n\r\n"


def test_fields_h11_accepts_are_written_as_given(codec_impl: str) -> None:
    # obs-text, inner whitespace, ": " and other punctuation in values, an
    # empty value: h11's grammar allows them and they go out byte for byte.
    fields = [
        (b"X-Text", b"caf\xc3\xa9 \t au lait"),
        (b"X-Colon", b"a: b: c"),
        (b"X-Empty", b""),
        (b"x-!#$%&'*+.^_`|~", b"\x80\xff"),
    ]
    out = answered(codec_impl, req(HOST), ok(*fields), b"abc")
    assert out == (
        b"HTTP/1.1 200 OK\r\n"
        + b"".join(b"%s: %s\r\n" % pair for pair in fields)
        + b"content-length: 3\r\n\r\nabc"
    )


def test_a_status_code_subclass_is_written_as_digits(codec_impl: str) -> None:
    from hyper_core.http import StatusCode

    head = ResponseHead(StatusCode(404), b"Not Found", b"1.1", [])
    assert answered(codec_impl, req(HOST), head, b"").startswith(b"HTTP/1.1 404 Not Found\r\n")


def test_send_message_with_trailers_on_a_chunked_response(codec_impl: str) -> None:
    codec = server(codec_impl)
    events(codec, req(HOST, b"TE: trailers"))
    head = ok((b"Transfer-Encoding", b"chunked"), (b"Trailer", b"x-sum"))
    out = codec.send_message(head, b"abc", [(b"X-Sum", b"1"), (b"X-Not-Declared", b"2")])
    assert out.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n")
    assert codec.our_state is CodecState.DONE


_reason_text = st.binary(max_size=20).map(
    lambda b: bytes(c for c in b if c == 0x20 or c == 0x09 or c >= 0x21)
)
_field_value = st.binary(max_size=24).map(
    lambda b: bytes(c for c in b if c in (0x20, 0x09) or c >= 0x21).strip(b" \t")
)
_reserved = {b"content-length", b"transfer-encoding", b"connection", b"date", b"trailer"}


@settings(max_examples=300, deadline=None)
@example(status=200, reason=b"", fields=[(b"0", b""), (b"HOST", b"")], payload=b"", title=False)
@given(
    status=st.integers(min_value=200, max_value=999).filter(lambda s: s not in (204, 304)),
    reason=_reason_text,
    fields=st.lists(st.tuples(_wire_token.map(str.encode), _field_value), max_size=8),
    payload=st.binary(max_size=64),
    title=st.booleans(),
)
def test_h11_codec_writes_responses_as_the_native_codec_does(
    status: int, reason: bytes, fields: list[tuple[bytes, bytes]], payload: bytes, title: bool
) -> None:
    # Where the two codecs agree on framing (HTTP/1.1, a known length), the
    # h11 codec's bytes (h11 writing fields it was handed as already checked)
    # equal the native codec's, whatever the reason phrase and values hold.
    # h11 writes a Host field first in any message (RFC 9110 7.2 asks it of
    # requests only); the native codec keeps a response's fields in order.
    pairs = [pair for pair in fields if pair[0].lower() not in (*_reserved, b"host")]
    head = ResponseHead(status, reason, b"1.1", pairs)
    outs = [answered(impl, req(HOST), head, payload, title_case_headers=title) for impl in IMPLS]
    assert outs[0] == outs[1]


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from([b"POST", b"PUT", b"PATCH", b"X-CUSTOM"]),
    target=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-._~%?=&:", max_size=30),
    fields=st.lists(st.tuples(_wire_token.map(str.encode), _field_value), max_size=8),
    length=st.integers(min_value=1, max_value=10_000),
)
def test_h11_codec_writes_requests_as_the_native_codec_does(
    method: bytes, target: str, fields: list[tuple[bytes, bytes]], length: int
) -> None:
    # h11 writes Host first; the native codec writes fields as given, so
    # Host is given first.
    pairs = [HOST_PAIR] + [
        pair for pair in fields if pair[0].lower() not in _reserved | {b"host", b"upgrade"}
    ]
    head = RequestHead(method, b"/" + target.encode(), b"1.1", pairs)
    outs = [client(impl).send_head(head, length) for impl in IMPLS]
    assert outs[0] == outs[1]


# -- Content-Length bodies handed out without a copy ----------------------------


def _client_reading_body(impl: str, length: int) -> Codec:
    codec = client(impl)
    codec.send_message(RequestHead(b"GET", b"/", b"1.1", [(b"host", b"x")]), b"")
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % length
    assert isinstance(events(codec, head)[0], ResponseHead)
    return codec


def test_content_length_body_arrives_intact_in_any_split(codec_impl: str) -> None:
    payload = bytes(range(256)) * 40  # 10,240 bytes
    for cut in (1, 7, 4096, 10_239, 10_240):
        codec = _client_reading_body(codec_impl, len(payload))
        got = events(codec, payload[:cut])
        if cut < len(payload):
            got += events(codec, payload[cut:])
        assert body(got) == payload
        assert any(isinstance(e, EndOfMessage) for e in got)
        assert codec.their_state is CodecState.DONE


def test_native_codec_hands_a_body_only_read_out_as_it_is() -> None:
    codec = _client_reading_body("native", 10)
    chunk = b"abcdef"
    codec.receive_data(chunk)
    assert codec.trailing_data == (chunk, False)  # held, and still read-ahead
    event = codec.next_event()
    assert isinstance(event, Data)
    assert event.data is chunk  # not copied through the buffer
    assert codec.their_body_length == 4
    assert codec.next_event() is NEED_DATA


def test_body_then_more_bytes_in_one_read_is_split_at_the_length(codec_impl: str) -> None:
    codec = _client_reading_body(codec_impl, 4)
    got = events(codec, b"abcdEXTRA")
    assert body(got) == b"abcd"
    assert any(isinstance(e, EndOfMessage) for e in got)
    assert codec.trailing_data[0] == b"EXTRA"
    with pytest.raises(ParseError, match="after a response"):
        codec.start_next_cycle()


def test_two_reads_before_next_event_keep_their_order(codec_impl: str) -> None:
    codec = _client_reading_body(codec_impl, 8)
    codec.receive_data(b"abc")
    codec.receive_data(b"defgh")
    assert body(events(codec)) == b"abcdefgh"
    assert codec.their_state is CodecState.DONE


def test_eof_inside_a_held_body_is_incomplete_after_its_bytes(codec_impl: str) -> None:
    codec = _client_reading_body(codec_impl, 10)
    codec.receive_data(b"abc")
    codec.receive_data(b"")
    first = codec.next_event()
    assert isinstance(first, Data)
    assert first.data == b"abc"
    with pytest.raises(IncompleteMessageError):
        codec.next_event()
