"""What a received head says about its message: framing, keep-alive, upgrades.

What belongs here: the checks and decisions that read the header fields of a
parsed request or response head (RFC 9110 / RFC 9112 and hyper's rules),
as pure functions returning a small record. The codec's state machine
(``_native_codec.py``) applies the result.

Strategy: one pass over the fields. Only names whose length matches a field
that matters (``len()`` is cheap) are lower-cased and compared. Everything
that could let two parsers disagree on where a message ends is refused
(request smuggling, RFC 9112 section 6.3 and section 11.2):

* Content-Length must be digits only (no sign, no list on a request), at
  most u64::MAX - 2 like hyper's; repeated values are kept once when spelled
  the same, refused otherwise (``3`` and ``03`` too).
* Transfer-Encoding must end in ``chunked``, once; another coding before it
  is not supported (501); on HTTP/1.0 it is refused, and so is an empty
  value or list member. A response whose codings do not end in ``chunked``
  is read until close, unless it also has a Content-Length (refused).
* With both, Transfer-Encoding wins, Content-Length is removed, and the
  connection closes after the response.
* Host: exactly one on HTTP/1.1, and a valid ``uri-host [":" port]``.
* The target form must fit the method (authority-form for CONNECT only,
  ``*`` for OPTIONS only).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from hyper_core.error import ParseError

from ._events import HeaderList

__all__ = [
    "RequestInfo",
    "ResponseInfo",
    "read_request_fields",
    "read_response_fields",
    "request_framing",
]

# Lengths of the field names that matter: te (2), host (4), expect (6),
# upgrade (7), connection (10), content-length (14), transfer-encoding (17).
_REQUEST_NAME_LENGTHS: Final = frozenset((2, 4, 6, 7, 10, 14, 17))
_RESPONSE_NAME_LENGTHS: Final = frozenset((10, 14, 17))
# RFC 9110 section 7.2 / RFC 3986 section 3.2.2: uri-host [ ":" port ]; a
# comma (a sub-delim) is left out so that a list of hosts is refused.
_HOST_RE: Final = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)
# Host values that passed _HOST_RE: clients repeat the same few, and a set
# lookup is several times cheaper than the regex. Bounded so that hosts from
# untrusted input cannot grow it without limit; once full, new values are
# simply checked every time.
_VALID_HOSTS: set[bytes] = set()
_VALID_HOSTS_MAX: Final = 1024  # entries
#: Largest Content-Length accepted, in bytes (hyper: u64::MAX - 2).
MAX_CONTENT_LENGTH: Final = 2**64 - 3
_AUTHORITY_RE: Final = re.compile(rb"[^/?#@\s]+:[0-9]{1,5}")
_ABSOLUTE_RE: Final = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://")


class RequestInfo(NamedTuple):
    """What the fields of a request head decide."""

    fields: HeaderList  # duplicate / overridden Content-Length removed
    chunked: bool
    body_length: int  # when not chunked
    keep_alive: bool
    upgrade: bool  # CONNECT, or Upgrade on HTTP/1.1
    expect_continue: bool  # Expect: 100-continue that applies (1.1, non-empty body)
    te_trailers: bool  # TE: trailers


class ResponseInfo(NamedTuple):
    """What the fields of a final response head decide (before status rules)."""

    chunked: bool
    length: int | None  # Content-Length, when not chunked
    keep_alive: bool


def tokens(value: bytes) -> list[bytes]:
    """The lower-cased, non-empty members of a comma-separated field value."""
    return [t for t in (p.strip(b" \t").lower() for p in value.split(b",")) if t]


def _codings(value: bytes) -> list[bytes]:
    """The lower-cased members of a Transfer-Encoding value; none may be empty.

    RFC 9110 section 5.6.1 lets a recipient skip empty list members, but
    parsers disagree on what ``chunked,`` frames (llhttp reads it as not
    chunked, h11 refuses it), so an empty member is refused as h11 does.

    Raises:
        ParseError: an empty value or an empty member (400).
    """
    if value == b"chunked":
        return [value]
    codings = [p.strip(b" \t").lower() for p in value.split(b",")]
    if b"" in codings:
        raise ParseError(f"empty member in Transfer-Encoding {value[:40]!r}", status_hint=400)
    return codings


def read_request_fields(
    method: bytes, target: bytes, version: bytes, fields: HeaderList
) -> RequestInfo:
    """Check a request head's fields and decide its framing.

    Raises:
        ParseError: 400 (or 501 for an unsupported transfer coding).
    """
    return RequestInfo(*request_framing(method, target, version, fields))


def request_framing(
    method: bytes, target: bytes, version: bytes, fields: HeaderList
) -> tuple[HeaderList, bool, int, bool, bool, bool, bool]:
    """:func:`read_request_fields` as a plain tuple, in :class:`RequestInfo`'s order.

    For the server's hot path: a ``NamedTuple`` costs a Python-level
    ``__new__`` call per request, a tuple does not.

    Raises:
        ParseError: As :func:`read_request_fields`.
    """
    http11 = version == b"1.1"
    hosts = 0
    length: bytes | None = None
    lengths = 0
    codings: list[bytes] | None = None
    close = False
    keep_alive_token = False
    expect_continue = False
    upgrade = False
    te_trailers = False
    for name, value in fields:
        if len(name) not in _REQUEST_NAME_LENGTHS:
            continue
        lname = name.lower()
        if lname == b"host":
            hosts += 1
            if value not in _VALID_HOSTS:
                if _HOST_RE.fullmatch(value) is None:
                    raise ParseError(f"invalid Host {value[:100]!r}", status_hint=400)
                if len(_VALID_HOSTS) < _VALID_HOSTS_MAX:
                    _VALID_HOSTS.add(value)
        elif lname == b"content-length":
            if not value.isdigit() or int(value) > MAX_CONTENT_LENGTH:
                raise ParseError(f"invalid Content-Length {value[:40]!r}", status_hint=400)
            if length is not None and value != length:
                # Different spellings ("3" and "03") are refused too: h11
                # and llhttp do, and a peer may read only one of them.
                raise ParseError("conflicting Content-Length fields", status_hint=400)
            length = value
            lengths += 1
        elif lname == b"transfer-encoding":
            if codings is None:
                codings = []
            codings.extend(_codings(value))
        elif lname == b"connection":
            values = tokens(value)
            close = close or b"close" in values
            keep_alive_token = keep_alive_token or b"keep-alive" in values
        elif lname == b"expect":
            expect_continue = expect_continue or b"100-continue" in tokens(value)
        elif lname == b"upgrade":
            upgrade = upgrade or bool(value)
        elif lname == b"te":
            te_trailers = te_trailers or b"trailers" in tokens(value)
    if http11 and hosts == 0:
        raise ParseError("missing Host header field in an HTTP/1.1 request", status_hint=400)
    if hosts > 1:
        raise ParseError("more than one Host header field", status_hint=400)
    if target[0] != 0x2F or method == b"CONNECT":  # not the usual "/..." (checked below)
        _check_target(method, target)

    keep_alive = not close and (http11 or keep_alive_token)
    if codings is not None:
        _check_request_codings(codings, http11)
        if length is not None:
            # RFC 9112 section 6.3: Transfer-Encoding overrides
            # Content-Length; the message may be a smuggling attempt, so
            # Content-Length is removed and the connection closed after.
            keep_alive = False
            fields = _without_lengths(fields, keep_first=False)
        chunked = True
        body_length = 0
    else:
        chunked = False
        body_length = int(length) if length is not None else 0
        if lengths > 1:
            fields = _without_lengths(fields, keep_first=True)
    return (
        fields,
        chunked,
        body_length,
        keep_alive,
        method == b"CONNECT" or (upgrade and http11),
        expect_continue and http11 and (chunked or body_length != 0),
        te_trailers,
    )


def read_response_fields(version: bytes, fields: HeaderList) -> ResponseInfo:
    """Check a response head's fields and decide its framing.

    Status-based rules (HEAD, 1xx, 204, 304, CONNECT) are the caller's.

    Raises:
        ParseError: malformed Content-Length or Transfer-Encoding.
    """
    length: int | None = None
    spelled: bytes | None = None
    codings: list[bytes] | None = None
    close = False
    keep_alive_token = False
    for name, value in fields:
        if len(name) not in _RESPONSE_NAME_LENGTHS:
            continue
        lname = name.lower()
        if lname == b"content-length":
            # RFC 9110 section 8.6: a list of equal values may be accepted.
            values = {v.strip(b" \t") for v in value.split(b",")}
            if len(values) != 1:
                raise ParseError(f"invalid Content-Length {value[:40]!r}", status_hint=400)
            single = values.pop()
            if not single.isdigit() or int(single) > MAX_CONTENT_LENGTH:
                raise ParseError(f"invalid Content-Length {value[:40]!r}", status_hint=400)
            if spelled is not None and single != spelled:
                raise ParseError("conflicting Content-Length fields", status_hint=400)
            spelled = single
            length = int(single)
        elif lname == b"transfer-encoding":
            if codings is None:
                codings = []
            codings.extend(_codings(value))
        elif lname == b"connection":
            values_ = tokens(value)
            close = close or b"close" in values_
            keep_alive_token = keep_alive_token or b"keep-alive" in values_
    keep_alive = not close and (version == b"1.1" or keep_alive_token)
    chunked = False
    if codings is not None:
        if version == b"1.0":
            raise ParseError("Transfer-Encoding in an HTTP/1.0 response", status_hint=400)
        if codings[-1] == b"chunked":
            if codings.count(b"chunked") > 1:
                raise ParseError("chunked applied more than once", status_hint=400)
            chunked = True
        elif length is not None:
            # RFC 9112 section 6.3 rule 3: such a message "ought to be handled
            # as an error"; here the two fields even disagree on the length
            # (until close, or Content-Length), so h11 and llhttp refuse it.
            raise ParseError(
                "Transfer-Encoding without chunked beside Content-Length", status_hint=400
            )
        length = None  # not chunked: read until close (RFC 9112 section 6.3 rule 4)
    return ResponseInfo(chunked, length, keep_alive)


def _check_target(method: bytes, target: bytes) -> None:
    first = target[0]
    if first == 0x2F:  # "/": origin-form, the common case
        if method == b"CONNECT":
            raise ParseError("CONNECT needs an authority-form target", status_hint=400)
        return
    if method == b"CONNECT":
        if _AUTHORITY_RE.fullmatch(target) is None:
            raise ParseError(f"invalid CONNECT target {target[:100]!r}", status_hint=400)
        return
    if target == b"*":
        if method != b"OPTIONS":
            raise ParseError("asterisk-form target is only for OPTIONS", status_hint=400)
        return
    if _ABSOLUTE_RE.match(target) is None:
        raise ParseError(f"invalid request target {target[:100]!r}", status_hint=400)


def _check_request_codings(codings: list[bytes], http11: bool) -> None:
    if not http11:
        raise ParseError("Transfer-Encoding in an HTTP/1.0 request", status_hint=400)
    if not codings or codings[-1] != b"chunked":
        # RFC 9112 section 6.3 rule 4: the length cannot be determined.
        raise ParseError("chunked is not the final transfer coding", status_hint=400)
    if len(codings) > 1:
        if codings.count(b"chunked") > 1:
            raise ParseError("chunked applied more than once", status_hint=400)
        raise ParseError(
            f"unsupported transfer coding {codings[0][:40]!r}",
            status_hint=501,  # RFC 9112 section 6.1: a coding we do not understand
        )


def _without_lengths(fields: HeaderList, *, keep_first: bool) -> HeaderList:
    out: HeaderList = []
    seen = not keep_first
    for name, value in fields:
        if len(name) == 14 and name.lower() == b"content-length":
            if seen:
                continue
            seen = True
        out.append((name, value))
    return out
