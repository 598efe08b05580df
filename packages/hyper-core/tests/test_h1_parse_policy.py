"""HTTP/1 parsing policy, pinned with raw bytes: what both oracles refuse, we refuse.

What belongs here: one test per class of input that h11 and llhttp both
refuse and that our codecs once accepted (issue 9 §1), the bounds on every
element of a head with the status each gets, and the linear head search.
The differential harness (``tests/fuzz``) finds such classes; each found
class is pinned here so it cannot come back unnoticed.

Strategy: wire bytes into a codec made by ``new_codec``, the error (and its
``status_hint``) or the events out. Every test runs on both codecs behind
the seam; the h11 codec applies the same checks before h11 sees a byte.
"""

from __future__ import annotations

import pytest

from hyper_core.error import ParseError
from hyper_core.proto.h1 import (
    NEED_DATA,
    Codec,
    Data,
    EndOfMessage,
    RequestHead,
    ResponseHead,
    Role,
    new_codec,
)
from hyper_core.proto.h1._codec import IMPLS
from hyper_core.proto.h1._parse import HeadLimits


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def server(impl: str, **options: object) -> Codec:
    return new_codec(Role.SERVER, impl=impl, **options)  # type: ignore[arg-type]


def client(impl: str, method: bytes = b"GET", **options: object) -> Codec:
    codec = new_codec(Role.CLIENT, impl=impl, **options)  # type: ignore[arg-type]
    codec.send_message(RequestHead(method, b"/", b"1.1", [(b"host", b"a")]), b"")
    return codec


def parse(codec: Codec, data: bytes) -> list[object]:
    """All events for ``data`` then EOF, up to the end of the first message."""
    codec.receive_data(data)
    out: list[object] = []
    for _ in range(100):
        event = codec.next_event()
        if event is NEED_DATA:
            codec.receive_data(b"")
            continue
        out.append(event)
        if isinstance(event, EndOfMessage):
            return out
    raise AssertionError(f"no end of message: {out}")


