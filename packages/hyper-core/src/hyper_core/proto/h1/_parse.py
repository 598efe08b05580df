r"""Parsing HTTP/1 heads from a receive buffer.

What belongs here: the grammar (h11's ABNF, tightened where RFC 9110/9112
are stricter), the bounds on each element of a head (:class:`HeadLimits`),
head parsing into ``(start line, header pairs)`` (trailer sections use the
same field parser), and the early checks on a head still incomplete. The
body readers are in ``_body_readers.py``. No state machine and no framing
decisions: those live in ``_native_codec.py``.

Strategy:

* A head is parsed only once it is complete (``\r\n\r\n`` found), with
  one compiled regex for the start line, one ``fullmatch`` that validates
  the whole field block and one ``findall`` that extracts the pairs; all
  three run in C, which is most of why this is several times faster than
  parsing line by line. A request head goes faster still
  (:func:`parse_request_head`): one ``fullmatch`` validates the request line
  and every field line together, and one ``findall`` extracts the pairs.
  Only when validation fails does a slow path walk the lines to say
  precisely what is wrong.
* Line endings are CRLF only. A bare CR or a bare LF anywhere in a head is
  rejected, never guessed at (RFC 9112 section 2.2 lets a recipient accept a
  bare LF, but two parsers that disagree on it are a smuggling vector).
* Field values are VCHAR / obs-text with inner SP / HTAB (RFC 9110 section
  5.5); h11's grammar also lets other control bytes through, this one does
  not. Obsolete line folding is rejected unless the caller (a client reading
  responses) opted in, and then it is replaced by a single space.
"""

from __future__ import annotations

import re
from typing import Final

from hyper_core.error import ParseError

from ._events import HeaderList
from ._lenient import SPACED_FIELD_RE, check_droppable

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_URI_LENGTH",
    "HeadLimits",
    "check_no_bare_lf",
    "check_request_start",
    "parse_fields",
    "parse_request_head",
    "parse_request_line",
    "parse_status_line",
]

#: Longest request target, in bytes; longer gets 414 (hyper's limit, 65,534).
MAX_URI_LENGTH: Final = 65_534
#: Longest header name, in bytes; longer gets 431 (hyper: under 64 KiB).
MAX_HEADER_NAME: Final = 65_535
#: Longest header value, in bytes; longer gets 431.
MAX_HEADER_VALUE: Final = 65_536
#: Longest method token, in bytes; longer gets 501 (no method that long is
#: implemented anywhere: the longest registered one has 17 bytes).
MAX_METHOD: Final = 64
#: Longest reason phrase in a status line, in bytes.
MAX_REASON: Final = 8_192


class HeadLimits:
    """The bound on each element of a message head, in bytes.

    The whole head is bounded by ``max_buf_size`` and the field count by
    ``max_headers`` (codec options); the version is 8 bytes by grammar.
    What a server answers when a bound is crossed: 501 for the method
    (RFC 9110 section 9.1), 414 for the target (RFC 9112 section 3), 431
    for a name or a value (RFC 6585 section 5).

    Attributes:
        method: Longest method token (requests).
        target: Longest request target (requests).
        name: Longest field name (heads and trailers).
        value: Longest field value (heads and trailers).
        reason: Longest reason phrase (responses).
    """

    __slots__ = ("method", "name", "reason", "shortest", "target", "value")

    def __init__(
        self,
        *,
        method: int = MAX_METHOD,
        target: int = MAX_URI_LENGTH,
        name: int = MAX_HEADER_NAME,
        value: int = MAX_HEADER_VALUE,
        reason: int = MAX_REASON,
    ) -> None:
        for what, bound in (
            ("method", method),
            ("target", target),
            ("name", name),
            ("value", value),
            ("reason", reason),
        ):
            if bound < 1:
                raise ValueError(f"the {what} bound must be at least 1 byte")
        self.method = method
        self.target = target
        self.name = name
        self.value = value
        self.reason = reason
        # A field block no longer than this cannot hold a name or a value
        # over its bound: the per-field check is skipped (the usual case).
        self.shortest = min(name, value)

    def __repr__(self) -> str:
        return (
            f"HeadLimits(method={self.method}, target={self.target}, name={self.name}, "
            f"value={self.value}, reason={self.reason})"
        )


