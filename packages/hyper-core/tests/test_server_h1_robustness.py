"""Malformed and hostile requests against the HTTP/1.1 server, as raw bytes on a loopback socket.

What belongs here: one table row per hostile or malformed request, each with
the outcome RFC 9110 / RFC 9112 call for, and the single test that plays the
rows. Interop with real clients is in ``test_server_h1_interop.py``.

Strategy: black box. Each row's bytes go to a real server connection of ours
on 127.0.0.1 (see ``conftest.py``), whose service records every request it
is called with and answers ``200`` with a one-line summary of it. The client
reads until the server closes, under a deadline, so a hang is a failure,
never a stuck test. Every row ends in a close: requests that should be
served carry ``Connection: close`` (or are HTTP/1.0, or are the kind RFC
9112 says must close).

A row expects one of:

* ``reject(statuses)``: the server answers one response with one of those
  statuses and closes, and the service is never called;
* ``refuse(statuses)``: the head was acceptable but the message then broke
  (bad chunk, EOF mid-body): the service may have seen the head but never a
  complete body, and the server closes with no response or one of those
  statuses;
* ``serve(requests)``: the service saw exactly these requests, in order,
  each answered ``200`` in order, then the connection closed;
* ``one_of(...)``: where the RFCs leave the choice to the server.

Besides each row's own outcome, every row checks that a request smuggled
after a hostile message (``/smuggled``) or sent after the connection had to
close (``/after-close``) never reached the service, that the server side of
the connection finished, and that it ended with nothing but a hyper-core
error. Expected values come from the RFCs; where they allow a choice the
row's comment says which one is pinned and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from hyper_core.body import Body, Full, Incoming, collect
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.proto.h1 import _codec

if TYPE_CHECKING:
    from conftest import ServeH1

pytestmark = pytest.mark.anyio

# Seconds the client waits for the server to answer and close. Every row is
# a few KiB on loopback (the largest ~0.5 MB), so this only trips on a hang.
ANSWER_TIMEOUT = 10.0
# Seconds, after the client closed, for the server side to finish.
SERVER_END_TIMEOUT = 5.0

HOST = b"Host: example.test\r\n"
CLOSE = b"Connection: close\r\n"
# A request that must never reach the service: it hides behind a message
# whose framing a confused parser would get wrong.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n"
# A second, legitimate pipelined request that ends the exchange.
SECOND = b"GET /second HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
# A request sent after one that closes the connection: never processed.
AFTER_CLOSE = b"GET /after-close HTTP/1.1\r\nHost: example.test\r\n\r\n"
NEVER_SERVED = ("/smuggled", "/after-close")


def msg(start: bytes, *fields: bytes, body: bytes = b"") -> bytes:
    """A message with CRLF line endings: ``start`` line, field lines, blank line, body."""
    return b"".join(line + b"\r\n" for line in (start, *fields)) + b"\r\n" + body


def post(*fields: bytes, body: bytes = b"", start: bytes = b"POST / HTTP/1.1") -> bytes:
    """A POST to ``/`` with a Host field and the given extra fields."""
    return msg(start, b"Host: example.test", *fields, body=body)


def get(target: bytes = b"/", *fields: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    """A GET with a Host field that asks to close after the response."""
    start = b"GET " + target + b" " + version
    return msg(start, b"Host: example.test", *fields, b"Connection: close")


def chunked(*fields: bytes, body: bytes) -> bytes:
    """A chunked POST (``body`` is the raw chunked encoding) that asks to close."""
    return post(b"Transfer-Encoding: chunked", b"Connection: close", *fields, body=body)


def many_fields(count: int, value_size: int = 8) -> tuple[bytes, ...]:
    """``count`` distinct ``X-Field-N`` lines, each value ``value_size`` bytes."""
    return tuple(b"X-Field-%d: %s" % (n, b"v" * value_size) for n in range(count))


# -- expected outcomes --------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A request the service must receive.

    ``headers`` must each be present with exactly that value (names compared
    case-insensitively); ``absent`` names must not be; ``trailers``, when not
    ``None``, are the exact trailer fields.
    """

    method: str
    target: str
    body: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    absent: tuple[bytes, ...] = ()
    trailers: tuple[tuple[bytes, bytes], ...] | None = None


@dataclass(frozen=True)
class Reject:
    """Answered before the service: one of ``statuses`` (or silence if allowed), then close."""

    statuses: frozenset[int]
    silent_ok: bool = False


@dataclass(frozen=True)
class Refuse:
    """The message broke after its head: no complete body reaches the service; close."""

    statuses: frozenset[int]


@dataclass(frozen=True)
class Serve:
    """Exactly these requests get 200s, in order, then maybe a final error status; close."""

    requests: tuple[Seen, ...]
    interim: frozenset[int] = frozenset()
    then: frozenset[int] = frozenset()


@dataclass(frozen=True)
class OneOf:
    """Any of these outcomes: the RFCs leave the choice to the server."""

    choices: tuple[Reject | Refuse | Serve, ...]


Outcome = Reject | Refuse | Serve | OneOf


def reject(*statuses: int, silent_ok: bool = False) -> Reject:
    return Reject(frozenset(statuses), silent_ok)


def silent() -> Reject:
    """Close without any response and without calling the service."""
    return Reject(frozenset(), silent_ok=True)


# A broken body reaches the service as an error while it reads; whether the
# server then says 400 (it knows the client is at fault) or 500 (the service
# raised) or nothing (RFC 9112 §8: an error response is a MAY) is its choice.
BODY_ERROR = (400, 500)


def refuse(*statuses: int) -> Refuse:
    return Refuse(frozenset(statuses or BODY_ERROR))


def serve(*requests: Seen, interim: tuple[int, ...] = (), then: tuple[int, ...] = ()) -> Serve:
    return Serve(requests, frozenset(interim), frozenset(then))


def one_of(*choices: Reject | Refuse | Serve) -> OneOf:
    return OneOf(choices)


#: The table runs on the codec HYPER_CORE_H1_CODEC picks.
H11 = _codec.DEFAULT_IMPL == "h11"


def per_codec(native: Outcome, *, h11: Outcome) -> Outcome:
    """A row where the h11 codec's documented grammar differs (``_h11_codec.py``).

    Both codecs refuse the same hostile input; these rows are valid messages
    that h11's narrower grammar refuses too.
    """
    return h11 if H11 else native


@dataclass(frozen=True)
class Case:
    """One row: the bytes sent, the outcome expected, how the client behaves."""

    id: str
    raw: bytes
    expect: Outcome
    # Half-close the client's write side after sending everything.
    eof: bool = False
    # Keyword arguments for ``http1.Builder``.
    options: Mapping[str, Any] = field(default_factory=dict)


# -- the table ---------------------------------------------------------------

HELLO_CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
POST_EMPTY = Seen("POST", "/")
POST_HELLO = Seen("POST", "/", b"hello")
GET_ROOT = Seen("GET", "/")
GET_SECOND = Seen("GET", "/second")

