"""Encoding HTTP/1 heads, bodies and trailers, with hyper's framing rules.

What belongs here: turning an outgoing head plus what is known about its
body into bytes, deciding the framing (Content-Length, chunked, until close,
none), and framing the body pieces and trailers that follow. The codec's
state machine (``_native_codec.py``) calls these and owns the states.

Strategy: one pass over the user's header fields. Only names whose length
matches a framing field (``len()`` is cheap) are lower-cased and compared;
every other field is copied through. Names are written as the user gave
them (``Headers`` keeps case), or Title-Cased when asked; the fields this
module adds are lower case, like hyper's. The rules, from hyper's
``proto/h1/role.rs`` and RFC 9112 section 6:

* Server: no body and no framing fields for 1xx, 204, 304, a 2xx to CONNECT
  and 101. A response to HEAD keeps the framing fields (a user's
  Content-Length, or one for a known non-empty length) but no body. A
  user's Transfer-Encoding gets ``chunked`` appended when it is not last,
  and is dropped for an HTTP/1.0 peer (the body is then delimited by
  closing). Content-Length and Transfer-Encoding together are a user
  error. With neither: a known length gives ``content-length``, an unknown
  one chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
* Client: a user's Transfer-Encoding wins over Content-Length and is
  repaired to end in chunked (dropped on HTTP/1.0). With neither: a known
  non-zero length gives ``content-length``; an unknown one chunked, except
  for GET, HEAD and CONNECT (and HTTP/1.0) which send no body.
* Trailers go out only on a chunked body, only if the head declared them in
  ``Trailer`` (and, from a server, only if the request said ``TE:
  trailers``); fields RFC 9110 section 6.5.1 forbids in trailers are
  dropped.
"""

from __future__ import annotations

from typing import Final

from hyper_core.error import UserError
from hyper_core.proto._date import date_line

from ._events import HeaderList, RequestHead, ResponseHead

__all__ = [
    "OutgoingFraming",
    "encode_request_head",
    "encode_response_head",
    "encode_trailers",
    "response_switches",
    "title_case",
]

NO_BODY: Final = 0
LENGTH: Final = 1
CHUNKED: Final = 2
UNTIL_CLOSE: Final = 3

_FORBIDDEN_TRAILERS: Final = frozenset(
    (
        b"authorization",
        b"cache-control",
        b"content-encoding",
        b"content-length",
        b"content-range",
        b"content-type",
        b"host",
        b"max-forwards",
        b"set-cookie",
        b"trailer",
        b"transfer-encoding",
        b"te",
    )
)
# Name lengths of the fields the encoders must look at: te (2), date (4),
# trailer (7), upgrade (7), connection (10), content-length (14),
# transfer-encoding (17).
_NAME_LENGTHS: Final = frozenset((4, 7, 10, 14, 17))
_CHUNK_JOIN_LIMIT: Final = 4096  # below this, one bytes object beats three
_title_cache: dict[bytes, bytes] = {}
# Status lines already built, per version: status -> (reason, line). A
# response usually repeats a handful of statuses with their canonical
# reasons, so the line is formatted once. Bounded (statuses are 100-999, but
# reasons come from users) and keyed by status alone: a different reason for
# the same status is formatted, not cached.
_STATUS_LINES_11: dict[int, tuple[bytes, bytes]] = {}
_STATUS_LINES_10: dict[int, tuple[bytes, bytes]] = {}
_STATUS_LINES_MAX: Final = 1024  # entries per version (at most 900 statuses)
# ``content-length: N`` lines for the lengths seen most (bounded: lengths
# are as many as bodies).
_LENGTH_LINES: dict[int, bytes] = {}
_LENGTH_LINES_MAX: Final = 2048  # entries


def title_case(name: bytes) -> bytes:
    """``content-type`` -> ``Content-Type`` (cached; names are few)."""
    cached = _title_cache.get(name)
    if cached is None:
        cached = b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))
        if len(_title_cache) < 1024:
            _title_cache[name] = cached
    return cached


def _status_line(status: int, reason: bytes, http10: bool) -> bytes:
    cache = _STATUS_LINES_10 if http10 else _STATUS_LINES_11
    cached = cache.get(status)
    if cached is not None and cached[0] == reason:
        return cached[1]
    line = b"%s %d %s" % (b"HTTP/1.0" if http10 else b"HTTP/1.1", status, reason)
    if cached is None and len(cache) < _STATUS_LINES_MAX:
        cache[status] = (reason, line)
    return line


def _length_line(length: int, title: bool) -> bytes:
    if title:
        return b"Content-Length: %d" % length
    line = _LENGTH_LINES.get(length)
    if line is None:
        line = b"content-length: %d" % length
        if len(_LENGTH_LINES) < _LENGTH_LINES_MAX:
            _LENGTH_LINES[length] = line
    return line


def _tokens(value: bytes) -> list[bytes]:
    return [t for t in (p.strip(b" \t").lower() for p in value.split(b",")) if t]


