"""The receiving half of the native HTTP/1 codec, and the state both halves share.

What belongs here: :class:`NativeReceiver`, the base class of
``_native_codec.NativeCodec``: the codec's state (every slot, set in its
``__init__``) and what the peer sends: ``receive_data``, ``next_event``,
reading a head and applying its verdict to the states, picking the body
reader, and HTTP/0.9 responses. The state properties, the cycle and the
sending half are in ``_native_codec.py``.

Strategy:

* Received heads are parsed by ``_parse.py`` and judged by ``_heads.py``
  (framing, smuggling checks, keep-alive, upgrades); this half applies the
  verdict to the states and picks the body reader (``_body_readers.py``).
* A head is searched for only where the buffer grew since the last read (a
  head arriving in small pieces costs linear time), and an incomplete one
  is checked early for a bare LF or bytes that cannot start a request.
* A received chunk that is all body of a Content-Length message is handed
  out as it is (``_direct``), without a copy into the buffer and out again.
* A server's read into an empty buffer between requests is kept as it came
  (``_fresh``): a whole head is parsed from it, and the body bytes behind
  the head are cut out of it once, so a request that arrives in one read
  (a POST of a few KiB) costs one copy of its body instead of three.
* Any parse error moves the peer's side to ERROR, from which nothing more is
  parsed.
* A base class, not a helper object: ``NativeCodec`` is one object whose
  methods reach these slots and methods with the same lookups as if they
  were written in one class (and mypyc compiles both modules in one group).
"""

from __future__ import annotations

from typing import Final

from hyper_core.error import IncompleteMessageError, ParseError, UserError

from ._body_readers import BodyReader, ChunkedReader, ContentLengthReader, EofReader
from ._codec import MIN_BUF_SIZE, CodecState, Role
from ._encode import OutgoingFraming
from ._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    RequestHead,
    ResponseHead,
    Sentinel,
)
from ._heads import read_response_fields, request_framing
from ._parse import (
    DEFAULT_LIMITS,
    HeadLimits,
    check_no_bare_lf,
    check_request_start,
    parse_fields,
    parse_request_head,
    parse_request_line,
    parse_status_line,
)

__all__ = [
    "CLOSED",
    "DONE",
    "ERROR",
    "IDLE",
    "MIGHT_SWITCH_PROTOCOL",
    "MUST_CLOSE",
    "SEND_BODY",
    "SEND_RESPONSE",
    "SWITCHED_PROTOCOL",
    "NativeReceiver",
]

IDLE: Final = CodecState.IDLE
SEND_RESPONSE: Final = CodecState.SEND_RESPONSE
SEND_BODY: Final = CodecState.SEND_BODY
DONE: Final = CodecState.DONE
MUST_CLOSE: Final = CodecState.MUST_CLOSE
CLOSED: Final = CodecState.CLOSED
MIGHT_SWITCH_PROTOCOL: Final = CodecState.MIGHT_SWITCH_PROTOCOL
SWITCHED_PROTOCOL: Final = CodecState.SWITCHED_PROTOCOL
ERROR: Final = CodecState.ERROR
# The reader of every message without a body: a ContentLengthReader at 0
# bytes never changes, so one instance serves all.
_NO_BODY: Final = ContentLengthReader(0)
# How an HTTP/1.x status line starts (http09_responses tells them from 0.9).
_H10_START: Final = b"HTTP/1.0 "
_H11_START: Final = b"HTTP/1.1 "