#: The bounds a codec uses when none are given.
DEFAULT_LIMITS: Final = HeadLimits()

# Grammar: h11's _abnf.py, tightened as described in the module docstring.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_FIELD_VALUE = rb"(?:" + _FIELD_VCHAR + rb"+(?:[ \t]+" + _FIELD_VCHAR + rb"+)*)?"
_FIELD_LINE = rb"(" + _TOKEN + rb"):[ \t]*(" + _FIELD_VALUE + rb")[ \t]*\r\n"
_FIELD_RE: Final = re.compile(_FIELD_LINE)
_FIELDS_BLOCK_RE: Final = re.compile(rb"(?:" + _FIELD_LINE + rb")*")
_REQUEST_LINE = rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])\r\n"
_REQUEST_LINE_RE: Final = re.compile(_REQUEST_LINE)
# allow_multiple_spaces_in_request_line_delimiters: SP runs between the parts
# (httparse's option: SP only, no other whitespace, none before the method).
_SPACED_REQUEST_LINE_RE: Final = re.compile(
    rb"(" + _TOKEN + rb") +([\x21-\x7e]+) +HTTP/([0-9]\.[0-9])\r\n"
)
# A whole valid request head in one match: the request line (its three
# groups captured) and field lines that are only validated (no groups, which
# the regex engine would otherwise record for every repetition).
_REQUEST_HEAD_RE: Final = re.compile(
    _REQUEST_LINE + rb"(?:" + _TOKEN + rb":[ \t]*" + _FIELD_VALUE + rb"[ \t]*\r\n)*"
)
_STATUS_LINE_RE: Final = re.compile(
    rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ([ \t\x21-\x7e\x80-\xff]*))?\r\n"
)
_TOKEN_RE: Final = re.compile(_TOKEN)


def parse_request_line(
    block: bytes, limits: HeadLimits = DEFAULT_LIMITS, *, multiple_spaces: bool = False
) -> tuple[bytes, bytes, bytes, int]:
    """Parse a request line at the start of ``block``.

    ``multiple_spaces`` (off by default) accepts runs of SP between the three
    parts (hyper's ``allow_multiple_spaces_in_request_line_delimiters``).

    Returns:
        ``(method, target, version, end)``; ``end`` is where fields start.

    Raises:
        ParseError: not a valid request line (400; 414 for a long target,
            501 for a long method).
    """
    m = _REQUEST_LINE_RE.match(block)
    if m is None and multiple_spaces:
        m = _SPACED_REQUEST_LINE_RE.match(block)
    if m is None:
        line = block.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        if len(parts[0]) > limits.method and _TOKEN_RE.fullmatch(parts[0]):
            raise ParseError("request method is too long", status_hint=501)
        if len(parts) >= 2 and len(parts[1]) > limits.target:
            raise ParseError("request target is too long", status_hint=414)
        raise ParseError(_describe_bad_line("request", line), status_hint=400)
    method, target, version = m.groups()
    if len(method) > limits.method:
        raise ParseError("request method is too long", status_hint=501)
    if len(target) > limits.target:
        raise ParseError("request target is too long", status_hint=414)
    return method, target, version, m.end()


def parse_request_head(
    block: bytes, max_fields: int, limits: HeadLimits = DEFAULT_LIMITS
) -> tuple[bytes, bytes, bytes, HeaderList] | None:
    """Parse a whole request head (start line and fields) that is valid and ordinary.

    The server's hot path: one regex validates the whole block and one
    ``findall`` extracts the fields. It answers only for a head that
    :func:`parse_request_line` and :func:`parse_fields` would accept, with an
    HTTP/1.1 or HTTP/1.0 version, and returns None for anything else (a
    malformed or unusual head, or one that breaks a limit), so that the
    caller runs those two, which say precisely what is wrong, in their usual
    order.

    Returns:
        ``(method, target, version, fields)``, or None.
    """
    # The count first: a head with too many fields is refused before any
    # regex runs over it (431, from parse_fields on the slow path).
    # A block longer than the smallest field bound may hold a field over its
    # bound: the slow path checks each one.
    if block.count(b"\r\n") > max_fields + 1 or len(block) > limits.shortest:
        return None
    m = _REQUEST_HEAD_RE.fullmatch(block)
    if m is None:
        return None
    method, target, version = m.groups()
    if (
        (version != b"1.1" and version != b"1.0")
        or len(target) > limits.target
        or len(method) > limits.method
    ):
        return None
    fields: HeaderList = _FIELD_RE.findall(block, m.end(3) + 2)
    return method, target, version, fields


