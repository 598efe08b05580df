"""The h11 codec: ``h11.Connection`` behind the seam, held to hyper's checks.

What belongs here: :class:`H11Codec`, the second implementation of
``_codec.Codec``. It exists so that the seam is real (two codecs pass the
same tests) and so that h11, the reference HTTP/1 state machine, keeps
checking the native codec's behaviour; ``new_codec(..., impl="h11")`` or
``HYPER_CORE_H1_CODEC=h11`` selects it.

Strategy:

* ``h11.Connection`` does the protocol work: it parses heads and bodies into
  events, runs the state machine (keep-alive, pipelining, 100-continue,
  protocol switches), frames bodies on both sides and serializes heads. Its
  events are translated to the seam's (names in their received case, from
  ``Headers.raw_items()``), its exceptions to ``ParseError`` (with its
  ``error_status_hint``) or ``UserError``, and ``send_failed()`` is
  h11's.
* A gate in front of it: received bytes wait in this codec's buffer and are
  handed to h11 only after the checks hyper makes and h11 does not (the same
  functions the native codec uses: ``_parse.py`` and ``_heads.py`` on each
  head, ``_body_readers.ChunkedReader`` on chunked framing), and never past the end
  of the current message. So both codecs refuse the same hostile input with
  the same status (bare CR / LF, control bytes, obs-fold, whitespace before
  a colon, Host, CL / TE conflicts, chunk-size overflow, 16 KiB of chunk
  extensions or trailers, ``max_headers``, ``max_buf_size``...), and h11
  never sees a pipelined request before ``start_next_cycle()``. The
  read-ahead (``trailing_data``) is whatever h11 holds plus the gate's
  buffer.
* Outgoing heads: hyper's framing decisions are made by ``_encode.py``
  exactly as for the native codec (Content-Length or chunked, ``connection:
  close``, ``date``, Title-Case, fields stripped from 204 / 304 / 1xx /
  CONNECT), the resulting fields go into an h11 event, and h11 runs its
  framing rules and state machine on it and writes it. The events are built
  with h11's public constructors, so h11 checks each encoded name and value
  itself; the user's fields are checked first with h11's grammar, in one C
  pass. Checking the user's fields, not the encoded lines, is what keeps a
  CR LF inside a value from passing as two fields.
* Hot paths, where h11's answer is known in advance, skip asking: no
  ``next_event()`` call while the gate has no complete head to give (h11
  then holds no bytes and would say NEED_DATA), one shared
  ``h11.EndOfMessage``, one join per ``send_message``, whose body of exactly
  its Content-Length skips hyper's length bookkeeping (it cannot fail).
  h11 still sees every event and decides every state.
* ``keep_alive`` and the DONE / MUST_CLOSE distinction are tracked here as
  well, because h11 learns about a close only from the ``Connection`` field
  of a message; the states reported are h11's, with DONE shown as MUST_CLOSE
  once keep-alive is off.

What h11 cannot do, and so this codec does differently from the native one
(each is asserted per codec in the tests):

* HTTP/1.0 has no keep-alive: a 1.0 request or response closes the
  connection after the exchange, ``Connection: keep-alive`` or not.
* Every response is written as HTTP/1.1, also to an HTTP/1.0 client (and
  ``100 Continue`` too); an HTTP/1.0 *request* cannot be sent at all
  (``UserError``).
* The only transfer coding is ``chunked``, alone, in one field: a response
  with ``Transfer-Encoding: gzip, chunked`` (hyper reads it as chunked) or an
  unknown coding (hyper reads until close) is a ``ParseError`` with hint
  501, and so is a request whose coding is spelled with empty list members
  or split over two fields; sending a user ``Transfer-Encoding`` other than
  ``chunked`` is a ``UserError`` (hyper appends ``chunked``).
* h11 rewrites the framing fields it manages: a chunked response gets
  ``Transfer-Encoding: chunked`` (Title-Case, last), a response to an
  HTTP/1.0 client or with ``Connection: close`` gets ``Connection: close``
  (Title-Case, last), a response to HEAD with no known length gets
  ``Transfer-Encoding: chunked`` (hyper sends no framing field), ``Host`` is
  written first in a request, and a received ``Transfer-Encoding`` value is
  lower-cased.
* h11's chunk grammar is narrower: no whitespace before ``;`` in a chunk
  extension and at most 20 hex digits in a chunk size (leading zeros
  included), and at most 20 digits in a Content-Length; these are 400s.
"""