FRAMING_CASES = [
    # RFC 9112 §6.3 item 3: with both CL and TE the server MAY reject or MUST
    # let TE win, and either way MUST close after responding. Used as chunked,
    # the body is empty; used with CL=5, "0\r\n\r\n" is the body and the
    # smuggled GET would become the next request.
    Case(
        "cl_and_te_cl_first",
        post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED),
        # hyper 1.11 also removes Content-Length so the service never sees
        # a length that disagrees with the framing used.
        one_of(reject(400), serve(Seen("POST", "/", absent=(b"content-length",)))),
    ),
    Case(
        "cl_and_te_te_first",
        post(b"Transfer-Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n" + SMUGGLED),
        one_of(reject(400), serve(Seen("POST", "/", absent=(b"content-length",)))),
    ),
    # CL=0 with a chunked body: a CL reader would take "5\r\nhello..." as
    # the next request line.
    Case(
        "cl_zero_and_te_body_chunked",
        post(b"Content-Length: 0", b"Transfer-Encoding: chunked", body=HELLO_CHUNKED + SMUGGLED),
        one_of(reject(400), serve(Seen("POST", "/", b"hello", absent=(b"content-length",)))),
    ),
    # RFC 9112 §6.3 item 4: TE present, chunked not final -> 400 and close;
    # the CL must not be used instead.
    Case(
        "cl_and_te_not_chunked",
        post(b"Content-Length: 5", b"Transfer-Encoding: foo", body=b"hello" + SMUGGLED),
        reject(400, 501),
    ),
    # RFC 9112 §6.1: TE on HTTP/1.0 means faulty framing, even with CL.
    Case(
        "cl_and_te_http10",
        post(
            b"Content-Length: 5",
            b"Transfer-Encoding: chunked",
            body=b"0\r\n\r\n" + SMUGGLED,
            start=b"POST / HTTP/1.0",
        ),
        reject(400),
    ),
    # RFC 9112 §6.3 item 5 / RFC 9110 §8.6: differing lengths are an
    # unrecoverable framing error: 400, then close.
    Case(
        "cl_duplicate_different",
        post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!" + SMUGGLED),
        reject(400),
    ),
    # Field names are case-insensitive: these are two Content-Length lines.
    Case(
        "cl_duplicate_different_name_case",
        post(b"content-length: 5", b"CONTENT-LENGTH: 6", body=b"hello!" + SMUGGLED),
        reject(400),
    ),
    Case(
        "cl_list_different",
        post(b"Content-Length: 5, 6", body=b"hello!" + SMUGGLED),
        reject(400),
    ),
    # RFC 9110 §8.6: the same value repeated MAY be rejected or collapsed to
    # one (h11 and hyper collapse repeated lines; hyper's server rejects the
    # comma list). Both choices are accepted; what matters is that the body
    # is exactly 5 bytes and the next request is the real next request.
    Case(
        "cl_duplicate_same",
        post(b"Content-Length: 5", b"Content-Length: 5", body=b"hello" + SECOND),
        one_of(reject(400), serve(POST_HELLO, GET_SECOND)),
    ),
    Case(
        "cl_list_same",
        post(b"Content-Length: 5, 5", body=b"hello" + SECOND),
        one_of(reject(400), serve(POST_HELLO, GET_SECOND)),
    ),
    # RFC 9110 §8.6: Content-Length = 1*DIGIT. Anything else is invalid and
    # RFC 9112 §6.3 item 5 makes it a 400 and close.
    Case("cl_plus_sign", post(b"Content-Length: +5", body=b"hello" + SMUGGLED), reject(400)),
    Case("cl_negative", post(b"Content-Length: -5", body=b"hello" + SMUGGLED), reject(400)),
    Case("cl_hex", post(b"Content-Length: 0x5", body=b"hello" + SMUGGLED), reject(400)),
    Case("cl_inner_space", post(b"Content-Length: 1 0", body=b"hello" + SMUGGLED), reject(400)),
    Case("cl_empty", post(b"Content-Length:", body=b"hello" + SMUGGLED), reject(400)),
    Case("cl_word", post(b"Content-Length: five", body=b"hello" + SMUGGLED), reject(400)),
    Case("cl_decimal", post(b"Content-Length: 5.0", body=b"hello" + SMUGGLED), reject(400)),
    # RFC 9110 §8.6 asks parsers to survive huge numerals. A length past
    # 2**64 cannot be a real body (hyper rejects above u64::MAX - 2): pinned
    # as 400, or 413 Content Too Large, answered at once rather than waiting
    # for bytes that will never come.
    Case(
        "cl_overflow_u64",
        post(b"Content-Length: 18446744073709551616", body=b"hello"),
        reject(400, 413),
    ),
    Case(
        "cl_overflow_huge",
        post(b"Content-Length: " + b"9" * 40, body=b"hello"),
        reject(400, 413),
    ),
    # RFC 9112 §5.1: OWS around a field value is not part of it.
    Case(
        "cl_surrounding_ows",
        post(b"Content-Length: \t 5 \t", b"Connection: close", body=b"hello"),
        serve(POST_HELLO),
    ),
    # 1*DIGIT allows leading zeros: 005 is 5.
    Case(
        "cl_leading_zeros",
        post(b"Content-Length: 005", b"Connection: close", body=b"hello"),
        serve(POST_HELLO),
    ),
    Case(
        "cl_many_leading_zeros",
        post(b"Content-Length: " + b"0" * 23 + b"5", b"Connection: close", body=b"hello"),
        # h11: at most 20 digits.
        per_codec(serve(POST_HELLO), h11=reject(400)),
    ),
    # RFC 9112 §6.3: framing does not depend on the method; a GET body is
    # read (hyper reads it) so the next request starts where it should.
    Case(
        "get_with_body",
        msg(b"GET / HTTP/1.1", b"Host: example.test", b"Content-Length: 5", body=b"hello") + SECOND,
        serve(Seen("GET", "/", b"hello"), GET_SECOND),
    ),
    # RFC 9112 §6.3 item 7: no CL and no TE in a request means no body; the
    # bytes that follow are the next request.
    Case("post_without_length", post() + SECOND, serve(POST_EMPTY, GET_SECOND)),
]

TRANSFER_ENCODING_CASES = [
    Case("te_chunked", chunked(body=HELLO_CHUNKED), serve(POST_HELLO)),
    # RFC 9112 §7: transfer-coding names are case-insensitive.
    Case(
        "te_chunked_mixed_case",
        post(b"Transfer-Encoding: ChUnKeD", b"Connection: close", body=HELLO_CHUNKED),
        serve(POST_HELLO),
    ),
    # RFC 9112 §5.1: HTAB is OWS around the value.
    Case(
        "te_chunked_tab_ows",
        post(b"Transfer-Encoding:\tchunked\t", b"Connection: close", body=HELLO_CHUNKED),
        serve(POST_HELLO),
    ),
    # RFC 9110 §5.6.1.2: a recipient MUST parse and ignore a reasonable number
    # of empty list elements, so ", chunked" is "chunked".
    Case(
        "te_empty_list_element",
        post(b"Transfer-Encoding: , chunked", b"Connection: close", body=HELLO_CHUNKED),
        # RFC 9110 §5.6.1 would skip the empty member, but parsers disagree on
        # what "chunked," frames (llhttp: not chunked; h11: refused): refused.
        reject(400),
    ),
    # RFC 9112 §6.3 item 4: chunked present but not final -> MUST 400, close.
    Case(
        "te_chunked_then_gzip",
        post(b"Transfer-Encoding: chunked, gzip", body=HELLO_CHUNKED + SMUGGLED),
        reject(400),
    ),
    Case(
        "te_chunked_line_then_other_line",
        post(
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: foo",
            b"Content-Length: 5",
            body=HELLO_CHUNKED + SMUGGLED,
        ),
        reject(400),
    ),
    # Unknown or unsupported codings without a final chunked: §6.3 item 4
    # says 400, §6.1 says an unknown coding SHOULD get 501; both close.
    Case(
        "te_gzip_alone",
        post(b"Transfer-Encoding: gzip", body=b"hello" + SMUGGLED),
        reject(400, 501),
    ),
    Case("te_unknown", post(b"Transfer-Encoding: foo", body=b"hello" + SMUGGLED), reject(400, 501)),
    # "identity" left the registry with RFC 7230; it is an unknown coding now.
    Case(
        "te_identity",
        post(b"Transfer-Encoding: identity", body=b"hello" + SMUGGLED),
        reject(400, 501),
    ),
    Case(
        "te_quoted_chunked",
        post(b'Transfer-Encoding: "chunked"', body=HELLO_CHUNKED + SMUGGLED),
        reject(400, 501),
    ),
    Case(
        "te_xchunked_with_cl",
        post(b"Transfer-Encoding: xchunked", b"Content-Length: 5", body=b"hello" + SMUGGLED),
        reject(400, 501),
    ),
    # RFC 9112 §7: chunked MUST NOT be applied more than once, so a request
    # claiming it twice has framing nobody can trust.
    Case(
        "te_chunked_twice_in_list",
        post(b"Transfer-Encoding: chunked, chunked", body=HELLO_CHUNKED + SMUGGLED),
        reject(400, 501),
    ),
    Case(
        "te_chunked_on_two_lines",
        post(
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: chunked",
            body=HELLO_CHUNKED + SMUGGLED,
        ),
        reject(400, 501),
    ),
    # RFC 9112 §6.1: chunked is final, so the framing is sound; the server
    # SHOULD answer 501 for a coding it does not implement, or (as hyper
    # does) hand the still gzip-coded body to the service.
    Case(
        "te_gzip_then_chunked",
        post(b"Transfer-Encoding: gzip, chunked", b"Connection: close", body=HELLO_CHUNKED),
        one_of(reject(501), serve(POST_HELLO)),
    ),
    # RFC 9112 §6.1: TE in an HTTP/1.0 request is faulty framing -> 400.
    Case(
        "te_in_http10",
        post(b"Transfer-Encoding: chunked", body=HELLO_CHUNKED, start=b"POST / HTTP/1.0"),
        reject(400),
    ),
    # VT is a CTL: not allowed in a field value (RFC 9110 §5.5).
    Case(
        "te_vertical_tab",
        post(b"Transfer-Encoding: \x0bchunked", b"Content-Length: 5", body=b"hello" + SMUGGLED),
        reject(400),
    ),
    # RFC 9112 §5.1: whitespace between name and colon MUST get 400; a lax
    # parser would read "Transfer-Encoding " as another field and use CL.
    Case(
        "te_space_before_colon",
        post(b"Transfer-Encoding : chunked", b"Content-Length: 5", body=b"hello" + SMUGGLED),
        reject(400),
    ),
]