def parse_status_line(
    block: bytes, limits: HeadLimits = DEFAULT_LIMITS
) -> tuple[bytes, int, bytes, int]:
    """Parse a status line at the start of ``block``.

    Returns:
        ``(version, status, reason, end)``.

    Raises:
        ParseError: not a valid status line, a status below 100, or a reason
            phrase over its bound.
    """
    m = _STATUS_LINE_RE.match(block)
    if m is None:
        line = block.split(b"\r\n", 1)[0]
        raise ParseError(_describe_bad_line("status", line), status_hint=None)
    version, status_bytes, reason = m.groups()
    if reason is not None and len(reason) > limits.reason:
        raise ParseError("the reason phrase is too long", status_hint=None)
    status = int(status_bytes)
    if status < 100:
        raise ParseError(f"invalid status code {status_bytes!r}", status_hint=None)
    return version, status, reason or b"", m.end()


def _describe_bad_line(what: str, line: bytes) -> str:
    if b"\n" in line:
        return f"bare LF in the {what} line (CRLF required): {line[:100]!r}"
    if b"\r" in line:
        return f"bare CR in the {what} line: {line[:100]!r}"
    return f"invalid {what} line: {line[:100]!r}"


def parse_fields(
    block: bytes,
    start: int,
    max_fields: int,
    limits: HeadLimits = DEFAULT_LIMITS,
    *,
    allow_obs_fold: bool = False,
    ignore_invalid: bool = False,
    allow_space_before_colon: bool = False,
) -> HeaderList:
    """Parse the field lines in ``block[start:]`` (each ending in CRLF).

    The three lenient options (all off by default, and only looked at once
    the strict grammar refused the block) are described in ``_lenient.py``:
    ``allow_obs_fold`` unfolds obsolete line folding, ``ignore_invalid``
    drops invalid lines except those that touch framing, and
    ``allow_space_before_colon`` reads ``Name : value`` as ``Name: value``.

    Raises:
        ParseError: 431 for too many fields or a name or value over its
            bound, 400 for anything malformed (obs-fold, whitespace before a
            colon, CR, LF, NUL or other control bytes, an empty or invalid
            name).
    """
    if block.count(b"\r\n", start) > max_fields:
        raise ParseError(f"more than {max_fields} header fields", status_hint=431)
    if len(block) - start > limits.shortest:
        # Only a big block can hold a field over its bound; the bound is
        # checked on the raw lines first, so an over-long name is 431 even
        # when it also holds a byte that would make it a 400.
        _check_field_sizes(block, start, limits)
    if _FIELDS_BLOCK_RE.fullmatch(block, start) is not None:
        fields: HeaderList = _FIELD_RE.findall(block, start)
    else:
        fields = _parse_fields_slow(
            block, start, allow_obs_fold, ignore_invalid, allow_space_before_colon
        )
    return fields


def _check_field_sizes(block: bytes, start: int, limits: HeadLimits) -> None:
    for line in block[start:].split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):  # obs-fold: more of the value above
            if len(line.strip(b" \t")) > limits.value:
                raise ParseError(f"a header value over {limits.value} bytes", status_hint=431)
            continue
        colon = line.find(b":")
        name_length = colon if colon >= 0 else len(line)
        if name_length > limits.name:
            raise ParseError(f"a header name over {limits.name} bytes", status_hint=431)
        if colon >= 0 and len(line) - colon - 1 > limits.value:
            value = line[colon + 1 :].strip(b" \t")
            if len(value) > limits.value:
                raise ParseError(f"a header value over {limits.value} bytes", status_hint=431)