class NativeReceiver:
    """The receiving half of ``NativeCodec`` and its state (see the module docstring).

    Not used alone: ``new_codec`` makes a ``NativeCodec``, which adds the
    state properties and the sending half.
    """

    __slots__ = (
        "_allow_obs_fold",
        "_auto_date",
        "_buf",
        "_direct",
        "_eof",
        "_fresh",
        "_h09",
        "_ignore_invalid",
        "_keep_alive",
        "_limits",
        "_line_spaces",
        "_max_buf_size",
        "_max_headers",
        "_our",
        "_out",
        "_reader",
        "_request_method",
        "_role",
        "_scanned",
        "_server",
        "_space_before_colon",
        "_switching",
        "_te_trailers",
        "_their",
        "_their_version",
        "_title_case",
        "_upgrade_asked",
        "_waiting_100",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_buf_size: int = 417_792,
        max_headers: int = 100,
        title_case_headers: bool = False,
        auto_date_header: bool = False,
        allow_obs_fold: bool = False,
        limits: HeadLimits = DEFAULT_LIMITS,
        ignore_invalid_headers: bool = False,
        allow_space_before_colon: bool = False,
        http09_responses: bool = False,
        allow_multiple_spaces_in_request_line: bool = False,
    ) -> None:
        if max_buf_size < MIN_BUF_SIZE:
            raise ValueError(f"max_buf_size must be at least {MIN_BUF_SIZE} bytes")
        self._role = role
        self._limits = limits
        # Read on every request: a bool beats an enum attribute lookup.
        self._server = role is Role.SERVER
        self._max_buf_size = max_buf_size
        self._max_headers = max_headers
        self._title_case = title_case_headers
        self._auto_date = auto_date_header
        # The lenient switches (see _lenient.py); those for responses only
        # ever apply to a client.
        self._allow_obs_fold = allow_obs_fold and role is Role.CLIENT
        self._space_before_colon = allow_space_before_colon and role is Role.CLIENT
        self._ignore_invalid = ignore_invalid_headers
        self._line_spaces = allow_multiple_spaces_in_request_line and role is Role.SERVER
        # Until the first final response: it may be HTTP/0.9 (hyper's rule).
        self._h09 = http09_responses and role is Role.CLIENT
        self._buf = bytearray()
        # A received chunk that is all body of a Content-Length message,
        # handed out as Data as it is (see receive_data).
        self._direct: bytes | None = None
        # A server's read into an empty buffer while no request is under
        # way, not yet copied into the buffer (see _read_head); while set,
        # the buffer is empty.
        self._fresh: bytes | None = None
        self._eof = False
        self._scanned = 0  # bytes of an incomplete head already checked
        self._their = IDLE
        self._our = IDLE
        self._keep_alive = True
        self._their_version: bytes | None = None
        self._reader: BodyReader | None = None
        self._out = OutgoingFraming()
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self._request_method: bytes | None = None
        self._upgrade_asked = False
        self._switching = False
        self._te_trailers = False
        self._waiting_100 = False

    # -- receiving ----------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means EOF."""
        if data:
            if self._eof:
                raise UserError("received data after EOF")
            direct = self._direct
            if direct is None:
                fresh = self._fresh
                if fresh is not None:  # a second read before the first was parsed
                    self._fresh = None
                    self._buf += fresh
                elif not self._buf and type(data) is bytes:
                    their = self._their
                    if their is IDLE and self._server:
                        self._fresh = data  # parsed in place by _read_head
                        return
                    reader = self._reader
                    if (
                        type(reader) is ContentLengthReader
                        and their is SEND_BODY
                        and len(data) <= reader.remaining
                    ):
                        # Body bytes and nothing else: no copy into the buffer
                        # and out again (two copies of every byte of a download).
                        self._direct = data
                        return
            else:
                self._direct = None
                self._buf += direct
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Event | Sentinel:
        """Parse and return the next event, or NEED_DATA / PAUSED."""
        their = self._their
        try:
            if their is SEND_BODY:
                reader = self._reader
                assert reader is not None
                direct = self._direct
                if direct is not None:
                    self._direct = None
                    assert type(reader) is ContentLengthReader
                    reader.remaining -= len(direct)
                    return Data(direct)
                event = reader.read(self._buf)
                if event is None:
                    if not self._eof:
                        return NEED_DATA
                    event = reader.read_eof()
                if type(event) is EndOfMessage:
                    self._their_finished()
                return event
            if their is IDLE:
                if not self._buf and not self._eof and self._fresh is None:
                    return NEED_DATA  # between requests, the usual wait
                return self._read_head()
            if their is DONE or their is MUST_CLOSE:
                if self._buf:
                    return PAUSED
                if self._eof:
                    self._their = CLOSED
                    return ConnectionClosed()
                return NEED_DATA
            if their is CLOSED:
                return ConnectionClosed()
            if their is ERROR:
                raise ParseError("the connection is in an error state", status_hint=None)
            return PAUSED  # MIGHT_SWITCH_PROTOCOL / SWITCHED_PROTOCOL
        except (ParseError, IncompleteMessageError):
            self._their = ERROR
            self._keep_alive = False
            raise

    def _their_finished(self) -> None:
        if self._switching:
            self._their = SWITCHED_PROTOCOL
        elif self._upgrade_asked and self._server and self._our is SEND_RESPONSE:
            self._their = MIGHT_SWITCH_PROTOCOL
        else:
            self._their = DONE if self._keep_alive else MUST_CLOSE

    def _read_head(self) -> Event | Sentinel:
        buf = self._buf
        server = self._server
        fresh = self._fresh
        if fresh is not None:
            self._fresh = None
            end = fresh.find(b"\r\n\r\n")
            if end >= 0 and fresh[0] != 0x0D and end + 4 <= self._max_buf_size:
                return self._fresh_head(fresh, end)
            buf += fresh  # an incomplete head, or empty lines before it: the general way
        if server:
            # RFC 9112 section 2.2: ignore empty lines before a request line.
            if buf and buf[0] == 0x0D:
                while buf[:2] == b"\r\n":
                    del buf[:2]
                if buf == b"\r" and not self._eof:
                    return NEED_DATA  # maybe the first half of another empty line
        elif self._our is IDLE and buf:
            raise ParseError(
                "unexpected bytes from the server before any request", status_hint=None
            )
        elif self._h09 and buf:
            head = self._http09_head(buf)
            if head is not None:
                return head
        if not buf:
            if self._eof:
                self._their = CLOSED
                return ConnectionClosed()
            return NEED_DATA
        scanned = self._scanned
        # Search only what was not searched before (the last 3 bytes may
        # start the terminator): a head arriving in small pieces costs
        # linear time, not quadratic.
        end = buf.find(b"\r\n\r\n", scanned - 3 if scanned > 3 else 0)
        if end < 0:
            if len(buf) > self._max_buf_size:
                raise ParseError("message head is larger than max_buf_size", status_hint=431)
            check_no_bare_lf(buf, scanned)
            if server and scanned < 64:
                check_request_start(buf)
            self._scanned = len(buf)
            if self._eof:
                raise IncompleteMessageError(
                    "connection closed before the message head was complete"
                )
            return NEED_DATA
        if end + 4 > self._max_buf_size:
            raise ParseError("message head is larger than max_buf_size", status_hint=431)
        self._scanned = 0
        if end + 4 == len(buf):
            # The usual read: exactly one head, nothing after it.
            block = bytes(buf)[: end + 2]
            buf.clear()
        else:
            block = bytes(buf[: end + 2])
            del buf[: end + 4]
        if server:
            return self._request_head(block)
        return self._response_head(block)

    def _fresh_head(self, data: bytes, end: int) -> RequestHead:
        """The request head that ends at ``end`` in a read kept as it came (``_fresh``).

        What follows the head is cut out once: handed out as the body when
        it is all body of a Content-Length request (``_direct``), else
        buffered, exactly what the buffer would hold after the general way.
        """
        if end + 4 == len(data):
            return self._request_head(data[: end + 2])  # the usual read: one head, nothing after
        rest = data[end + 4 :]
        try:
            head = self._request_head(data[: end + 2])
        except BaseException:
            self._buf += rest
            raise
        reader = self._reader
        if (
            type(reader) is ContentLengthReader
            and self._their is SEND_BODY
            and len(rest) <= reader.remaining
        ):
            self._direct = rest
        else:
            self._buf += rest
        return head

    def _request_head(self, block: bytes) -> RequestHead:
        limits = self._limits
        parsed = parse_request_head(block, self._max_headers, limits)
        if parsed is not None:
            method, target, version, fields = parsed
        else:
            # Malformed or unusual: the step-by-step parse says what is wrong.
            method, target, version, start = parse_request_line(
                block, limits, multiple_spaces=self._line_spaces
            )
            if version != b"1.1" and version != b"1.0":
                if version == b"2.0" and method == b"PRI":
                    raise ParseError(
                        "HTTP/2 connection preface on an HTTP/1 connection", status_hint=None
                    )
                raise ParseError(f"unsupported HTTP version {version!r}", status_hint=505)
            fields = parse_fields(
                block, start, self._max_headers, limits, ignore_invalid=self._ignore_invalid
            )
        fields, chunked, length, keep_alive, upgrade, expect_continue, te_trailers = (
            request_framing(method, target, version, fields)
        )
        if chunked:
            self._reader = ChunkedReader(self._max_headers, limits)
        elif length:
            self._reader = ContentLengthReader(length)
        else:
            self._reader = _NO_BODY  # stateless at 0 bytes: shared
        if not keep_alive:
            self._keep_alive = False
        self._their_version = version
        self._request_method = method
        self._upgrade_asked = upgrade
        self._te_trailers = te_trailers
        self._waiting_100 = expect_continue
        self._their = SEND_BODY
        self._our = SEND_RESPONSE
        return RequestHead(method, target, version, fields)

    def _response_head(self, block: bytes) -> ResponseHead:
        limits = self._limits
        version, status, reason, start = parse_status_line(block, limits)
        if version != b"1.1" and version != b"1.0":
            raise ParseError(f"unsupported HTTP version {version!r}", status_hint=None)
        fields = parse_fields(
            block,
            start,
            self._max_headers,
            limits,
            allow_obs_fold=self._allow_obs_fold,
            ignore_invalid=self._ignore_invalid,
            allow_space_before_colon=self._space_before_colon,
        )
        self._their_version = version
        if status < 200:
            if status == 101:
                if not self._upgrade_asked:
                    raise ParseError(
                        "101 response to a request that asked for no upgrade", status_hint=None
                    )
                self._h09 = False
                self._switch()
            return ResponseHead(status, reason, version, fields)
        self._h09 = False
        info = read_response_fields(version, fields)
        if not info.keep_alive:
            self._keep_alive = False
        method = self._request_method
        if method == b"CONNECT" and 200 <= status < 300:
            self._switch()
            return ResponseHead(status, reason, version, fields)
        if method == b"HEAD" or status == 204 or status == 304:
            self._reader = ContentLengthReader(0)
        elif info.chunked:
            self._reader = ChunkedReader(self._max_headers, limits)
        elif info.length is not None:
            self._reader = ContentLengthReader(info.length)
        else:
            # RFC 9112 section 6.3 rules 4 and 8: read until the server closes.
            self._reader = EofReader()
            self._keep_alive = False
        self._their = SEND_BODY
        return ResponseHead(status, reason, version, fields)

    def _http09_head(self, buf: bytearray) -> ResponseHead | None:
        """The head of an HTTP/0.9 response, if ``buf`` starts one (``http09_responses``).

        As hyper (httparse) decides: after any empty lines, bytes that cannot
        begin ``HTTP/1.0 `` or ``HTTP/1.1 `` are HTTP/0.9, whose response is
        all the bytes up to the close (status 200, no fields; nothing is
        consumed). Empty lines before a real status line stay an error.
        """
        start = bytes(buf[:64]).lstrip(b"\r\n")[:9]
        if not start or _H10_START.startswith(start) or _H11_START.startswith(start):
            return None  # HTTP/1.x, or not known yet
        self._h09 = False
        self._their_version = b"0.9"
        self._keep_alive = False
        head = ResponseHead(200, b"OK", b"0.9", [])
        method = self._request_method
        if method == b"CONNECT":
            self._switch()  # a 2xx to CONNECT, as hyper reads it: the rest is the tunnel's
        else:
            self._reader = _NO_BODY if method == b"HEAD" else EofReader()
            self._their = SEND_BODY
        return head

    def _switch(self) -> None:
        self._switching = True
        self._their = SWITCHED_PROTOCOL
        if self._our is DONE or self._our is SEND_BODY:
            self._our = SWITCHED_PROTOCOL