from __future__ import annotations

import re
from typing import Final

import h11

from hyper_core.error import IncompleteMessageError, ParseError, UserError

from ._body_readers import ChunkedReader, extract
from ._codec import MIN_BUF_SIZE, CodecState, Role
from ._encode import (
    LENGTH,
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

__all__ = ["H11Codec"]

IDLE: Final = CodecState.IDLE
SEND_RESPONSE: Final = CodecState.SEND_RESPONSE
SEND_BODY: Final = CodecState.SEND_BODY
DONE: Final = CodecState.DONE
MUST_CLOSE: Final = CodecState.MUST_CLOSE
CLOSED: Final = CodecState.CLOSED
MIGHT_SWITCH_PROTOCOL: Final = CodecState.MIGHT_SWITCH_PROTOCOL
SWITCHED_PROTOCOL: Final = CodecState.SWITCHED_PROTOCOL
ERROR: Final = CodecState.ERROR

# h11's states, as the seam's: h11 names its state sentinels as the seam
# names its states (MIGHT_SWITCH_PROTOCOL is not in h11's __all__, hence
# the lookup by name).
_FROM_H11: Final[dict[object, CodecState]] = {
    getattr(h11, state.value): state for state in CodecState
}
# h11 events are immutable, so one end-of-message without trailers serves
# every send.
_H11_END: Final = h11.EndOfMessage()

# What the gate may hand to h11 next.
_NOTHING: Final = 0  # client: no request in flight, so no bytes are expected
_HEAD: Final = 1  # a message head, once complete and checked
_LENGTH: Final = 2  # ``_left`` more bytes of a Content-Length body
_CHUNKED: Final = 3  # chunked framing, unit by unit as ChunkedReader accepts it
_UNTIL_EOF: Final = 4  # everything: the body ends when the peer closes
_HOLD: Final = 5  # nothing until the next cycle (the message ended, or a switch)

# h11's grammar for the fields it is given to send (h11/_abnf.py: a token,
# and a value of field-content without leading or trailing whitespace,
# where a field-vchar is any byte but NUL and ASCII whitespace), checked
# over all the user's fields in one C pass before they are encoded: h11's
# own check sees only the encoded lines, where a CR LF inside a value would
# already look like two fields. Joined as ``name NUL value`` with
# LF between fields, a byte that neither a token nor a field-vchar admits,
# the split is unambiguous: a CR, LF or NUL inside a name or value fails.
_TOKEN: Final = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_H11_VALUE: Final = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"
_H11_PAIR: Final = _TOKEN + rb"\x00" + _H11_VALUE
_H11_FIELDS_RE: Final = re.compile(_H11_PAIR + rb"(?:\n" + _H11_PAIR + rb")*")
_H11_NAME_RE: Final = re.compile(_TOKEN)
_H11_VALUE_RE: Final = re.compile(_H11_VALUE)
# A field line as _encode.py writes it (``name: value``), once the user's
# fields are known to hold no CR or LF: the first ": " ends the name.
_ENCODED_FIELD_RE: Final = re.compile(rb"([^:\r\n]+): ([^\r\n]*)\r\n")


def _check_fields(fields: HeaderList, what: str = "head") -> None:
    """Refuse, in h11's words, fields that h11's grammar refuses.

    Raises:
        UserError: a name is not a token, or a value holds NUL, CR, LF or
            other whitespace than inner SP / HTAB.
    """
    if fields and not _H11_FIELDS_RE.fullmatch(b"\n".join(map(b"\x00".join, fields))):
        _refuse_fields(fields, what)


def _refuse_fields(fields: HeaderList, what: str = "head") -> None:
    """Raise, in h11's words, for the first field that h11's grammar refuses."""
    for pair in fields:
        if len(pair) != 2:
            raise UserError(f"h11 refused the {what}: a header field is not a pair: {pair!r}")
        name, value = pair
        if _H11_NAME_RE.fullmatch(name) is None:
            raise UserError(f"h11 refused the {what}: Illegal header name {name!r}")
        if _H11_VALUE_RE.fullmatch(value) is None:
            raise UserError(f"h11 refused the {what}: Illegal header value {value!r}")
    raise UserError(f"h11 refused the {what}: invalid header fields")  # pragma: no cover


def _encoded_fields(block: bytes, start: int) -> HeaderList:
    """The fields of a head _encode.py wrote, from byte ``start`` (after its first line).

    Only for blocks whose user fields passed :func:`_check_fields` (no CR or
    LF inside a name or value); the fields the encoder adds never hold any.
    """
    fields: HeaderList = _ENCODED_FIELD_RE.findall(block, start)
    return fields


class H11Codec:
    """The h11-based HTTP/1 codec for one connection and one role (see ``_codec.Codec``)."""

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

    # -- state --------------------------------------------------------------

    @property
    def role(self) -> Role:
        """The role this codec speaks for."""
        return self._role

    @property
    def our_state(self) -> CodecState:
        """Our side's state (h11's, DONE shown as MUST_CLOSE without keep-alive)."""
        state = _FROM_H11[self._conn.our_state]
        if state is DONE or state is MIGHT_SWITCH_PROTOCOL:
            # h11 moves a client that asked for an upgrade to
            # MIGHT_SWITCH_PROTOCOL until the answer; the seam keeps that
            # state for the server's view of the client.
            return DONE if self._keep_alive else MUST_CLOSE
        return state

    @property
    def their_state(self) -> CodecState:
        """The peer's side's state."""
        if self._their_error:
            return ERROR
        state = _FROM_H11[self._conn.their_state]
        if state is DONE:
            return DONE if self._keep_alive else MUST_CLOSE
        if state is SEND_RESPONSE:
            return IDLE  # client: no final response head yet
        if state is MIGHT_SWITCH_PROTOCOL and not self._upgrade_asked:
            # h11 also proposes a switch for Upgrade on HTTP/1.0.
            return DONE if self._keep_alive else MUST_CLOSE
        return state

    @property
    def their_version(self) -> bytes | None:
        """HTTP version of the last head received, or None."""
        return self._their_version

    @property
    def their_body_length(self) -> int | None:
        """Bytes of the incoming body still to come: 0, a count, or None if unknown."""
        if not self._their_error and self._conn.their_state is h11.SEND_BODY:
            return self._remaining
        return 0

    @property
    def upgrade_requested(self) -> bool:
        """The request of this cycle can be upgraded (CONNECT, or Upgrade on 1.1)."""
        return self._upgrade_asked

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        """h11's flag, for a request that has a body (hyper's rule)."""
        return self._expect_continue and self._conn.they_are_waiting_for_100_continue

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
        """Bytes received and not parsed (h11's, then the gate's), and EOF."""
        inside, _ = self._conn.trailing_data
        return inside + self._held, self._eof

    @property
    def input_pending(self) -> bool:
        """Received bytes wait to be parsed and the peer has not closed."""
        return not self._eof and bool(self._held or self._conn.trailing_data[0])

    def disable_keep_alive(self) -> None:
        """Close after the current cycle (h11 hears of it through ``connection: close``)."""
        self._keep_alive = False

    def start_next_cycle(self) -> None:
        """Reset both sides from DONE to IDLE.

        Raises:
            UserError: a side is not DONE.
            ParseError: (client) the server sent bytes after its response
                that no request asked for; the connection is unusable.
        """
        conn = self._conn
        if (
            conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and self._keep_alive
            and not self._their_error
        ):
            # The usual case, in h11's terms: the checks below all pass.
            if self._role is Role.SERVER:
                conn.start_next_cycle()
                # _reset_cycle(), inlined: once per request.
                self._feed = _HEAD
                self._left = 0
                self._chunks = None
                self._remaining = 0
                self._request_method = None
                self._upgrade_asked = False
                self._expect_continue = False
                self._te_trailers = False
                self._drop_length = False
                return
            if self._held or conn.trailing_data[0]:
                self._fail_unasked_bytes()
            conn.start_next_cycle()
            self._reset_cycle()
            return
        our = self.our_state
        their = self.their_state
        if our is not DONE or their is not DONE:
            raise UserError(f"cannot start a new cycle in states {our.value}/{their.value}")
        if self._role is Role.CLIENT and self.trailing_data[0]:
            self._fail_unasked_bytes()
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError as exc:  # pragma: no cover - states checked above
            raise UserError(str(exc)) from exc
        self._reset_cycle()

    def _fail_unasked_bytes(self) -> None:
        self._their_error = True
        self._keep_alive = False
        raise ParseError("unexpected bytes from the server after a response", status_hint=None)

    def send_failed(self) -> None:
        """A write of our bytes failed: our side is broken for good (h11's ERROR)."""
        self._fail_ours()

    def _fail_ours(self) -> None:
        self._keep_alive = False
        if self._conn.our_state is not h11.ERROR:
            self._conn.send_failed()

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

    # -- sending ------------------------------------------------------------
    #
    # Each step returns the pieces h11 wrote (``send_with_data_passthrough``)
    # so that send_message joins a whole message once.

    def send_head(self, head: RequestHead | ResponseHead, body_length: int | None = None) -> bytes:
        """Serialize a head with h11, after hyper's framing rules (see ``_codec.Codec``)."""
        return b"".join(self._head_parts(head, body_length))

    def _head_parts(self, head: RequestHead | ResponseHead, body_length: int | None) -> list[bytes]:
        event: h11.Request | h11.Response | h11.InformationalResponse
        try:
            if type(head) is ResponseHead:
                event = self._response_event(head, body_length)
                parts = self._conn.send_with_data_passthrough(event)
            else:
                assert type(head) is RequestHead
                event = self._request_event(head, body_length)
                parts = self._conn.send_with_data_passthrough(event)
                self._request_method = head.method
                self._upgrade_asked = self._out.upgrade
                self._feed = _HEAD
        except UserError:
            self._fail_ours()
            raise
        except h11.LocalProtocolError as exc:
            self._fail_ours()
            raise UserError(f"h11 refused the head: {exc}") from exc
        assert parts is not None
        return parts

    def _response_event(
        self, head: ResponseHead, body_length: int | None
    ) -> h11.Response | h11.InformationalResponse:
        if self._role is not Role.SERVER:
            raise UserError("a client codec sends requests, not responses")
        our = self._conn.our_state
        if our is not h11.SEND_RESPONSE and not (our is h11.IDLE and self.their_state is ERROR):
            raise UserError(f"cannot send a response head in state {self.our_state.value}")
        status = head.status
        method = self._request_method
        switching = response_switches(status, method, self._upgrade_asked)
        out = self._out
        block = encode_response_head(
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
        # The user's fields against h11's grammar before they are encoded
        # (see _H11_FIELDS_RE); h11 checks the encoded ones again.
        user_fields = head.headers
        if user_fields and not _H11_FIELDS_RE.fullmatch(b"\n".join(map(b"\x00".join, user_fields))):
            _refuse_fields(user_fields)
        reason = head.reason
        # The status line is "HTTP/1.x NNN reason" (h11 refuses a status
        # that is not three digits).
        fields: HeaderList = _ENCODED_FIELD_RE.findall(block, 15 + len(reason))
        if type(status) is not int:
            status = int(status)  # an int subclass (StatusCode) may print differently
        if status == 101:
            return h11.InformationalResponse(status_code=101, reason=reason, headers=fields)
        return h11.Response(status_code=status, reason=reason, headers=fields)

    def _request_event(self, head: RequestHead, body_length: int | None) -> h11.Request:
        if self._role is not Role.CLIENT:
            raise UserError("a server codec sends responses, not requests")
        our = self.our_state
        if our is not IDLE or self.their_state is not IDLE:
            raise UserError(f"cannot send a request head in state {our.value}")
        if self._held:
            self._their_error = True
            self._keep_alive = False
            raise ParseError(
                "unexpected bytes from the server before any request", status_hint=None
            )
        if head.version != b"1.1":
            raise UserError("the h11 codec sends HTTP/1.1 requests only")
        out = self._out
        block = encode_request_head(out, head, body_length, title_case=self._title_case)
        if not out.keep_alive:
            self._keep_alive = False
        _check_fields(head.headers)
        method = head.method
        target = head.target
        # The request line is "method target HTTP/1.1"; h11 checks both.
        fields = _encoded_fields(block, len(method) + len(target) + 12)
        return h11.Request(method=method, target=target, headers=fields)

    def send_informational(self, head: ResponseHead) -> bytes:
        """Serialize a 1xx response other than 101 (server only)."""
        if self._role is not Role.SERVER or self._conn.our_state is not h11.SEND_RESPONSE:
            raise UserError("an informational response needs a request awaiting its response")
        if not 100 <= head.status < 200 or head.status == 101:
            raise UserError(f"{head.status} is not an informational status other than 101")
        try:
            event = h11.InformationalResponse(
                status_code=head.status, reason=head.reason, headers=head.headers
            )
            return self._conn.send(event)
        except h11.LocalProtocolError as exc:
            self._fail_ours()
            raise UserError(f"h11 refused the informational response: {exc}") from exc

    def send_data(self, data: bytes) -> list[bytes]:
        """Frame a piece of body with h11 (see ``_codec.Codec``)."""
        if self._conn.our_state is not h11.SEND_BODY:
            raise UserError(f"cannot send body data in state {self.our_state.value}")
        out = self._out
        if out.mode == LENGTH:
            # hyper's length check and messages; the other framings have no
            # check to make (and h11 frames the chunks itself).
            try:
                out.frame_data(data)
            except UserError:
                self._fail_ours()
                raise
        if not data or not out.body_allowed:
            return []
        try:
            return self._conn.send_with_data_passthrough(h11.Data(data=data)) or []
        except h11.LocalProtocolError as exc:  # pragma: no cover - checked above
            raise UserError(str(exc)) from exc

    def send_end(self, trailers: HeaderList | None = None) -> bytes:
        """End the body we are sending (see ``_codec.Codec``)."""
        return b"".join(self._end_parts(trailers))

    def _end_parts(self, trailers: HeaderList | None) -> list[bytes]:
        if self._conn.our_state is not h11.SEND_BODY:
            raise UserError(f"cannot end a body in state {self.our_state.value}")
        out = self._out
        try:
            out.frame_end()
            event = _H11_END
            declared = out.trailer_names
            if out.chunked and trailers and declared:
                # hyper's rules pick the trailers that may go out (h11 checks
                # and writes them); the others are dropped unchecked, as before.
                _check_fields([p for p in trailers if p[0].lower() in declared], "trailers")
                block = encode_trailers(out, trailers, title_case=self._title_case)
                event = h11.EndOfMessage(headers=_encoded_fields(block, 3))
        except UserError:
            self._fail_ours()
            raise
        if not out.keep_alive:
            self._keep_alive = False
        try:
            parts = self._conn.send_with_data_passthrough(event)
        except h11.LocalProtocolError as exc:
            self._fail_ours()
            raise UserError(f"h11 refused to end the body: {exc}") from exc
        assert parts is not None
        return parts

    def send_message(
        self, head: RequestHead | ResponseHead, body: bytes, trailers: HeaderList | None = None
    ) -> bytes:
        """Head, whole body and end in one call."""
        parts = self._head_parts(head, len(body))
        conn = self._conn
        if conn.our_state is not h11.SEND_BODY:
            return b"".join(parts)  # switched protocols: no body follows a 101
        out = self._out
        if out.mode == LENGTH and out.remaining == len(body) and not trailers:
            # The usual case: a body of exactly its Content-Length, so
            # hyper's length checks (send_data, send_end) pass and there are
            # no trailers to pick; h11 still frames the body and ends it.
            out.remaining = 0
            try:
                if body:
                    parts += conn.send_with_data_passthrough(h11.Data(body)) or ()
                parts += conn.send_with_data_passthrough(_H11_END) or ()
            except h11.LocalProtocolError as exc:  # pragma: no cover - lengths agree
                self._fail_ours()
                raise UserError(f"h11 refused the body: {exc}") from exc
            return b"".join(parts)
        if body:
            parts += self.send_data(body)
        parts += self._end_parts(trailers)
        return b"".join(parts)
