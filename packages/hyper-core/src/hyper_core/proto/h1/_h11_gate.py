"""The h11 codec's gate and receiving half, and the state both halves share.

What belongs here: :class:`H11Gate`, the base class of
``_h11_codec.H11Codec``: the codec's state (every slot, set in its
``__init__``), ``receive_data``, ``next_event`` with the translation of
h11's events to the seam's, and the gate that decides which received bytes
h11 may see. The state properties, the cycle and the sending half are in
``_h11_codec.py``, with what h11 cannot do.

Strategy:

* A gate in front of h11: received bytes wait in this codec's buffer and are
  handed to h11 only after the checks hyper makes and h11 does not (the same
  functions the native codec uses: ``_parse.py`` and ``_heads.py`` on each
  head, ``_body_readers.ChunkedReader`` on chunked framing), and never past
  the end of the current message. So both codecs refuse the same hostile
  input with the same status (bare CR / LF, control bytes, obs-fold,
  whitespace before a colon, Host, CL / TE conflicts, chunk-size overflow,
  16 KiB of chunk extensions or trailers, ``max_headers``,
  ``max_buf_size``...), and h11 never sees a pipelined request before
  ``start_next_cycle()``.
* A head that a lenient switch mended (``_lenient.py``) is written out again
  clean for h11, which has no such switches.
* h11's exceptions become ``ParseError`` (with its ``error_status_hint``),
  or ``IncompleteMessageError`` once the EOF was given; any of them moves
  the peer's side to ERROR.
* A base class, not a helper object: ``H11Codec`` is one object whose
  methods reach these slots and methods with the same lookups as if they
  were written in one class.
"""

from __future__ import annotations

from typing import Final

import h11

from hyper_core.error import IncompleteMessageError, ParseError, UserError

from ._body_readers import ChunkedReader, extract
from ._codec import MIN_BUF_SIZE, Role
from ._encode import OutgoingFraming
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
from ._heads import read_request_fields, read_response_fields
from ._parse import (
    DEFAULT_LIMITS,
    HeadLimits,
    check_no_bare_lf,
    check_request_start,
    parse_fields,
    parse_request_line,
    parse_status_line,
)

__all__ = ["H11Gate"]


# What the gate may hand to h11 next.
_NOTHING: Final = 0  # client: no request in flight, so no bytes are expected
_HEAD: Final = 1  # a message head, once complete and checked
_LENGTH: Final = 2  # ``_left`` more bytes of a Content-Length body
_CHUNKED: Final = 3  # chunked framing, unit by unit as ChunkedReader accepts it
_UNTIL_EOF: Final = 4  # everything: the body ends when the peer closes
_HOLD: Final = 5  # nothing until the next cycle (the message ended, or a switch)