def refused(codec: Codec, data: bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(codec, data)
    return info.value


def request(*lines: bytes, body: bytes = b"", start: bytes = b"POST / HTTP/1.1") -> bytes:
    return b"".join(x + b"\r\n" for x in (start, b"Host: a", *lines)) + b"\r\n" + body


def response(*lines: bytes, body: bytes = b"", start: bytes = b"HTTP/1.1 200 OK") -> bytes:
    return b"".join(x + b"\r\n" for x in (start, *lines)) + b"\r\n" + body


def body_of(events: list[object]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


TE = b"Transfer-Encoding: chunked"
CHUNKS = b"3\r\nabc\r\n0\r\n\r\n"


# -- Content-Length given twice --------------------------------------------------


def test_equal_content_lengths_are_read_once(impl: str) -> None:
    events = parse(server(impl), request(b"Content-Length: 3", b"Content-Length: 3", body=b"abc"))
    assert body_of(events) == b"abc"
    head = events[0]
    assert isinstance(head, RequestHead)
    assert [v for n, v in head.headers if n == b"Content-Length"] == [b"3"]


@pytest.mark.parametrize("second", [b"03", b"+3", b"0003"])
def test_request_content_length_spelled_twice_differently(impl: str, second: bytes) -> None:
    # RFC 9110 §8.6: one value, repeated; "3" and "03" are two spellings a
    # parser could read differently. h11 and llhttp refuse it.
    data = request(b"Content-Length: 3", b"Content-Length: " + second, body=b"abc")
    assert refused(server(impl), data).status_hint == 400


def test_response_content_length_spelled_twice_differently(impl: str) -> None:
    data = response(b"Content-Length: 3", b"Content-Length: 03", body=b"abc")
    refused(client(impl), data)


def test_response_content_length_list_of_equal_values_is_read(impl: str) -> None:
    events = parse(client(impl), response(b"Content-Length: 3, 3", body=b"abc"))
    assert body_of(events) == b"abc"


# -- Transfer-Encoding lists -----------------------------------------------------


@pytest.mark.parametrize(
    "value", [b"chunked,", b"chunked, , ", b", chunked", b"chunked\t , ", b",chunked", b""]
)
def test_request_transfer_encoding_with_empty_members(impl: str, value: bytes) -> None:
    data = request(b"Transfer-Encoding: " + value, body=CHUNKS)
    assert refused(server(impl), data).status_hint == 400


@pytest.mark.parametrize("value", [b"chunked,", b"chunked, , ", b", chunked", b""])
def test_response_transfer_encoding_with_empty_members(impl: str, value: bytes) -> None:
    # llhttp reads "chunked," as not chunked (until close), h11 refuses it:
    # no reading is safe.
    refused(client(impl), response(b"Transfer-Encoding: " + value, body=CHUNKS))


def test_response_empty_transfer_encoding_with_content_length(impl: str) -> None:
    refused(client(impl), response(b"Transfer-Encoding:", b"Content-Length: 3", body=b"abc"))


def test_response_unchunked_coding_with_content_length(impl: str) -> None:
    # RFC 9112 §6.3 (3): Transfer-Encoding overrides Content-Length and the
    # message "ought to be handled as an error"; with a coding that is not
    # chunked the length would be "until close", which a peer that trusted
    # Content-Length would not agree with.
    data = response(b"Transfer-Encoding: gzip", b"Content-Length: 3", body=b"abc")
    refused(client(impl), data)


def test_response_chunked_with_content_length_is_read_as_chunked(impl: str) -> None:
    events = parse(client(impl), response(TE, b"Content-Length: 3", body=CHUNKS))
    assert body_of(events) == b"abc"


# -- framing fields in trailers --------------------------------------------------


@pytest.mark.parametrize(
    "trailer", [b"Content-Length: 5", b"Transfer-Encoding: chunked", b"content-length: 0"]
)
def test_request_framing_field_in_trailers(impl: str, trailer: bytes) -> None:
    # RFC 9110 §6.5.1: framing fields are not allowed in trailers.
    data = request(TE, body=b"3\r\nabc\r\n0\r\n" + trailer + b"\r\n\r\n")
    assert refused(server(impl), data).status_hint == 400


def test_response_framing_field_in_trailers(impl: str) -> None:
    data = response(TE, body=b"0\r\nContent-Length: 1\r\n\r\n")
    refused(client(impl), data)


def test_other_trailers_are_read(impl: str) -> None:
    events = parse(server(impl), request(TE, body=b"0\r\nX-Sum: 1\r\n\r\n"))
    end = events[-1]
    assert isinstance(end, EndOfMessage)
    assert end.trailers == [(b"X-Sum", b"1")]


# -- whitespace in a chunk-size line ---------------------------------------------


@pytest.mark.parametrize("size_line", [b"3 ;a=b", b"3\t;a", b"3 ; a = b"])
def test_whitespace_between_chunk_size_and_extension(impl: str, size_line: bytes) -> None:
    data = request(TE, body=size_line + b"\r\nabc\r\n0\r\n\r\n")
    assert refused(server(impl), data).status_hint == 400


def test_whitespace_between_chunk_size_and_extension_in_a_response(impl: str) -> None:
    refused(client(impl), response(TE, body=b"3 ;x\r\nabc\r\n0\r\n\r\n"))


@pytest.mark.parametrize("size_line", [b"3;a=b", b'3;a="b c"', b"3;a;b"])
def test_chunk_extensions_without_whitespace_before_them(impl: str, size_line: bytes) -> None:
    data = request(TE, body=size_line + b"\r\nabc\r\n0\r\n\r\n")
    assert body_of(parse(server(impl), data)) == b"abc"


# -- bounds on every element of a head -------------------------------------------


GET = b"GET / HTTP/1.1\r\nHost: a\r\n"


@pytest.mark.parametrize(
    ("options", "data", "status"),
    [
        # The method token: 501, a method no server implements (RFC 9110 §9.1).
        ({"limits": HeadLimits(method=8)}, b"ABCDEFGHI / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        # The target: 414 (RFC 9112 §3).
        ({"limits": HeadLimits(target=16)}, GET.replace(b"/", b"/" + b"a" * 16, 1) + b"\r\n", 414),
        # A field name, a field value: 431 (RFC 6585 §5).
        ({"limits": HeadLimits(name=16)}, GET + b"X-" + b"n" * 15 + b": v\r\n\r\n", 431),
        ({"limits": HeadLimits(value=16)}, GET + b"X: " + b"v" * 17 + b"\r\n\r\n", 431),
        # The field count and the whole head: 431.
        ({"max_headers": 2}, GET + b"A: 1\r\nB: 2\r\n\r\n", 431),
        ({"max_buf_size": 8192}, GET + b"X: " + b"v" * 8200 + b"\r\n\r\n", 431),
        # The version: a fixed 8 bytes by grammar; a malformed one is 400,
        # a well-formed one we do not speak is 505.
        ({}, b"GET / HTTP/1.1.1\r\nHost: a\r\n\r\n", 400),
        ({}, b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    ],
)
def test_each_element_of_a_request_head_has_a_bound(
    impl: str, options: dict[str, object], data: bytes, status: int
) -> None:
    assert refused(server(impl, **options), data).status_hint == status


@pytest.mark.parametrize(
    ("limits", "data"),
    [
        (HeadLimits(method=8), b"ABCDEFGH / HTTP/1.1\r\nHost: a\r\n\r\n"),
        (HeadLimits(target=16), b"GET /" + b"a" * 15 + b" HTTP/1.1\r\nHost: a\r\n\r\n"),
        (HeadLimits(name=16), b"GET / HTTP/1.1\r\nHost: a\r\nX-" + b"n" * 14 + b": v\r\n\r\n"),
        (HeadLimits(value=16), b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 16 + b"\r\n\r\n"),
    ],
)
def test_an_element_at_its_bound_is_accepted(impl: str, limits: HeadLimits, data: bytes) -> None:
    assert isinstance(parse(server(impl, limits=limits), data)[0], RequestHead)


def test_default_bounds() -> None:
    limits = HeadLimits()
    # hyper's: a target of 65,534 bytes, a name under 64 KiB.
    assert (limits.target, limits.name) == (65_534, 65_535)
    assert (limits.method, limits.value, limits.reason) == (64, 65_536, 8_192)


@pytest.mark.parametrize(
    ("limits", "data"),
    [
        (HeadLimits(reason=8), b"HTTP/1.1 200 123456789\r\nContent-Length: 0\r\n\r\n"),
        (HeadLimits(name=16), b"HTTP/1.1 200 OK\r\nX-" + b"n" * 15 + b": v\r\n\r\n"),
        (HeadLimits(value=16), b"HTTP/1.1 200 OK\r\nX: " + b"v" * 17 + b"\r\n\r\n"),
    ],
)
def test_each_element_of_a_response_head_has_a_bound(
    impl: str, limits: HeadLimits, data: bytes
) -> None:
    refused(client(impl, limits=limits), data)


def test_trailer_fields_have_the_same_bounds(impl: str) -> None:
    data = request(TE, body=b"0\r\nX: " + b"v" * 17 + b"\r\n\r\n")
    assert refused(server(impl, limits=HeadLimits(value=16)), data).status_hint == 431


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="method"):
        HeadLimits(method=0)


# -- the head terminator search is linear ----------------------------------------


class CountingBuffer(bytearray):
    """A receive buffer that counts the bytes each ``find`` looks at."""

    scanned = 0

    def find(self, sub: object, start: object = None, end: object = None) -> int:
        begin = start if isinstance(start, int) else 0
        CountingBuffer.scanned += max(len(self) - begin, 0)
        return super().find(sub, start, end)  # type: ignore[arg-type]


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_a_head_arriving_byte_by_byte_is_not_rescanned(impl: str, role: Role) -> None:
    # A 20 KB head, one byte per read: a search from the start on every read
    # looks at about 200 MB; a search from where the last one stopped, at
    # a few bytes per read.
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 40) for i in range(400))
    if role is Role.SERVER:
        codec = server(impl, max_headers=500)
        data = b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
    else:
        codec = client(impl, max_headers=500)
        data = b"HTTP/1.1 204 No Content\r\n" + fields + b"\r\n"
    attr = "_buf" if impl == "native" else "_held"
    setattr(codec, attr, CountingBuffer())
    CountingBuffer.scanned = 0
    event: object = NEED_DATA
    for i in range(len(data)):
        codec.receive_data(data[i : i + 1])
        event = codec.next_event()
        if event is not NEED_DATA:
            break
    assert isinstance(event, (RequestHead, ResponseHead))
    assert CountingBuffer.scanned < 8 * len(data)


# -- the bounds as Builder options -----------------------------------------------


@pytest.mark.parametrize(
    "option", ["max_method_size", "max_uri_size", "max_header_name_size", "max_header_value_size"]
)
def test_server_builder_bounds_must_be_positive(option: str) -> None:
    from hyper_core.server.conn import http1

    with pytest.raises(ValueError, match=option):
        http1.Builder(**{option: 0})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "option", ["max_header_name_size", "max_header_value_size", "max_reason_size"]
)
def test_client_builder_bounds_must_be_positive(option: str) -> None:
    from hyper_core.client.conn import http1

    with pytest.raises(ValueError, match=option):
        http1.Builder(**{option: 0})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_client_builder_bounds_reach_the_codec() -> None:
    import anyio

    from hyper_core.client.conn import http1
    from hyper_core.http import Request
    from hyper_core.testing import memory_pipe

    ours, peer = memory_pipe()
    sender, connection = await http1.Builder(max_reason_size=4).handshake(ours)

    async def answer() -> None:
        # After the request: bytes sent to an idle connection would close it
        # as unsolicited before the request is written (a race, on trio).
        request = b""
        while not request.endswith(b"\r\n\r\n"):
            request += await peer.receive()
        await peer.send(b"HTTP/1.1 200 Very Long Reason\r\nContent-Length: 0\r\n\r\n")

    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        tg.start_soon(answer)
        with pytest.raises(ParseError, match="reason"):
            await sender.send_request(Request("GET", "/", headers={"host": "a"}))
        tg.cancel_scope.cancel()
