"""The native HTTP/1 codec (the default): pure Python, h11's grammar and states, hyper's rules.

What belongs here: the :class:`NativeCodec` state machine for both roles and
the decisions that depend on it (keep-alive, 100-continue, upgrades).
Byte-level parsing is in ``_parse.py`` (heads) and ``_body_readers.py``
(bodies), reading the fields of a received head in ``_heads.py``, head
encoding and outgoing framing in ``_encode.py``.
The other codec behind the seam, ``_h11_codec.py``, runs ``h11.Connection``
itself and is held to the same checks.

Strategy:

* A pure-Python codec with h11's grammar (``h11/_abnf.py``, tightened in
  ``_parse.py``) and h11's state names (see ``_codec.py``), and hyper's
  framing rules; ``h11.Connection`` itself is not on this path: measured on
  the reference machine a full h11 server cycle costs about 68 us, 40 of
  them on the send side (header re-validation and re-normalisation on every
  ``send``), against a budget of roughly 130 us for the whole request
  including socket I/O. h11 also differs from hyper where the issue wants
  hyper's behaviour: it cannot keep HTTP/1.0 connections alive, writes
  every response as HTTP/1.1, unfolds obs-fold in requests, accepts any
  control byte but NUL in field values, and has no chunk-size or
  chunk-extension limits. So this module keeps h11's shape and grammar and
  applies the RFC 9112 / hyper rules itself.
* Received heads are parsed by ``_parse.py`` and judged by ``_heads.py``
  (framing, smuggling checks, keep-alive, upgrades); this module applies the
  verdict to the states and picks the body reader.
* State changes happen only after a check passed; any exception moves the
  side that caused it to ERROR, from which nothing more is parsed or sent.
* The lenient switches (``_lenient.py``) reach this class as flags read on
  the slow paths only; HTTP/0.9 (``_http09_head``) is looked for only on a
  client built with ``http09_responses``, before its first final response.

Size: over 600 lines, because one class holds the state machine of both
roles; splitting it by role belongs to the dispatcher refactor (issue 12).
"""

from __future__ import annotations

from typing import Final

from hyper_core.error import IncompleteMessageError, ParseError, UserError

from ._body_readers import BodyReader, ChunkedReader, ContentLengthReader, EofReader
from ._codec import MIN_BUF_SIZE, CodecState, Role
from ._encode import (
    LENGTH,
    NO_BODY,
    OutgoingFraming,
    encode_request_head,
    encode_response_head,
    encode_trailers,
    response_switches,
)
from ._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    HeaderList,
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

__all__ = ["MIN_BUF_SIZE", "NativeCodec"]

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