class OutgoingFraming:
    """How the body of the message being sent is framed, and its progress."""

    __slots__ = ("body_allowed", "keep_alive", "mode", "remaining", "trailer_names", "upgrade")

    def __init__(self) -> None:
        self.mode = NO_BODY
        self.remaining = 0
        self.body_allowed = False
        self.keep_alive = True
        self.upgrade = False
        self.trailer_names: frozenset[bytes] | None = None

    @property
    def chunked(self) -> bool:
        """Whether the body is chunked."""
        return self.mode == CHUNKED

    def frame_data(self, data: bytes) -> list[bytes]:
        """Frame one piece of body.

        Raises:
            UserError: the piece overruns the declared Content-Length.
        """
        mode = self.mode
        if mode == LENGTH:
            remaining = self.remaining - len(data)
            if remaining < 0:
                raise UserError(
                    f"body is longer than its Content-Length ({-remaining} bytes too many)"
                )
            self.remaining = remaining
            return [data] if data else []
        if not data or mode == NO_BODY:
            return []
        if mode == CHUNKED:
            n = len(data)
            if n < _CHUNK_JOIN_LIMIT:
                return [b"%x\r\n%s\r\n" % (n, data)]
            return [b"%x\r\n" % n, data, b"\r\n"]
        return [data]

    def frame_end(self) -> bytes:
        """Bytes that end the body (the trailers are added by the caller).

        Raises:
            UserError: fewer bytes were sent than the declared Content-Length.
        """
        mode = self.mode
        if mode == LENGTH and self.remaining:
            raise UserError(
                f"body is shorter than its Content-Length ({self.remaining} bytes missing)"
            )
        if mode == UNTIL_CLOSE:
            self.keep_alive = False
        return b"0\r\n\r\n" if mode == CHUNKED else b""


def response_switches(status: int, method: bytes | None, upgrade_asked: bool) -> bool:
    """Whether a final response hands the connection over: 101, or a 2xx to CONNECT.

    A 2xx to a CONNECT that was not offered as an upgrade is an ordinary
    response.

    Raises:
        UserError: a 1xx other than 101 (those go through
            ``send_informational``), or a 101 to a request that asked for
            no upgrade.
    """
    if status < 200 and status != 101:
        raise UserError("1xx responses are sent with send_informational()")
    switching = status == 101 or (method == b"CONNECT" and 200 <= status < 300)
    if switching and not upgrade_asked:
        if status == 101:
            raise UserError("101 Switching Protocols without an upgrade request")
        return False
    return switching


def encode_response_head(
    out: OutgoingFraming,
    head: ResponseHead,
    body_length: int | None,
    *,
    method: bytes | None,
    their_version: bytes | None,
    keep_alive: bool,
    te_trailers: bool,
    switching: bool,
    title_case: bool,
    auto_date: bool,
) -> bytes:
    """Encode a final (or 101) response head and set ``out`` for its body.

    Raises:
        UserError: invalid framing fields from the user.
    """
    status = head.status
    http10 = their_version == b"1.0"
    is_head = method == b"HEAD"
    no_framing = switching or status < 200 or status == 204 or status == 304
    lines = [_status_line(status, head.reason, http10)]
    append = lines.append
    user_length: bytes | None = None
    te_index = -1
    te_seen = False
    has_date = False
    close = False
    keep_alive_token = False
    trailer_value: bytes | None = None
    for name, value in head.headers:
        if len(name) in _NAME_LENGTHS:
            lname = name.lower()
            if lname == b"content-length":
                if not value.isdigit():
                    raise UserError(f"invalid Content-Length {value[:40]!r} in the response")
                if user_length is not None and int(value) != int(user_length):
                    raise UserError("conflicting Content-Length fields in the response")
                if no_framing or user_length is not None:
                    continue
                user_length = value
            elif lname == b"transfer-encoding":
                te_seen = True
                if no_framing or http10:
                    continue  # no body, or a peer that cannot read chunked
                te_index = len(lines)
            elif lname == b"connection":
                tokens = _tokens(value)
                close = close or b"close" in tokens
                keep_alive_token = keep_alive_token or b"keep-alive" in tokens
            elif lname == b"date":
                has_date = True
            elif lname == b"trailer":
                trailer_value = value if trailer_value is None else trailer_value + b"," + value
        append((_title(name) if title_case else name) + b": " + value)

    if close or (head.version == b"1.0" and not keep_alive_token):
        keep_alive = False
    mode: int
    extra: bytes | None = None
    if no_framing:
        mode = NO_BODY
    elif te_seen:
        if user_length is not None:
            raise UserError("a response may not have both Content-Length and Transfer-Encoding")
        if te_index < 0:
            mode = UNTIL_CLOSE  # HTTP/1.0 peer: Transfer-Encoding was dropped
        else:
            codings = _tokens(lines[te_index].split(b":", 1)[1])
            if not codings or codings[-1] != b"chunked":
                lines[te_index] += b", chunked"
            mode = CHUNKED
    elif user_length is not None:
        mode = LENGTH
        out.remaining = int(user_length)
    elif body_length is not None:
        if not is_head or body_length:
            extra = _length_line(body_length, title_case)
        mode = LENGTH
        out.remaining = body_length
    elif http10:
        mode = UNTIL_CLOSE
    else:
        extra = _name(b"transfer-encoding", title_case) + b": chunked"
        mode = CHUNKED
    if extra is not None:
        append(extra)
    if mode == UNTIL_CLOSE and not is_head:
        keep_alive = False
    if is_head:
        mode = NO_BODY
    if not keep_alive:
        if not close and not switching:
            append(_name(b"connection", title_case) + b": close")
    elif http10 and not keep_alive_token:
        append(_name(b"connection", title_case) + b": keep-alive")
    if auto_date and not has_date:
        append(date_line(title_case))
    append(b"\r\n")

    out.mode = mode
    out.body_allowed = mode != NO_BODY
    out.keep_alive = keep_alive
    out.upgrade = switching
    out.trailer_names = (
        _declared_trailers(trailer_value)
        if mode == CHUNKED and te_trailers and trailer_value is not None
        else None
    )
    return b"\r\n".join(lines)