class H11Gate:
    """The gate and receiving half of ``H11Codec``, and its state (see the module docstring).

    Not used alone: ``new_codec`` makes an ``H11Codec``, which adds the
    state properties and the sending half.
    """

    __slots__ = (
        "_allow_obs_fold",
        "_auto_date",
        "_chunks",
        "_conn",
        "_drop_length",
        "_eof",
        "_eof_given",
        "_expect_continue",
        "_feed",
        "_held",
        "_keep_alive",
        "_left",
        "_lenient",
        "_limits",
        "_max_buf_size",
        "_max_headers",
        "_out",
        "_remaining",
        "_request_method",
        "_role",
        "_scanned",
        "_te_trailers",
        "_their_error",
        "_their_version",
        "_title_case",
        "_upgrade_asked",
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
        if http09_responses:
            raise ValueError(
                "http09_responses is not supported by the h11 codec (HYPER_CORE_H1_CODEC=h11): "
                "h11 reads only HTTP/1.x status lines, and a status line made up for it "
                "would test our code, not h11's"
            )
        self._role = role
        self._limits = limits
        self._conn = h11.Connection(
            h11.SERVER if role is Role.SERVER else h11.CLIENT,
            max_incomplete_event_size=max_buf_size,
        )
        self._max_buf_size = max_buf_size
        self._max_headers = max_headers
        self._title_case = title_case_headers
        self._auto_date = auto_date_header
        self._allow_obs_fold = allow_obs_fold and role is Role.CLIENT
        # (ignore invalid lines, whitespace before a colon, SP runs in a
        # request line): the gate reads the head leniently, and h11 gets it
        # written out again clean.
        self._lenient = (
            ignore_invalid_headers,
            allow_space_before_colon and role is Role.CLIENT,
            allow_multiple_spaces_in_request_line and role is Role.SERVER,
        )
        self._held = bytearray()  # received, not handed to h11 yet
        self._eof = False
        self._eof_given = False  # h11 was told about the EOF
        self._scanned = 0  # bytes of an incomplete head already checked
        self._their_error = False  # a gate check failed (h11 does not know)
        self._keep_alive = True
        self._their_version: bytes | None = None
        self._out = OutgoingFraming()
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self._feed = _HEAD if self._role is Role.SERVER else _NOTHING
        self._left = 0
        self._chunks: ChunkedReader | None = None
        self._remaining: int | None = 0  # body bytes not yet returned as Data
        self._request_method: bytes | None = None
        self._upgrade_asked = False
        self._expect_continue = False
        self._te_trailers = False
        self._drop_length = False

    # -- receiving ----------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means EOF."""
        if data:
            if self._eof:
                raise UserError("received data after EOF")
            self._held += data
        else:
            self._eof = True

    def next_event(self) -> Event | Sentinel:
        """Parse and return the next event, or NEED_DATA / PAUSED."""
        if self._their_error:
            raise ParseError("the connection is in an error state", status_hint=None)
        conn = self._conn
        try:
            # While a head is awaited h11 holds no bytes (the gate hands it
            # whole heads only), so until the gate has a head (or the EOF)
            # to give, h11's answer is NEED_DATA: it is not asked.
            if self._feed == _HEAD and not self._eof_given and not self._give_head():
                return NEED_DATA
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    if self._eof_given:
                        raise IncompleteMessageError(str(exc)) from exc
                    raise ParseError(str(exc), status_hint=exc.error_status_hint) from exc
                if event is h11.NEED_DATA:
                    if self._give():
                        continue
                    if self._feed == _HOLD and self._held:
                        return PAUSED  # the next message waits for the next cycle
                    return NEED_DATA
                if event is h11.PAUSED:
                    return PAUSED
                # (Not isinstance(event, h11.Event): an ABC check, slower.)
                return self._translate(event)
        except (ParseError, IncompleteMessageError):
            self._their_error = True
            self._keep_alive = False
            raise

    def _translate(self, event: object) -> Event:
        # Exact types, most frequent first: cheaper than isinstance chains.
        if type(event) is h11.Data:
            data = bytes(event.data)
            if self._remaining is not None:
                self._remaining -= len(data)
            return Data(data)
        if type(event) is h11.EndOfMessage:
            self._remaining = 0
            return EndOfMessage(event.headers.raw_items() if event.headers else None)
        if type(event) is h11.Request:
            self._their_version = event.http_version
            fields = event.headers.raw_items()
            if self._drop_length:
                fields = [pair for pair in fields if pair[0].lower() != b"content-length"]
            return RequestHead(event.method, event.target, event.http_version, fields)
        if type(event) is h11.Response or type(event) is h11.InformationalResponse:
            self._their_version = event.http_version
            return ResponseHead(
                event.status_code, event.reason, event.http_version, event.headers.raw_items()
            )
        assert type(event) is h11.ConnectionClosed
        return ConnectionClosed()

    # -- the gate: what h11 may see -------------------------------------------

    def _give(self) -> bool:
        """Hand h11 the next bytes that passed hyper's checks.

        Returns False when there is nothing to give (more bytes are needed,
        or the message ended and the rest waits for the next cycle).
        """
        held = self._held
        feed = self._feed
        if feed == _HEAD:
            return self._give_head()
        if feed == _HOLD:
            # Bytes after the message wait for the next cycle (PAUSED); an
            # EOF at the boundary is a clean close.
            return False if held else self._give_eof()
        if feed == _NOTHING and held:
            raise ParseError(
                "unexpected bytes from the server before any request", status_hint=None
            )
        if held:
            if feed == _LENGTH:
                n = min(self._left, len(held))
                self._left -= n
                if not self._left:
                    self._feed = _HOLD
                self._conn.receive_data(extract(held, n))
                return True
            if feed == _CHUNKED:
                reader = self._chunks
                assert reader is not None
                probe = bytearray(held)
                if type(reader.read(probe)) is EndOfMessage:
                    self._feed = _HOLD
                used = len(held) - len(probe)
                if used:
                    self._conn.receive_data(extract(held, used))
                    return True
            elif feed == _UNTIL_EOF:
                self._conn.receive_data(extract(held, len(held)))
                return True
        # Nothing (more) to give: at EOF, h11 decides whether the message
        # was complete; an incomplete unit the gate holds is not given.
        return self._give_eof()

    def _give_eof(self) -> bool:
        if self._eof and not self._eof_given:
            self._eof_given = True
            self._conn.receive_data(b"")
            return True
        return False

    def _give_head(self) -> bool:
        held = self._held
        server = self._role is Role.SERVER
        if server:
            # RFC 9112 section 2.2: ignore empty lines before a request line
            # (h11 would refuse them).
            while held.startswith(b"\r\n"):
                del held[:2]
            if held == b"\r" and not self._eof:
                return False
        if not held:
            return self._give_eof()
        scanned = self._scanned
        # Only the bytes not searched before (see _native_codec._read_head).
        end = held.find(b"\r\n\r\n", scanned - 3 if scanned > 3 else 0)
        if end < 0:
            if len(held) > self._max_buf_size:
                raise ParseError("message head is larger than max_buf_size", status_hint=431)
            check_no_bare_lf(held, scanned)
            if server and scanned < 64:
                check_request_start(held)
            self._scanned = len(held)
            if self._eof:
                raise IncompleteMessageError(
                    "connection closed before the message head was complete"
                )
            return False
        if end + 4 > self._max_buf_size:
            raise ParseError("message head is larger than max_buf_size", status_hint=431)
        self._scanned = 0
        block = bytes(held[: end + 2])
        clean = self._check_request(block) if server else self._check_response(block)
        head = extract(held, end + 4)
        self._conn.receive_data(head if clean is None else clean)
        return True

    def _clean_head(
        self, block: bytes, start: int, fields: HeaderList, line: bytes | None = None
    ) -> bytes | None:
        """The head written out again (``line``, or the first line as is, then ``fields``).

        Only when a lenient switch is on: h11 has none, and a line they
        dropped or mended would make it refuse the head, so it gets the head
        as it was read.
        """
        if not any(self._lenient):
            return None
        lines = [block[:start] if line is None else line]
        lines.extend(b"%s: %s\r\n" % pair for pair in fields)
        lines.append(b"\r\n")
        return b"".join(lines)

    def _check_request(self, block: bytes) -> bytes | None:
        if self._conn.our_state is h11.ERROR:
            # Our side failed (a write, or misuse): h11 cannot take a new
            # request in that state, and no answer could be written.
            raise ParseError("our side of the connection has failed", status_hint=None)
        # The native codec's checks and framing decision (see _native_codec).
        limits = self._limits
        method, target, version, start = parse_request_line(
            block, limits, multiple_spaces=self._lenient[2]
        )
        if version != b"1.1" and version != b"1.0":
            if version == b"2.0" and method == b"PRI":
                raise ParseError(
                    "HTTP/2 connection preface on an HTTP/1 connection", status_hint=None
                )
            raise ParseError(f"unsupported HTTP version {version!r}", status_hint=505)
        fields = parse_fields(
            block, start, self._max_headers, limits, ignore_invalid=self._lenient[0]
        )
        info = read_request_fields(method, target, version, fields)
        if info.chunked:
            self._feed = _CHUNKED
            self._chunks = ChunkedReader(self._max_headers, limits)
            self._remaining = None
            # Content-Length beside Transfer-Encoding: h11 ignores it, hyper
            # removes it and closes after the response.
            self._drop_length = len(info.fields) != len(fields)
        else:
            self._feed = _LENGTH if info.body_length else _HOLD
            self._left = self._remaining = info.body_length
        if not info.keep_alive or version != b"1.1":
            self._keep_alive = False  # h11 keeps no HTTP/1.0 connection alive
        self._request_method = method
        self._upgrade_asked = info.upgrade
        self._expect_continue = info.expect_continue
        self._te_trailers = info.te_trailers
        line = b"%s %s HTTP/%s\r\n" % (method, target, version)
        return self._clean_head(block, start, fields, line)

    def _check_response(self, block: bytes) -> bytes | None:
        limits = self._limits
        version, status, _, start = parse_status_line(block, limits)
        if version != b"1.1" and version != b"1.0":
            raise ParseError(f"unsupported HTTP version {version!r}", status_hint=None)
        ignore_invalid, space_before_colon, _ = self._lenient
        fields = parse_fields(
            block,
            start,
            self._max_headers,
            limits,
            allow_obs_fold=self._allow_obs_fold,
            ignore_invalid=ignore_invalid,
            allow_space_before_colon=space_before_colon,
        )
        clean = self._clean_head(block, start, fields)
        if status < 200:
            if status == 101:
                if not self._upgrade_asked:
                    raise ParseError(
                        "101 response to a request that asked for no upgrade", status_hint=None
                    )
                self._feed = _HOLD
            return clean  # another head follows a 1xx
        info = read_response_fields(version, fields)
        if not info.keep_alive or version != b"1.1":
            self._keep_alive = False
        method = self._request_method
        if (
            (method == b"CONNECT" and status < 300)
            or method == b"HEAD"
            or status == 204
            or status == 304
        ):
            self._feed = _HOLD
            self._remaining = 0
        elif info.chunked:
            self._feed = _CHUNKED
            self._chunks = ChunkedReader(self._max_headers, limits)
            self._remaining = None
        elif info.length is not None:
            self._feed = _LENGTH if info.length else _HOLD
            self._left = self._remaining = info.length
        else:
            # RFC 9112 section 6.3 rules 4 and 8: read until the server closes.
            self._feed = _UNTIL_EOF
            self._remaining = None
            self._keep_alive = False
        return clean