def _parse_fields_slow(
    block: bytes,
    start: int,
    allow_obs_fold: bool,
    ignore_invalid: bool = False,
    space_before_colon: bool = False,
) -> HeaderList:
    # Reached only for input the fast regexes refused: find the first bad
    # line and say what is wrong with it, or apply the lenient options.
    lines = block[start:].split(b"\r\n")
    del lines[-1]  # the block ends with CRLF
    fields: HeaderList = []
    previous: bytes | None = None  # the name part of the line before (ignore_invalid)
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if allow_obs_fold and fields and previous is fields[-1][0]:
                name, value = fields[-1]
                folded = line.strip(b" \t")
                try:
                    _check_value(folded)
                except ParseError:
                    if not ignore_invalid:
                        raise
                    previous = check_droppable(line, previous, "an invalid folded value")
                    continue
                fields[-1] = (name, value + b" " + folded if value else folded)
                continue
            if ignore_invalid:
                previous = check_droppable(line, previous, "obsolete line folding")
                continue
            if not allow_obs_fold:
                raise ParseError("obsolete line folding in a header field", status_hint=400)
            raise ParseError("continuation line before the first field", status_hint=400)
        m = _FIELD_RE.fullmatch(line + b"\r\n")
        if m is None and space_before_colon:
            m = SPACED_FIELD_RE.fullmatch(line + b"\r\n")
        if m is None:
            if ignore_invalid:
                previous = check_droppable(line, previous, _describe_bad_field(line))
                continue
            raise ParseError(_describe_bad_field(line), status_hint=400)
        previous = m.group(1)
        fields.append((previous, m.group(2)))
    return fields


def _check_value(value: bytes) -> None:
    if _FIELD_RE.fullmatch(b"x:" + value + b"\r\n") is None:
        raise ParseError(_describe_bad_field(b"x:" + value), status_hint=400)


def _describe_bad_field(line: bytes) -> str:
    colon = line.find(b":")
    if colon < 0:
        what = "a header line without a colon"
    elif colon == 0:
        what = "an empty header name"
    elif line[colon - 1 : colon] in (b" ", b"\t"):
        what = "whitespace between a header name and its colon"
    elif _TOKEN_RE.fullmatch(line, 0, colon) is None:
        what = "an invalid character in a header name"
    elif b"\x00" in line:
        what = "a NUL byte in a header value"
    elif b"\r" in line:
        what = "a bare CR in a header value"
    elif b"\n" in line:
        what = "a bare LF in a header"
    else:
        what = "a control character in a header value"
    return f"{what}: {line[:100]!r}"


_BARE_LF_RE: Final = re.compile(rb"(?<!\r)\n")


_METHOD_PREFIX_RE: Final = re.compile(_TOKEN + rb"(?: |\Z)|\Z")


def check_request_start(buf: bytearray) -> None:
    """Reject an incomplete request whose first bytes cannot start a method.

    A TLS ClientHello sent to a plain-HTTP port has no CRLF to wait for;
    answering 400 at the first byte that cannot be part of a method token
    beats holding the connection until the header read timeout.

    Raises:
        ParseError: the bytes so far cannot begin a request line (400).
    """
    if _METHOD_PREFIX_RE.match(buf, 0, min(len(buf), 64)) is None:
        raise ParseError("invalid request line: not an HTTP method", status_hint=400)


def check_no_bare_lf(buf: bytearray, start: int) -> None:
    """Reject an incomplete head holding a bare LF at or after ``start``.

    Called while a head is still incomplete, so a peer speaking bare-LF
    HTTP gets an error at once instead of waiting for a CRLFCRLF that will
    never come. ``start`` lets the caller scan only the new bytes.

    Raises:
        ParseError: a bare LF was found (400).
    """
    if _BARE_LF_RE.search(buf, max(start - 1, 0)) is not None:
        raise ParseError("bare LF in a message head (CRLF required)", status_hint=400)