CHUNKED_BODY_CASES = [
    # The head is fine, so the service may be called; the body then fails.
    # Chunk sizes beyond 64 bits cannot be honoured by any peer (hyper:
    # "invalid chunk size: overflow"), so they are refused at once.
    Case(
        "chunk_size_overflow",
        post(
            b"Transfer-Encoding: chunked", body=b"f0000000000000003\r\nabc\r\n0\r\n\r\n" + SMUGGLED
        ),
        refuse(),
    ),
    Case("chunk_size_not_hex", chunked(body=b"zz\r\nhello\r\n0\r\n\r\n" + SMUGGLED), refuse()),
    Case("chunk_size_negative", chunked(body=b"-5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), refuse()),
    Case("chunk_size_missing", chunked(body=b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED), refuse()),
    Case("chunk_size_0x_prefix", chunked(body=b"0x5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), refuse()),
    # RFC 9112 §7.1: chunk lines end in CRLF; the bare-LF leniency of §2.2
    # covers the start line and field lines only (hyper errors too).
    Case("chunk_size_bare_lf", chunked(body=b"5\nhello\r\n0\r\n\r\n" + SMUGGLED), refuse()),
    Case("chunk_data_bare_lf", chunked(body=b"5\r\nhello\n0\r\n\r\n" + SMUGGLED), refuse()),
    Case("chunk_data_no_crlf", chunked(body=b"5\r\nhelloXX0\r\n\r\n" + SMUGGLED), refuse()),
    # More data than the size said: "lo" is where the CRLF must be.
    Case("chunk_data_too_long", chunked(body=b"3\r\nhello\r\n0\r\n\r\n" + SMUGGLED), refuse()),
    # No last chunk: the smuggled request line is read as a chunk size.
    Case("chunk_missing_last_chunk", chunked(body=b"5\r\nhello\r\n" + SMUGGLED), refuse()),
    Case(
        "chunk_extension",
        chunked(body=b'5;name=value;flag;q="a b"\r\nhello\r\n0;end\r\n\r\n'),
        serve(POST_HELLO),
    ),
    # RFC 9112 §7.1.1 allows BWS around ";" in chunk-ext, but h11 and llhttp
    # both refuse whitespace between a chunk size and ";" (a parser that
    # skipped it while another did not would frame a different body).
    Case(
        "chunk_extension_bws",
        chunked(body=b"5 ; name = value\r\nhello\r\n0\r\n\r\n"),
        refuse(),
    ),
    Case("chunk_extension_bare_lf", chunked(body=b"5;a\nb\r\nhello\r\n0\r\n\r\n"), refuse()),
    # RFC 9112 §7.1.1 lets a server limit extensions; issue 3 and hyper use
    # 16 KiB over the whole body, one long extension or many short ones.
    Case(
        "chunk_extension_over_16k",
        chunked(body=b"5;" + b"e" * (17 * 1024) + b"\r\nhello\r\n0\r\n\r\n"),
        refuse(400, 413, 431, 500),
    ),
    Case(
        "chunk_extensions_over_16k_total",
        chunked(body=(b"1;" + b"e" * 1000 + b"\r\nx\r\n") * 20 + b"0\r\n\r\n"),
        refuse(400, 413, 431, 500),
    ),
    # 1*HEXDIG, either case, leading zeros allowed.
    Case(
        "chunk_size_uppercase_hex",
        chunked(body=b"A\r\n0123456789\r\n0\r\n\r\n"),
        serve(Seen("POST", "/", b"0123456789")),
    ),
    Case(
        "chunk_size_leading_zeros",
        chunked(body=b"0005\r\nhello\r\n000\r\n\r\n"),
        serve(POST_HELLO),
    ),
    # 1*HEXDIG has no length limit: 17 digits of which 16 are leading
    # zeros is 5, not an overflow (hyper checks the value, not the digits).
    Case(
        "chunk_size_17_digits_leading_zeros",
        chunked(body=b"00000000000000005\r\nhello\r\n0\r\n\r\n"),
        serve(POST_HELLO),
    ),
    Case("chunk_size_trailing_garbage", chunked(body=b"5x\r\nhello\r\n0\r\n\r\n"), refuse()),
    Case("chunk_extension_bare_cr", chunked(body=b"5;a\rb\r\nhello\r\n0\r\n\r\n"), refuse()),
    Case("chunk_extension_nul", chunked(body=b"5;a\x00b\r\nhello\r\n0\r\n\r\n"), refuse()),
    Case(
        "chunk_trailers",
        chunked(body=b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"),
        serve(Seen("POST", "/", b"hello", trailers=((b"x-checksum", b"abc"), (b"x-other", b"1")))),
    ),
    # Trailer limits (hyper): 16 KiB in all and at most max_headers fields.
    Case(
        "chunk_trailers_over_16k",
        chunked(body=b"5\r\nhello\r\n0\r\nX-Big: " + b"t" * (17 * 1024) + b"\r\n\r\n"),
        refuse(400, 413, 431, 500),
    ),
    Case(
        "chunk_trailers_over_max_headers",
        chunked(
            body=b"5\r\nhello\r\n0\r\n" + b"".join(f + b"\r\n" for f in many_fields(101)) + b"\r\n"
        ),
        refuse(400, 413, 431, 500),
    ),
    Case(
        "chunk_trailer_invalid",
        chunked(body=b"5\r\nhello\r\n0\r\nBad Trailer: x\r\n\r\n" + SMUGGLED),
        refuse(),
    ),
    # Framing fields in trailers never change the framing (RFC 9110 §6.5.1):
    # either the trailer is refused, or the next request is the real one.
    Case(
        "chunk_trailer_content_length",
        post(b"Transfer-Encoding: chunked", body=b"0\r\nContent-Length: 50\r\n\r\n" + SECOND),
        one_of(refuse(), serve(POST_EMPTY, GET_SECOND)),
    ),
    Case(
        "chunked_then_pipelined",
        post(b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SECOND),
        serve(POST_EMPTY, GET_SECOND),
    ),
]

FIELD_CASES = [
    # RFC 9112 §5.2: obs-fold MUST be rejected with 400 or unfolded; issue 3
    # pins rejection ("without guessing").
    Case("obs_fold", get(b"/", b"X-Folded: a", b" b"), reject(400)),
    # RFC 9112 §2.2: whitespace before the first field MUST be rejected or
    # the line ignored; ignored, the Host line is gone: 400 either way.
    Case(
        "whitespace_before_first_field",
        msg(b"GET / HTTP/1.1", b" Host: example.test", b"Connection: close"),
        reject(400),
    ),
    # RFC 9112 §5.1: whitespace between name and colon MUST get 400.
    Case("space_before_colon", get(b"/", b"X-Foo : bar"), reject(400)),
    Case("tab_before_colon", get(b"/", b"X-Foo\t: bar"), reject(400)),
    Case(
        "host_space_before_colon",
        msg(b"GET / HTTP/1.1", b"Host : example.test", b"Connection: close"),
        reject(400),
    ),
    # RFC 9110 §5.1: a field name is a token.
    Case("space_in_name", get(b"/", b"X Foo: bar"), reject(400)),
    Case("empty_name", get(b"/", b": bar"), reject(400)),
    Case("no_colon", get(b"/", b"X-Foo bar"), reject(400)),
    Case("non_ascii_name", get(b"/", b"X-F\xf6o: bar"), reject(400)),
    Case("nul_in_name", get(b"/", b"X-F\x00o: bar"), reject(400)),
    # RFC 9112 §2.2: a bare CR MUST be treated as invalid or replaced by SP;
    # issue 3 pins rejection.
    Case("bare_cr_in_value", get(b"/", b"X-Foo: a\rb"), reject(400)),
    Case(
        "bare_cr_ends_request_line",
        b"GET / HTTP/1.1\r\r\nHost: example.test\r\nConnection: close\r\n\r\n",
        reject(400),
    ),
    Case("bare_cr_hides_field", get(b"/", b"X-Foo: a\rTransfer-Encoding: chunked"), reject(400)),
    # RFC 9110 §5.5: CR, LF and NUL in a value MUST be rejected or replaced;
    # other CTLs are invalid too, and MAY only be kept "in a safe context".
    # Pinned: rejected, because hyper_core.http.Headers refuses CTLs, so a
    # service must never be handed a value it could not have built itself.
    Case("nul_in_value", get(b"/", b"X-Foo: a\x00b"), reject(400)),
    Case("ctl_in_value", get(b"/", b"X-Foo: a\x01b"), reject(400)),
    Case("del_in_value", get(b"/", b"X-Foo: a\x7fb"), reject(400)),
    Case("escape_in_value", get(b"/", b"X-Foo: \x1b[31mred"), reject(400)),
    # obs-text (0x80-0xFF) is allowed and opaque: not UTF-8 decoded, not
    # rejected when it is not valid UTF-8.
    Case(
        "obs_text_value",
        get(b"/", b"X-Latin: caf\xe9"),
        serve(Seen("GET", "/", headers=((b"x-latin", b"caf\xe9"),))),
    ),
    Case(
        "invalid_utf8_value",
        get(b"/", b"X-Bytes: \xff\xfe\xc3\x28"),
        serve(Seen("GET", "/", headers=((b"x-bytes", b"\xff\xfe\xc3\x28"),))),
    ),
    Case(
        "tab_inside_value",
        get(b"/", b"X-Tab: a\tb"),
        serve(Seen("GET", "/", headers=((b"x-tab", b"a\tb"),))),
    ),
    Case(
        "value_ows_stripped",
        get(b"/", b"X-Ows: \t value with inner space \t"),
        serve(Seen("GET", "/", headers=((b"x-ows", b"value with inner space"),))),
    ),
    Case(
        "empty_value",
        get(b"/", b"X-Empty:"),
        serve(Seen("GET", "/", headers=((b"x-empty", b""),))),
    ),
    # RFC 9112 §2.2: a recipient MAY take a bare LF as a line terminator
    # (h11 and httparse do). Pinned: rejected, as this server documents
    # (proto/h1/_parse.py) and DESIGN.md requires ("ambiguity that enables
    # request smuggling is rejected, never guessed"): a proxy in front that
    # disagrees about LF would see different messages than we do.
    Case(
        "bare_lf_line_endings",
        b"GET / HTTP/1.1\nHost: example.test\nConnection: close\n\n",
        reject(400),
    ),
    Case(
        "bare_lf_mixed_with_crlf",
        b"GET / HTTP/1.1\r\nHost: example.test\nConnection: close\r\n\r\n",
        reject(400),
    ),
    # Limits (RFC 6585 §5: 431 when the field section or one field is too
    # large). Defaults from hyper: max_buf_size 417,792 bytes, max_headers 100.
    Case(
        "long_value_64k_accepted",
        get(b"/", b"X-Long: " + b"v" * 65536),
        serve(Seen("GET", "/", headers=((b"x-long", b"v" * 65536),))),
    ),
    Case("field_section_over_max_buf_size", get(b"/", *many_fields(50, 9000)), reject(431)),
    Case("single_value_over_max_buf_size", get(b"/", b"X-Huge: " + b"v" * 420_000), reject(431)),
    # hyper: a field name of 64 KiB or more is TooLarge -> 431.
    Case("name_64k", get(b"/", b"X" * 65536 + b": v"), reject(431)),
    # Host + Connection + 99 fields = 101 > 100.
    Case("fields_over_max_headers_default", get(b"/", *many_fields(99)), reject(431)),
    Case(
        "fields_at_max_headers_default",
        get(b"/", *many_fields(98)),
        serve(GET_ROOT),
    ),
    Case(
        "fields_at_max_headers_10",
        get(b"/", *many_fields(8)),
        serve(GET_ROOT),
        options={"max_headers": 10},
    ),
    Case(
        "fields_over_max_headers_10",
        get(b"/", *many_fields(9)),
        reject(431),
        options={"max_headers": 10},
    ),
    # Each element of the head has its own bound (Builder options; see
    # docs/guides/http1-parsing.md): 501 for the method, 414 for the target,
    # 431 for a name or a value.
    Case(
        "method_over_max_method_size",
        msg(b"LONGMETHOD / HTTP/1.1", HOST[:-2]),
        reject(501),
        options={"max_method_size": 8},
    ),
    Case(
        "method_at_max_method_size",
        msg(b"LONGMETH / HTTP/1.1", HOST[:-2], CLOSE[:-2]),
        serve(Seen("LONGMETH", "/")),
        options={"max_method_size": 8},
    ),
    Case(
        "target_over_max_uri_size", get(b"/" + b"a" * 32), reject(414), options={"max_uri_size": 32}
    ),
    Case(
        "name_over_max_header_name_size",
        get(b"/", b"X-" + b"n" * 31 + b": v"),
        reject(431),
        options={"max_header_name_size": 32},
    ),
    Case(
        "value_over_max_header_value_size",
        get(b"/", b"X-Long: " + b"v" * 33),
        reject(431),
        options={"max_header_value_size": 32},
    ),
    Case(
        "value_at_max_header_value_size",
        get(b"/", b"X-Long: " + b"v" * 32),
        serve(Seen("GET", "/", headers=((b"x-long", b"v" * 32),))),
        options={"max_header_value_size": 32},
    ),
    Case(
        "head_under_max_buf_size_8192",
        get(b"/", b"X-Pad: " + b"p" * 7000),
        serve(GET_ROOT),
        options={"max_buf_size": 8192},
    ),
    Case(
        "head_over_max_buf_size_8192",
        get(b"/", b"X-Pad: " + b"p" * 9000),
        reject(431),
        options={"max_buf_size": 8192},
    ),
]

REQUEST_LINE_CASES = [
    # RFC 9110 §9.1 / RFC 9112 §3: method is a token, one SP each side of
    # the target; an invalid request line SHOULD get 400.
    Case("method_with_space", msg(b"GE T / HTTP/1.1", HOST[:-2]), reject(400)),
    Case("method_with_delimiter", msg(b"G@T / HTTP/1.1", HOST[:-2]), reject(400)),
    Case("method_empty", msg(b" / HTTP/1.1", HOST[:-2]), reject(400)),
    Case("method_non_ascii", msg(b"G\xc9T / HTTP/1.1", HOST[:-2]), reject(400)),
    # Methods are case-sensitive tokens (RFC 9110 §9.1): "get" is a valid,
    # unknown method, passed through unchanged; answering 501 for a method
    # it does not implement is the service's call, not the connection's.
    Case(
        "method_lowercase",
        msg(b"get / HTTP/1.1", HOST[:-2], CLOSE[:-2]),
        serve(Seen("get", "/")),
    ),
    Case(
        "method_extension",
        msg(b"PURGE /cache HTTP/1.1", HOST[:-2], CLOSE[:-2]),
        serve(Seen("PURGE", "/cache")),
    ),
    # RFC 9112 §3.2: no whitespace in the target; 400 (a 301 is the other
    # choice §3.2 gives, and needs a guess at the intended target).
    Case("target_with_space", msg(b"GET /a b HTTP/1.1", HOST[:-2]), reject(400)),
    Case("target_with_tab", msg(b"GET /a\tb HTTP/1.1", HOST[:-2]), reject(400)),
    Case("target_with_ctl", msg(b"GET /a\x01b HTTP/1.1", HOST[:-2]), reject(400)),
    Case("target_with_del", msg(b"GET /a\x7fb HTTP/1.1", HOST[:-2]), reject(400)),
    Case("target_with_nul", msg(b"GET /a\x00b HTTP/1.1", HOST[:-2]), reject(400)),
    Case("target_non_ascii", msg(b"GET /caf\xe9 HTTP/1.1", HOST[:-2]), reject(400)),
    Case("target_missing", msg(b"GET HTTP/1.1", HOST[:-2]), reject(400)),
    # RFC 9112 §3 lets a server parse on any whitespace; pinned strict
    # (hyper's default: allow_multiple_spaces_in_request_line_delimiters off).
    Case("request_line_double_space", msg(b"GET  / HTTP/1.1", HOST[:-2]), reject(400)),
    Case("request_line_trailing_space", msg(b"GET / HTTP/1.1 ", HOST[:-2]), reject(400)),
    Case("request_line_tabs", msg(b"GET\t/\tHTTP/1.1", HOST[:-2]), reject(400)),
    # RFC 9112 §3.2.2: a server MUST accept the absolute-form, and MUST
    # ignore Host in favour of the target's authority.
    Case(
        "absolute_form",
        get(b"http://example.test/p?q=1"),
        serve(Seen("GET", "http://example.test/p?q=1")),
    ),
    Case(
        "absolute_form_other_host",
        msg(b"GET http://example.test/p HTTP/1.1", b"Host: other.test", CLOSE[:-2]),
        serve(Seen("GET", "http://example.test/p")),
    ),
    # RFC 9112 §3.2.4: asterisk-form, for a server-wide OPTIONS.
    Case(
        "asterisk_form_options",
        msg(b"OPTIONS * HTTP/1.1", HOST[:-2], CLOSE[:-2]),
        serve(Seen("OPTIONS", "*")),
    ),
    # RFC 9112 §3: a target longer than the server wishes to parse MUST get
    # 414. hyper's limit: 65,534 bytes accepted, 65,535 refused.
    Case(
        "target_65534_accepted",
        get(b"/" + b"a" * 65533),
        serve(Seen("GET", "/" + "a" * 65533)),
    ),
    Case("target_65535_is_414", get(b"/" + b"a" * 65534), reject(414)),
    # Longer than the whole head buffer: the server cannot see the end of
    # the line, so 431 (head too large) is as right as 414.
    Case("target_over_max_buf_size", get(b"/" + b"a" * 500_000), reject(414, 431)),
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
    # the request line (hyper does).
    Case("leading_crlf", b"\r\n" + get(), serve(GET_ROOT)),
    Case(
        "crlf_between_pipelined_requests",
        msg(b"GET /first HTTP/1.1", HOST[:-2]) + b"\r\n" + SECOND,
        serve(Seen("GET", "/first"), GET_SECOND),
    ),
    # RFC 9112 §3.2: origin-form starts with "/"; "foo" is no form at all.
    Case("target_not_origin_form", msg(b"GET foo HTTP/1.1", HOST[:-2]), reject(400)),
    # RFC 9112 §3.2.3 / §3.2.4: authority-form is for CONNECT only, and
    # asterisk-form for OPTIONS only.
    Case("connect_origin_form", msg(b"CONNECT / HTTP/1.1", HOST[:-2]), reject(400)),
    Case("asterisk_form_with_get", msg(b"GET * HTTP/1.1", HOST[:-2]), reject(400)),
    Case("nul_before_request_line", b"\x00" + get(), reject(400)),
    # A TLS ClientHello on the plain port (a common misconfiguration) has no
    # CRLF to wait for. hyper answers 400 as soon as a byte cannot start a
    # method token; waiting for a line end would hold the connection until
    # header_read_timeout.
    Case(
        "tls_client_hello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xaa" * 32,
        reject(400),
    ),
    Case("missing_request_line", msg(b"Host: example.test", b"Connection: close"), reject(400)),
    Case("garbage_request", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", reject(400)),
]

HOST_CASES = [
    # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request with no
    # Host, with more than one Host line, or with an invalid Host value.
    Case("host_missing", msg(b"GET / HTTP/1.1", CLOSE[:-2]), reject(400)),
    Case(
        "host_twice",
        msg(b"GET / HTTP/1.1", HOST[:-2], b"Host: other.test", CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_twice_same_value",
        msg(b"GET / HTTP/1.1", HOST[:-2], HOST[:-2], CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_twice_different_name_case",
        msg(b"GET / HTTP/1.1", b"host: example.test", b"HOST: other.test", CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_list",
        msg(b"GET / HTTP/1.1", b"Host: example.test, other.test", CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_with_path",
        msg(b"GET / HTTP/1.1", b"Host: example.test/evil", CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_with_space",
        msg(b"GET / HTTP/1.1", b"Host: exa mple.test", CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_with_userinfo",
        msg(b"GET / HTTP/1.1", b"Host: user@example.test", CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_bad_port",
        msg(b"GET / HTTP/1.1", b"Host: example.test:80a", CLOSE[:-2]),
        reject(400),
    ),
    Case(
        "host_with_port",
        msg(b"GET / HTTP/1.1", b"Host: example.test:8080", CLOSE[:-2]),
        serve(GET_ROOT),
    ),
    Case("host_ipv6", msg(b"GET / HTTP/1.1", b"Host: [::1]:8080", CLOSE[:-2]), serve(GET_ROOT)),
    # RFC 9110 §7.2: an empty Host is what a client sends when the target
    # URI has no authority: valid.
    Case("host_empty", msg(b"GET / HTTP/1.1", b"Host:", CLOSE[:-2]), serve(GET_ROOT)),
    # Host is required from HTTP/1.1 on; HTTP/1.0 closes by default.
    Case("http10_without_host", msg(b"GET / HTTP/1.0"), serve(GET_ROOT)),
]

VERSION_CASES = [
    # RFC 9110 §15.6.6: 505 for a major version the server does not
    # support. An HTTP/2 preface or HTTP/2.0 line to an HTTP/1 server: 505
    # (hyper closes silently on the preface; both are accepted there).
    Case("version_2_0", get(version=b"HTTP/2.0"), reject(505)),
    Case("version_3_0", get(version=b"HTTP/3.0"), reject(505)),
    Case("version_0_9", get(version=b"HTTP/0.9"), reject(505)),
    Case(
        "h2_prior_knowledge_preface",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        reject(400, 505, silent_ok=True),
    ),
    # RFC 9110 §2.5: a higher minor version of a major version the server
    # implements SHOULD be processed as the highest it supports (1.1);
    # hyper (httparse knows only 1.0 and 1.1) answers 505. Either, but no
    # third thing.
    Case("version_1_2", get(version=b"HTTP/1.2"), one_of(serve(GET_ROOT), reject(505))),
    # No HTTP-version at all (an HTTP/0.9 simple request): the request line
    # is malformed (400); 505 says the same thing and is accepted too.
    Case("version_missing_http09_simple", b"GET /\r\n\r\n", reject(400, 505)),
    # Not an HTTP-version by the grammar (HTTP-name is case-sensitive,
    # DIGIT "." DIGIT): a malformed request line, 400. A server reading
    # "1.10" as a version it lacks could say 505; accepted for that row.
    Case("version_lowercase_name", get(version=b"http/1.1"), reject(400)),
    Case("version_garbage", get(version=b"HTTX/1.1"), reject(400)),
    Case("version_no_minor", get(version=b"HTTP/1"), reject(400, 505)),
    Case("version_two_digit_minor", get(version=b"HTTP/1.10"), reject(400, 505)),
]

EOF_CASES = [
    # A connection that never sends a request ends quietly.
    Case("eof_without_request", b"", silent(), eof=True),
    Case("eof_after_empty_line", b"\r\n", reject(400, silent_ok=True), eof=True),
    # RFC 9112 §8: on an incomplete request a server MAY answer an error
    # before closing; the service is never called with a partial head.
    Case("eof_mid_request_line", b"GET / HT", reject(400, silent_ok=True), eof=True),
    Case(
        "eof_mid_headers",
        b"GET / HTTP/1.1\r\nHost: exa",
        reject(400, silent_ok=True),
        eof=True,
    ),
    Case(
        "eof_before_blank_line",
        b"GET / HTTP/1.1\r\nHost: example.test\r\n",
        reject(400, silent_ok=True),
        eof=True,
    ),
    # A body cut short is never passed off as complete.
    Case("eof_mid_cl_body", post(b"Content-Length: 10", body=b"hello"), refuse(), eof=True),
    Case(
        "eof_mid_chunk",
        post(b"Transfer-Encoding: chunked", body=b"5\r\nhel"),
        refuse(),
        eof=True,
    ),
    Case(
        "eof_before_last_chunk",
        post(b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n"),
        refuse(),
        eof=True,
    ),
    Case(
        "eof_mid_trailers",
        post(b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n"),
        refuse(),
        eof=True,
    ),
]

EXPECT_AND_PIPELINE_CASES = [
    # RFC 9110 §10.1.1: an expectation other than 100-continue MAY get 417;
    # a server that ignores it serves the request.
    Case(
        "expect_unknown",
        post(b"Expect: a-pony", b"Content-Length: 5", b"Connection: close", body=b"hello"),
        one_of(reject(417), serve(POST_HELLO)),
    ),
    # RFC 9110 §10.1.1: 100-continue in an HTTP/1.0 request MUST be ignored.
    Case(
        "expect_100_in_http10",
        post(
            b"Expect: 100-continue",
            b"Content-Length: 5",
            body=b"hello",
            start=b"POST / HTTP/1.0",
        ),
        serve(POST_HELLO),
    ),
    # The body is already on the wire; a 100 Continue before the 200 is
    # allowed (written when the service reads the body), nothing else.
    Case(
        "expect_100_continue",
        post(b"Expect: 100-continue", b"Content-Length: 5", b"Connection: close", body=b"hello"),
        serve(POST_HELLO, interim=(100,)),
    ),
    # Expectation values compare case-insensitively.
    Case(
        "expect_100_continue_mixed_case",
        post(b"Expect: 100-Continue", b"Content-Length: 5", b"Connection: close", body=b"hello"),
        serve(POST_HELLO, interim=(100,)),
    ),
    # RFC 9110 §10.1.1: a server MAY omit the 100 when the framing says there
    # is no content; pinned: omitted, as hyper does.
    Case(
        "expect_100_zero_length_body",
        post(b"Expect: 100-continue", b"Content-Length: 0", b"Connection: close"),
        serve(POST_EMPTY),
    ),
    # RFC 9110 §7.8: a server MAY ignore Upgrade; without upgrades enabled
    # it must, and serve the request as HTTP/1.1.
    Case(
        "upgrade_h2c_ignored",
        msg(
            b"GET / HTTP/1.1",
            HOST[:-2],
            b"Upgrade: h2c",
            b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA",
            b"Connection: Upgrade, HTTP2-Settings, close",
        ),
        serve(GET_ROOT),
    ),
    # Pipelined requests are answered in order; a bad one ends the
    # connection after the good ones before it were answered.
    Case(
        "pipelined_three",
        msg(b"GET /a HTTP/1.1", HOST[:-2]) + msg(b"GET /b HTTP/1.1", HOST[:-2]) + SECOND,
        serve(Seen("GET", "/a"), Seen("GET", "/b"), GET_SECOND),
    ),
    Case(
        "pipelined_burst_100",
        b"".join(msg(b"GET /p%d HTTP/1.1" % n, HOST[:-2]) for n in range(99)) + SECOND,
        serve(*(Seen("GET", f"/p{n}") for n in range(99)), GET_SECOND),
    ),
    # max_buf_size bounds one head, not the pipelined bytes read ahead: 300
    # small requests (~14 KiB) all get served with an 8 KiB limit.
    Case(
        "pipelined_burst_over_max_buf_size",
        b"".join(msg(b"GET /p%d HTTP/1.1" % n, HOST[:-2]) for n in range(300)) + SECOND,
        serve(*(Seen("GET", f"/p{n}") for n in range(300)), GET_SECOND),
        options={"max_buf_size": 8192},
    ),
    Case(
        "pipelined_bodies",
        post(b"Content-Length: 5", body=b"hello")
        + post(b"Transfer-Encoding: chunked", body=HELLO_CHUNKED)
        + SECOND,
        serve(POST_HELLO, POST_HELLO, GET_SECOND),
    ),
    Case(
        "pipelined_then_malformed",
        msg(b"GET /a HTTP/1.1", HOST[:-2]) + msg(b"GE T / HTTP/1.1", HOST[:-2]) + SMUGGLED,
        serve(Seen("GET", "/a"), then=(400,)),
    ),
    Case(
        "pipelined_then_cl_and_te",
        msg(b"GET /a HTTP/1.1", HOST[:-2])
        + post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED),
        one_of(
            serve(Seen("GET", "/a"), then=(400,)),
            serve(Seen("GET", "/a"), Seen("POST", "/", absent=(b"content-length",))),
        ),
    ),
    # RFC 9112 §9.6: after "close" the server MUST NOT process more requests.
    Case(
        "connection_close_stops_pipeline",
        msg(b"GET /a HTTP/1.1", HOST[:-2], CLOSE[:-2]) + AFTER_CLOSE,
        serve(Seen("GET", "/a")),
    ),
    # Connection options are case-insensitive tokens in a list.
    Case(
        "connection_close_in_list",
        msg(b"GET /a HTTP/1.1", HOST[:-2], b"Connection: keep-alive, CLOSE") + AFTER_CLOSE,
        serve(Seen("GET", "/a")),
    ),
    # RFC 9112 §9.3: HTTP/1.0 without keep-alive is not persistent.
    Case(
        "http10_closes_by_default",
        msg(b"GET /a HTTP/1.0") + AFTER_CLOSE,
        serve(Seen("GET", "/a")),
    ),
    # HTTP/1.0 keep-alive is optional (RFC 9112 Appendix C.2.2; hyper keeps
    # it, h11 does not); either way no request is lost or invented.
    Case(
        "http10_keep_alive_pipelined",
        msg(b"GET /a HTTP/1.0", b"Connection: keep-alive") + msg(b"GET /second HTTP/1.0"),
        one_of(serve(Seen("GET", "/a")), serve(Seen("GET", "/a"), GET_SECOND)),
    ),
]

CASES = [
    *FRAMING_CASES,
    *TRANSFER_ENCODING_CASES,
    *CHUNKED_BODY_CASES,
    *FIELD_CASES,
    *REQUEST_LINE_CASES,
    *HOST_CASES,
    *VERSION_CASES,
    *EOF_CASES,
    *EXPECT_AND_PIPELINE_CASES,
]


# -- the recording service ---------------------------------------------------


@dataclass
class Record:
    """What the service was called with; ``body`` stays None unless it arrived complete."""

    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes | None = None
    trailers: list[tuple[bytes, bytes]] | None = None
    body_error: HyperError | None = None

    def summary(self) -> bytes:
        """The response body the service answers with."""
        length = -1 if self.body is None else len(self.body)
        return f"{self.method} {self.target} {length}".encode("latin-1")


class Recorder:
    """An echo-ish service that records each request before reading its body."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def service(self, request: Request[Incoming]) -> Response[Body]:
        record = Record(str(request.method), str(request.uri), list(request.headers.raw()))
        self.records.append(record)
        try:
            collected = await collect(request.body)
        except HyperError as exc:
            record.body_error = exc
            raise
        record.body = collected.data
        if collected.trailers is not None:
            record.trailers = list(collected.trailers.raw())
        return Response(200, headers=[("content-type", "text/plain")], body=Full(record.summary()))


# -- the client side ---------------------------------------------------------


@dataclass
class RawResponse:
    """A response as it came off the wire."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2}) [\t\x20-\x7e\x80-\xff]*")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_responses(data: bytes) -> tuple[list[RawResponse], str | None]:
    """Split what the server sent into responses, strictly (CRLF only, sane framing).

    Returns the responses and, if the bytes did not parse to the end, why.
    """
    responses: list[RawResponse] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return responses, f"incomplete or malformed head at byte {pos}: {data[pos:][:200]!r}"
        lines = data[pos:end].split(b"\r\n")
        pos = end + 4
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            return responses, f"bad status line {lines[0][:200]!r}"
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name) or b"\n" in value or b"\r" in value:
                return responses, f"bad header line {line[:200]!r}"
            headers.append((name.lower(), value.strip(b" \t")))
        status = int(status_line.group(1))
        fields = dict(headers)
        if status < 200 or status in (204, 304):
            body = b""
        elif b"transfer-encoding" in fields:
            if fields[b"transfer-encoding"].lower() != b"chunked" or b"content-length" in fields:
                return responses, f"bad response framing {headers!r}"
            chunks: list[bytes] = []
            while True:
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    return responses, "incomplete chunked response body"
                size = int(data[pos:line_end].split(b";")[0], 16)
                pos = line_end + 2
                if size == 0:
                    trailer_end = data.find(b"\r\n", pos)
                    while trailer_end > pos:  # skip trailer fields up to the blank line
                        pos = trailer_end + 2
                        trailer_end = data.find(b"\r\n", pos)
                    if trailer_end < 0:
                        return responses, "incomplete chunked trailers"
                    pos = trailer_end + 2
                    break
                chunks.append(data[pos : pos + size])
                if data[pos + size : pos + size + 2] != b"\r\n":
                    return responses, "bad chunk in response body"
                pos += size + 2
            body = b"".join(chunks)
        elif b"content-length" in fields:
            length = int(fields[b"content-length"])
            if pos + length > len(data):
                return responses, f"response body shorter than its Content-Length {length}"
            body, pos = data[pos : pos + length], pos + length
        else:
            body, pos = data[pos:], len(data)
        responses.append(RawResponse(status, headers, body))
    return responses, None


@dataclass
class Exchange:
    """What the client saw: bytes received and how the connection ended."""

    received: bytearray = field(default_factory=bytearray)
    closed: bool = False
    reset: bool = False


async def talk(
    port: int,
    data: bytes,
    *,
    eof: bool,
    into: Exchange,
    piece: int = 65536,
    delay: float = 0.0,
) -> None:
    """Send ``data`` while reading everything the server sends until it closes.

    ``data`` goes out ``piece`` bytes per send, with a scheduling point (or
    ``delay`` seconds) between sends, so small pieces reach the server in
    separate reads.
    """
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:

        async def send_all() -> None:
            try:
                for start in range(0, len(data), piece):
                    await stream.send(data[start : start + piece])
                    if piece < len(data):
                        await anyio.sleep(delay)
                if eof:
                    await stream.send_eof()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the server may close before reading all of a hostile request

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_all)
            while True:
                try:
                    into.received += await stream.receive()
                except anyio.EndOfStream:
                    into.closed = True
                    break
                except anyio.BrokenResourceError:
                    # A reset: the server closed with unread input. Any
                    # response still in flight may have been lost with it.
                    into.closed = into.reset = True
                    break
            tg.cancel_scope.cancel()


# -- judging -----------------------------------------------------------------


def _field(fields: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in fields if key.lower() == name]


def _check_seen(expected: Seen, record: Record) -> list[str]:
    problems = []
    if (record.method, record.target) != (expected.method, expected.target):
        problems.append(
            f"service saw {record.method} {record.target[:80]}, expected "
            f"{expected.method} {expected.target[:80]}"
        )
    if record.body != expected.body:
        problems.append(
            f"{expected.target[:80]}: body {record.body!r:.200}, expected "
            f"{expected.body!r} (body error: {record.body_error!r})"
        )
    for name, value in expected.headers:
        if _field(record.headers, name) != [value]:
            problems.append(
                f"{expected.target[:80]}: field {name!r} is "
                f"{_field(record.headers, name)!r:.200}, expected [{value!r:.80}]"
            )
    problems.extend(
        f"{expected.target[:80]}: field {name!r} reached the service"
        for name in expected.absent
        if _field(record.headers, name)
    )
    if expected.trailers is not None:
        got = [(name.lower(), value) for name, value in record.trailers or []]
        if got != list(expected.trailers):
            problems.append(f"trailers {got!r}, expected {list(expected.trailers)!r}")
    return problems


def _judge_one(
    expect: Reject | Refuse | Serve,
    responses: list[RawResponse],
    records: list[Record],
    reset: bool,
) -> list[str]:
    interim = [r.status for r in responses if r.status < 200]
    finals = [r for r in responses if r.status >= 200]
    statuses = [r.status for r in finals]
    lost = " (connection reset: a response may have been lost, see RFC 9112 §9.6)" if reset else ""
    if isinstance(expect, Serve):
        problems = []
        if len(records) != len(expect.requests):
            problems.append(f"service called {len(records)} times, expected {len(expect.requests)}")
        for seen, record in zip(expect.requests, records, strict=False):
            problems += _check_seen(seen, record)
        served, rest = finals[: len(expect.requests)], finals[len(expect.requests) :]
        if [r.status for r in served] != [200] * len(expect.requests):
            problems.append(f"statuses {statuses}, expected {len(expect.requests)} x 200{lost}")
        elif [r.body for r in served] != [rec.summary() for rec in records]:
            problems.append(
                f"responses out of order or not the service's: {[r.body[:60] for r in served]}"
            )
        if expect.then and not (len(rest) == 1 and rest[0].status in expect.then):
            problems.append(
                f"after the served requests expected one of {sorted(expect.then)}, "
                f"got {[r.status for r in rest]}{lost}"
            )
        elif not expect.then and rest:
            problems.append(f"extra responses {[r.status for r in rest]}")
        if not set(interim) <= expect.interim:
            problems.append(f"unexpected interim responses {interim}")
        return problems
    problems = []
    if interim:
        problems.append(f"unexpected interim responses {interim}")
    if isinstance(expect, Reject) and records:
        problems.append(f"service was called: {[(r.method, r.target[:80]) for r in records]}")
    if isinstance(expect, Refuse) and any(r.body is not None for r in records):
        problems.append(
            "an incomplete or broken body reached the service as complete: "
            f"{[r.body[:80] for r in records if r.body is not None]}"
        )
    silent_ok = expect.silent_ok if isinstance(expect, Reject) else True
    if not finals and not silent_ok:
        problems.append(f"closed without a response, expected {sorted(expect.statuses)}{lost}")
    elif finals and (len(finals) > 1 or finals[0].status not in expect.statuses):
        want = sorted(expect.statuses) or "no response"
        problems.append(f"statuses {statuses}, expected {want}")
    return problems


def judge(case: Case, exchange: Exchange, records: list[Record]) -> list[str]:
    """Everything wrong with what happened, as readable lines; empty when the row passes."""
    problems = []
    responses, unparsed = parse_responses(bytes(exchange.received))
    if unparsed is not None:
        problems.append(f"unparseable response bytes: {unparsed}")
    problems.extend(
        f"DESYNC: {record.method} {record.target} reached the service"
        for record in records
        if record.target.startswith(NEVER_SERVED) or "/smuggled" in record.target
    )
    choices = case.expect.choices if isinstance(case.expect, OneOf) else (case.expect,)
    verdicts = [_judge_one(choice, responses, records, exchange.reset) for choice in choices]
    if all(verdicts):
        if len(verdicts) == 1:
            problems += verdicts[0]
        else:
            for choice, verdict in zip(choices, verdicts, strict=True):
                problems.append(f"not {type(choice).__name__}: " + "; ".join(verdict))
    return problems


def _describe(exchange: Exchange, records: list[Record]) -> str:
    seen = [
        (r.method, r.target[:60], r.body if r.body is None else r.body[:60], r.body_error)
        for r in records
    ]
    return f"\n  received: {bytes(exchange.received)[:600]!r}\n  service saw: {seen}"


def test_table_is_large_and_ids_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60


async def play(case: Case, serve_h1: ServeH1, piece: int) -> None:
    """Send one row to a fresh server and assert its outcome."""
    recorder = Recorder()
    exchange = Exchange()
    async with serve_h1(recorder.service, **case.options) as server:
        with anyio.move_on_after(ANSWER_TIMEOUT):
            await talk(server.port, case.raw, eof=case.eof, into=exchange, piece=piece)
        with anyio.move_on_after(SERVER_END_TIMEOUT) as scope:
            await server.next_outcome()
        server_finished = not scope.cancelled_caught
        foreign = server.foreign_errors()

    problems = []
    if not exchange.closed:
        problems.append(f"HANG: the server neither closed nor finished within {ANSWER_TIMEOUT}s")
    problems += judge(case, exchange, recorder.records)
    if not server_finished:
        problems.append(
            f"the server connection was still running {SERVER_END_TIMEOUT}s after the client closed"
        )
    problems += [f"foreign exception escaped serve_connection: {exc!r}" for exc in foreign]
    assert not problems, "\n".join(problems) + _describe(exchange, recorder.records)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_hostile_request(case: Case, serve_h1: ServeH1) -> None:
    await play(case, serve_h1, piece=65536)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_hostile_request_trickled(case: Case, serve_h1: ServeH1) -> None:
    """The same rows in tiny pieces: no verdict may depend on where the reads split.

    Small rows go one byte per read (a CRLF split between reads, a head that
    crosses a limit only after many reads); large ones 4 KiB at a time.
    """
    await play(case, serve_h1, piece=1 if len(case.raw) <= 4096 else 4096)


# -- header_read_timeout (hyper: the head must be complete in time, and the
# same clock is the idle keep-alive timeout). RFC 9110 §15.5.9: closing may
# be preceded by a 408; both are accepted.

HEADER_TIMEOUT = 0.5  # seconds, short so the tests are quick


async def _timed_exchange(
    serve_h1: ServeH1, data: bytes, *, piece: int = 65536, delay: float = 0.0
) -> tuple[float, Exchange, list[Record]]:
    recorder = Recorder()
    exchange = Exchange()
    async with serve_h1(recorder.service, header_read_timeout=HEADER_TIMEOUT) as server:
        started = anyio.current_time()
        with anyio.move_on_after(ANSWER_TIMEOUT):
            await talk(server.port, data, eof=False, into=exchange, piece=piece, delay=delay)
        elapsed = anyio.current_time() - started
    return elapsed, exchange, recorder.records


async def test_silent_client_is_closed_after_header_read_timeout(serve_h1: ServeH1) -> None:
    elapsed, exchange, records = await _timed_exchange(serve_h1, b"")
    responses, unparsed = parse_responses(bytes(exchange.received))
    assert exchange.closed
    assert HEADER_TIMEOUT * 0.9 <= elapsed < HEADER_TIMEOUT + 2.5
    assert unparsed is None
    assert [r.status for r in responses] in ([], [408])
    assert records == []


async def test_trickling_head_is_closed_after_header_read_timeout(serve_h1: ServeH1) -> None:
    # One byte every 50 ms: bytes keep coming, but the head would take ~4 s.
    head = get(b"/slow", b"X-Pad: " + b"p" * 20)
    elapsed, exchange, records = await _timed_exchange(serve_h1, head, piece=1, delay=0.05)
    responses, unparsed = parse_responses(bytes(exchange.received))
    assert exchange.closed
    assert elapsed < HEADER_TIMEOUT + 2.5, "the timeout restarted on every byte"
    assert unparsed is None
    assert [r.status for r in responses] in ([], [408])
    assert records == []


async def test_idle_keep_alive_connection_is_closed_after_header_read_timeout(
    serve_h1: ServeH1,
) -> None:
    elapsed, exchange, records = await _timed_exchange(serve_h1, msg(b"GET /a HTTP/1.1", HOST[:-2]))
    responses, unparsed = parse_responses(bytes(exchange.received))
    assert exchange.closed
    assert HEADER_TIMEOUT * 0.9 <= elapsed < HEADER_TIMEOUT + 2.5
    assert unparsed is None
    assert [r.status for r in responses] in ([200], [200, 408])
    assert [r.target for r in records] == ["/a"]


async def test_server_serves_others_alongside_hostile_connections(serve_h1: ServeH1) -> None:
    """Every rejected row at once, plus a client stalled mid-head, never block a good request."""
    recorder = Recorder()
    hostile = [c for c in CASES if isinstance(c.expect, Reject) and not (c.options or c.eof)]
    good = Exchange()
    async with serve_h1(recorder.service) as server:
        stalled = await anyio.connect_tcp("127.0.0.1", server.port)
        async with stalled, anyio.create_task_group() as tg:
            await stalled.send(b"GET / HTTP/1.1\r\nHost: exa")
            for case in hostile:
                tg.start_soon(partial(talk, server.port, case.raw, eof=False, into=Exchange()))
            with anyio.move_on_after(ANSWER_TIMEOUT):
                await talk(server.port, get(b"/good"), eof=False, into=good)
            tg.cancel_scope.cancel()
    responses, unparsed = parse_responses(bytes(good.received))
    assert unparsed is None
    assert [(r.status, r.body) for r in responses] == [(200, b"GET /good 0")]
    assert "/good" in [r.target for r in recorder.records]