class NativeCodec:
    """The native HTTP/1 codec for one connection and one role (see ``_codec.Codec``)."""

    __slots__ = (
        "_allow_obs_fold",
        "_auto_date",
        "_buf",
        "_direct",
        "_eof",
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

    # -- state --------------------------------------------------------------

    @property
    def role(self) -> Role:
        """The role this codec speaks for."""
        return self._role

    @property
    def our_state(self) -> CodecState:
        """Our side's state."""
        return self._our

    @property
    def their_state(self) -> CodecState:
        """The peer's side's state."""
        return self._their

    @property
    def their_version(self) -> bytes | None:
        """HTTP version of the last head received, or None."""
        return self._their_version

    @property
    def their_body_length(self) -> int | None:
        """Bytes of the incoming body still to come: 0, a count, or None if unknown."""
        if self._their is SEND_BODY and self._reader is not None:
            return self._reader.remaining
        return 0

    @property
    def upgrade_requested(self) -> bool:
        """The request of this cycle can be upgraded (CONNECT, or Upgrade on 1.1)."""
        return self._upgrade_asked

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        """The client sent ``Expect: 100-continue`` and has had no response yet."""
        return self._waiting_100

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another cycle after this one."""
        return self._keep_alive

    @property
    def our_body_allowed(self) -> bool:
        """Whether the message head we sent lets body bytes follow."""
        return self._out.body_allowed

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received and not parsed, and whether EOF was received."""
        if self._direct is not None:
            return self._direct + self._buf, self._eof
        return bytes(self._buf), self._eof

    @property
    def input_pending(self) -> bool:
        """Received bytes wait to be parsed and the peer has not closed."""
        return not self._eof and (bool(self._buf) or self._direct is not None)

    def disable_keep_alive(self) -> None:
        """Close after the current cycle."""
        self._keep_alive = False
        if self._our is DONE:
            self._our = MUST_CLOSE
        if self._their is DONE:
            self._their = MUST_CLOSE

    def start_next_cycle(self) -> None:
        """Reset both sides from DONE to IDLE.

        Raises:
            UserError: a side is not DONE.
            ParseError: (client) the server sent bytes after its response
                that no request asked for; the connection is unusable.
        """
        if self._our is not DONE or self._their is not DONE:
            raise UserError(
                f"cannot start a new cycle in states {self._our.value}/{self._their.value}"
            )
        if not self._server and self._buf:
            self._their = ERROR
            self._keep_alive = False
            raise ParseError("unexpected bytes from the server after a response", status_hint=None)
        self._our = IDLE
        self._their = IDLE
        self._reader = None
        # self._reset_cycle(), inlined: once per request.
        self._request_method = None
        self._upgrade_asked = False
        self._switching = False
        self._te_trailers = False
        self._waiting_100 = False

    def send_failed(self) -> None:
        """A write of our bytes failed: our side is broken for good."""
        self._our = ERROR
        self._keep_alive = False

    # -- receiving ----------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means EOF."""
        if data:
            if self._eof:
                raise UserError("received data after EOF")
            direct = self._direct
            if direct is None:
                reader = self._reader
                if (
                    not self._buf
                    and type(reader) is ContentLengthReader
                    and self._their is SEND_BODY
                    and type(data) is bytes
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
                if not self._buf and not self._eof:
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

    # -- sending ------------------------------------------------------------

    def send_head(self, head: RequestHead | ResponseHead, body_length: int | None = None) -> bytes:
        """Serialize a head, fixing its framing fields (see ``_codec.Codec``)."""
        try:
            if type(head) is ResponseHead:
                return self._send_response_head(head, body_length)
            assert type(head) is RequestHead
            return self._send_request_head(head, body_length)
        except UserError:
            self._our = ERROR
            self._keep_alive = False
            raise

    def _send_response_head(self, head: ResponseHead, body_length: int | None) -> bytes:
        if not self._server:
            raise UserError("a client codec sends requests, not responses")
        our = self._our
        if our is not SEND_RESPONSE and not (our is IDLE and self._their is ERROR):
            raise UserError(f"cannot send a response head in state {our.value}")
        status = head.status
        method = self._request_method
        switching = response_switches(status, method, self._upgrade_asked)
        out = self._out
        data = encode_response_head(
            out,
            head,
            body_length,
            method=method,
            their_version=self._their_version,
            keep_alive=self._keep_alive,
            te_trailers=self._te_trailers,
            switching=switching,
            title_case=self._title_case,
            auto_date=self._auto_date,
        )
        if not out.keep_alive:
            self._keep_alive = False
        self._waiting_100 = False
        if switching:
            self._our = SWITCHED_PROTOCOL
            self._switching = True
            if self._their is DONE or self._their is MIGHT_SWITCH_PROTOCOL:
                self._their = SWITCHED_PROTOCOL
        else:
            self._our = SEND_BODY
            if self._their is MIGHT_SWITCH_PROTOCOL:
                self._their = DONE if self._keep_alive else MUST_CLOSE
        return data

    def _send_request_head(self, head: RequestHead, body_length: int | None) -> bytes:
        if self._server:
            raise UserError("a server codec sends responses, not requests")
        if self._our is not IDLE or self._their is not IDLE:
            raise UserError(f"cannot send a request head in state {self._our.value}")
        if self._buf:
            self._their = ERROR
            self._keep_alive = False
            raise ParseError(
                "unexpected bytes from the server before any request", status_hint=None
            )
        out = self._out
        data = encode_request_head(out, head, body_length, title_case=self._title_case)
        if not out.keep_alive:
            self._keep_alive = False
        self._request_method = head.method
        self._upgrade_asked = out.upgrade
        self._our = SEND_BODY
        return data

    def send_informational(self, head: ResponseHead) -> bytes:
        """Serialize a 1xx response other than 101 (server only)."""
        if not self._server or self._our is not SEND_RESPONSE:
            raise UserError("an informational response needs a request awaiting its response")
        if not 100 <= head.status < 200 or head.status == 101:
            raise UserError(f"{head.status} is not an informational status other than 101")
        self._waiting_100 = False
        version = b"HTTP/1.0" if self._their_version == b"1.0" else b"HTTP/1.1"
        lines = [b"%s %d %s" % (version, head.status, head.reason)]
        lines.extend(b"%s: %s" % pair for pair in head.headers)
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    def send_data(self, data: bytes) -> list[bytes]:
        """Frame a piece of body (see ``_codec.Codec``)."""
        if self._our is not SEND_BODY:
            raise UserError(f"cannot send body data in state {self._our.value}")
        try:
            return self._out.frame_data(data)
        except UserError:
            self._our = ERROR
            self._keep_alive = False
            raise

    def send_end(self, trailers: HeaderList | None = None) -> bytes:
        """End the body we are sending (see ``_codec.Codec``)."""
        if self._our is not SEND_BODY:
            raise UserError(f"cannot end a body in state {self._our.value}")
        out = self._out
        try:
            end = out.frame_end()
        except UserError:
            self._our = ERROR
            self._keep_alive = False
            raise
        if out.chunked:
            end = encode_trailers(out, trailers, title_case=self._title_case)
        if not out.keep_alive:
            self._keep_alive = False
        self._our_finished()
        return end

    def _our_finished(self) -> None:
        if self._switching:
            self._our = SWITCHED_PROTOCOL
            return
        self._our = DONE if self._keep_alive else MUST_CLOSE
        if self._their is DONE and not self._keep_alive:
            self._their = MUST_CLOSE

    def send_message(
        self, head: RequestHead | ResponseHead, body: bytes, trailers: HeaderList | None = None
    ) -> bytes:
        """Head, whole body and end in one call."""
        size = len(body)
        first = self.send_head(head, size)
        if self._our is not SEND_BODY:
            return first  # switched protocols: no body follows a 101
        out = self._out
        mode = out.mode
        if (mode == LENGTH and out.remaining == size) or mode == NO_BODY:
            # The usual case, what send_data and send_end would do, decided
            # here in one step: the body fills its length exactly (or is not
            # sent at all, e.g. for HEAD), and trailers go out only on
            # chunked bodies.
            if mode == LENGTH:
                out.remaining = 0
            if not out.keep_alive:
                self._keep_alive = False
            self._our_finished()
            return first + body if size and mode == LENGTH else first
        parts = self.send_data(body) if body else []
        last = self.send_end(trailers)
        if not parts:
            return first + last if last else first
        return b"".join([first, *parts, last])
