"""The lenient switches of the HTTP/1 codecs, line by line, on both codecs.

What belongs here: what ``ignore_invalid_headers``,
``allow_space_before_colon`` (``allow_spaces_after_header_name_in_responses``
on the client builder) and ``http09_responses`` do to a head, and what they
must never do (``_lenient.py`` states the rule): drop a line that could be
read as a framing field or Host, or change how a message that the strict
codec accepts is read. The builders' behaviour on the wire is in
``test_server_h1_options.py`` and ``test_client_h1_options.py``.

Strategy: codecs made with ``new_codec(..., impl=...)`` for both
implementations, fed raw bytes. The "changes nothing that is valid" property
runs over the differential harness's seed corpus and a few thousand of its
generated and mutated streams (fixed seeds), many with broken field lines.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

from hyper_core.error import ParseError
from hyper_core.proto.h1 import RequestHead, ResponseHead, Role, new_codec
from hyper_core.proto.h1._lenient import is_protected_name

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))

from h1diff.corpus import SEEDS
from h1diff.generate import RandomChooser, message_case, mutate
from h1diff.subjects import Case, run_native

IMPLS = ["native", "h11"]


def request_fields(impl: str, head: bytes, **options: Any) -> list[tuple[bytes, bytes]]:
    codec = new_codec(Role.SERVER, impl=impl, **options)
    codec.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n")
    event = codec.next_event()
    assert type(event) is RequestHead
    return event.headers[1:]


def response_fields(impl: str, head: bytes, **options: Any) -> list[tuple[bytes, bytes]]:
    codec = new_codec(Role.CLIENT, impl=impl, **options)
    codec.send_message(RequestHead(b"GET", b"/", b"1.1", [(b"host", b"a")]), b"")
    codec.receive_data(b"HTTP/1.1 200 OK\r\n" + head + b"content-length: 0\r\n\r\n")
    event = codec.next_event()
    assert type(event) is ResponseHead
    return event.headers[:-1]


DROPPED = [
    # (line, what remains of "X-A: 1 / line / X-B: 2")
    pytest.param(b"Bad Name: x", id="space-in-name"),
    pytest.param(b"X-Spaced : x", id="space-before-colon"),
    pytest.param(b"X-Ctl: a\x01b", id="control-byte"),
    pytest.param(b"X-Del: \x7f", id="del"),
    pytest.param(b"NoColon", id="no-colon"),
    pytest.param(b": empty", id="empty-name"),
    pytest.param(b"X-\xe9: 1", id="obs-text-name"),
    pytest.param(b"X-Hostname : h", id="a-name-that-contains-host"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("line", DROPPED)
def test_ignore_invalid_headers_drops_the_line(impl: str, line: bytes) -> None:
    head = b"X-A: 1\r\n" + line + b"\r\nX-B: 2\r\n"
    expected = [(b"X-A", b"1"), (b"X-B", b"2")]
    assert request_fields(impl, head, ignore_invalid_headers=True) == expected
    assert response_fields(impl, head, ignore_invalid_headers=True) == expected
    with pytest.raises(ParseError) as info:
        request_fields(impl, head)
    assert info.value.status_hint == 400
    with pytest.raises(ParseError):
        response_fields(impl, head)


REFUSED = [
    pytest.param(b"Content-Length : 0", id="cl-space-before-colon"),
    pytest.param(b"content-length\t: 0", id="cl-tab-before-colon"),
    pytest.param(b"Transfer-Encoding\x0b: chunked", id="te-vt"),
    pytest.param(b"Transfer-Encoding\xa0: chunked", id="te-nbsp"),
    pytest.param(b"Transfer_Encoding : chunked", id="te-underscore"),
    pytest.param(b"X-Transfer-Encoding-Y : chunked", id="te-inside-a-name"),
    pytest.param(b"Content-Length: 0\x01", id="cl-bad-value"),
    pytest.param(b"Transfer-Encoding chunked", id="te-no-colon"),
    pytest.param(b"Host : b", id="host"),
    pytest.param(b"X: a\x00", id="nul"),
    pytest.param(b"X: a\rb", id="bare-cr"),
    pytest.param(b"Content-Length: 0\r\n 1", id="cl-continued"),
    pytest.param(b"Transfer-Encoding : chunked\r\n x", id="bad-te-continued"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("line", REFUSED)
def test_lines_that_touch_framing_or_host_are_never_dropped(impl: str, line: bytes) -> None:
    head = b"X-A: 1\r\n" + line + b"\r\n"
    with pytest.raises(ParseError, match="never ignored") as info:
        request_fields(impl, head, ignore_invalid_headers=True)
    assert info.value.status_hint == 400
    with pytest.raises(ParseError, match="never ignored"):
        response_fields(impl, head, ignore_invalid_headers=True)


@pytest.mark.parametrize(
    ("name", "protected"),
    [
        (b"Content-Length", True),
        (b"CONTENT-LENGTH ", True),
        (b"content_length", True),
        (b"X-Content-Length-Y", True),
        (b"Transfer-Encoding\x0c", True),
        (b" transfer-encoding", True),
        (b"Host", True),
        (b"Ho st", True),
        (b"X-Forwarded-Host", False),
        (b"Content-Type", False),
        (b"Length", False),
        (b"", False),
    ],
)
def test_the_protected_names(name: bytes, protected: bool) -> None:
    assert is_protected_name(name) is protected


@pytest.mark.parametrize("impl", IMPLS)
def test_continuation_lines(impl: str) -> None:
    # Of a dropped line: dropped too. Of a valid field other than framing or
    # Host: dropped when obs-fold is not allowed, unfolded when it is (a
    # client switch). Before the first field: dropped.
    head = b"X y: 1\r\n folded\r\nX-A: 1\r\n more\r\nX-B: 2\r\n"
    fields = [(b"X-A", b"1"), (b"X-B", b"2")]
    assert request_fields(impl, head, ignore_invalid_headers=True) == fields
    assert response_fields(impl, b" lead\r\n" + head, ignore_invalid_headers=True) == fields
    got = response_fields(
        impl, b" lead\r\n" + head, ignore_invalid_headers=True, allow_obs_fold=True
    )
    assert got == [(b"X-A", b"1 more"), (b"X-B", b"2")]


@pytest.mark.parametrize("impl", IMPLS)
def test_space_before_colon_is_a_client_switch(impl: str) -> None:
    head = b"X-A \t: 1\r\nContent-Type : text/plain\r\n"
    assert response_fields(impl, head, allow_space_before_colon=True) == [
        (b"X-A", b"1"),
        (b"Content-Type", b"text/plain"),
    ]
    # A server never reads a request leniently this way (RFC 9112 section 5.1).
    with pytest.raises(ParseError) as info:
        request_fields(impl, head, allow_space_before_colon=True)
    assert info.value.status_hint == 400


@pytest.mark.parametrize("impl", IMPLS)
def test_a_spaced_content_length_frames_a_response(impl: str) -> None:
    codec = new_codec(Role.CLIENT, impl=impl, allow_space_before_colon=True)
    codec.send_message(RequestHead(b"GET", b"/", b"1.1", [(b"host", b"a")]), b"")
    codec.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nhi")
    assert type(codec.next_event()) is ResponseHead
    assert codec.their_body_length == 2


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("line", "accepted"),
    [
        (b"GET  /echo  HTTP/1.1", True),
        (b"GET /echo     HTTP/1.1", True),
        (b"GET\t/echo HTTP/1.1", False),  # SP only, as httparse
        (b" GET /echo HTTP/1.1", False),
        (b"GET /echo HTTP/1.1 ", False),
    ],
)
def test_multiple_spaces_in_a_request_line(impl: str, line: bytes, accepted: bool) -> None:
    def read(**options: Any) -> RequestHead:
        codec = new_codec(Role.SERVER, impl=impl, **options)
        codec.receive_data(line + b"\r\nHost: hyper.rs\r\n\r\n")
        event = codec.next_event()
        assert type(event) is RequestHead
        return event

    with pytest.raises(ParseError):
        read()
    if not accepted:
        with pytest.raises(ParseError):
            read(allow_multiple_spaces_in_request_line=True)
        return
    head = read(allow_multiple_spaces_in_request_line=True)
    assert (head.method, head.target, head.version) == (b"GET", b"/echo", b"1.1")
    assert head.headers == [(b"Host", b"hyper.rs")]


def test_http09_is_a_client_switch_of_the_native_codec() -> None:
    server = new_codec(Role.SERVER, impl="native", http09_responses=True)
    server.receive_data(b"hello\r\n\r\n")
    with pytest.raises(ParseError):
        server.next_event()
    with pytest.raises(ValueError, match="h11"):
        new_codec(Role.CLIENT, impl="h11", http09_responses=True)


# -- nothing valid changes ----------------------------------------------------------

LENIENT: dict[str, Any] = {
    "ignore_invalid_headers": True,
    "allow_space_before_colon": True,
    "allow_multiple_spaces_in_request_line": True,
}


def cases() -> list[Case]:
    chooser = RandomChooser(random.Random(20240611))
    made = [message_case(chooser) if i % 2 else mutate(chooser) for i in range(3000)]
    return [*SEEDS, *made]


@pytest.mark.parametrize("impl", IMPLS)
def test_the_switches_change_nothing_the_strict_codec_accepts(impl: str) -> None:
    accepted = refused = relaxed = 0
    for case in cases():
        strict = run_native(case, impl=impl)
        options = dict(LENIENT)
        if case.role == "response" and impl == "native":
            options["http09_responses"] = True
        lenient = run_native(case, impl=impl, **options)
        if strict.accepted:
            accepted += 1
            assert lenient == strict, f"{case!r}\n  strict:  {strict}\n  lenient: {lenient}"
            continue
        refused += 1
        # Refused strictly: the lenient reading may accept it, and then it
        # read at least as many messages; it never reads fewer.
        if lenient.accepted:
            relaxed += 1
            assert len(lenient.messages) >= len(strict.messages), case
    # The corpus exercised both sides, and the switches did relax something.
    assert accepted > 200
    assert refused > 500
    assert relaxed > 50