def encode_request_head(
    out: OutgoingFraming, head: RequestHead, body_length: int | None, *, title_case: bool
) -> bytes:
    """Encode a request head and set ``out`` for its body.

    Raises:
        UserError: invalid framing fields from the user.
    """
    http10 = head.version == b"1.0"
    method = head.method
    lines = [b"%s %s HTTP/%s" % (method, head.target, b"1.0" if http10 else b"1.1")]
    user_length: bytes | None = None
    length_index = -1
    te_index = -1
    close = False
    keep_alive_token = False
    upgrade = method == b"CONNECT"
    trailer_value: bytes | None = None
    for name, value in head.headers:
        if len(name) in _NAME_LENGTHS:
            lname = name.lower()
            if lname == b"content-length":
                if not value.isdigit():
                    raise UserError(f"invalid Content-Length {value[:40]!r} in the request")
                if user_length is not None:
                    if int(value) != int(user_length):
                        raise UserError("conflicting Content-Length fields in the request")
                    continue
                user_length = value
                length_index = len(lines)
            elif lname == b"transfer-encoding":
                if http10:
                    continue
                te_index = len(lines)
            elif lname == b"connection":
                tokens = _tokens(value)
                close = close or b"close" in tokens
                keep_alive_token = keep_alive_token or b"keep-alive" in tokens
            elif lname == b"upgrade":
                upgrade = upgrade or (bool(value) and not http10)
            elif lname == b"trailer":
                trailer_value = value if trailer_value is None else trailer_value + b"," + value
        if title_case:
            name = _title(name)
        lines.append(b"%s: %s" % (name, value))

    mode: int
    if te_index >= 0:
        codings = _tokens(lines[te_index].split(b":", 1)[1])
        if not codings or codings[-1] != b"chunked":
            lines[te_index] += b", chunked"
        if length_index >= 0:
            del lines[length_index]
        mode = CHUNKED
    elif user_length is not None:
        mode = LENGTH
        out.remaining = int(user_length)
    elif body_length:
        lines.append(b"%s: %d" % (_name(b"content-length", title_case), body_length))
        mode = LENGTH
        out.remaining = body_length
    elif body_length == 0 or http10 or method in (b"GET", b"HEAD", b"CONNECT"):
        mode = NO_BODY
    else:
        lines.append(_name(b"transfer-encoding", title_case) + b": chunked")
        mode = CHUNKED
    lines.append(b"\r\n")
    out.mode = mode
    out.body_allowed = mode != NO_BODY
    out.keep_alive = not close and (not http10 or keep_alive_token)
    out.upgrade = upgrade
    out.trailer_names = (
        _declared_trailers(trailer_value) if mode == CHUNKED and trailer_value is not None else None
    )
    return b"\r\n".join(lines)


def encode_trailers(
    out: OutgoingFraming, trailers: HeaderList | None, *, title_case: bool
) -> bytes:
    """The last chunk plus the trailer fields that are allowed to go out."""
    allowed = out.trailer_names
    if not trailers or not allowed:
        return b"0\r\n\r\n"
    lines = [b"0"]
    for name, value in trailers:
        lname = name.lower()
        if lname in allowed and lname not in _FORBIDDEN_TRAILERS:
            lines.append(b"%s: %s" % (_title(name) if title_case else name, value))
    lines.append(b"\r\n")
    return b"\r\n".join(lines)


def _declared_trailers(value: bytes) -> frozenset[bytes]:
    return frozenset(_tokens(value))


def _title(name: bytes) -> bytes:
    return title_case(name)


def _name(lower: bytes, title: bool) -> bytes:
    return title_case(lower) if title else lower
