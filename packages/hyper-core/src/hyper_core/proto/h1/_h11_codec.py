"""The h11 codec: ``h11.Connection`` behind the seam, held to hyper's checks.

What belongs here: :class:`H11Codec`, the second implementation of
``_codec.Codec``. It exists so that the seam is real (two codecs pass the
same tests) and so that h11, the reference HTTP/1 state machine, keeps
checking the native codec's behaviour; ``new_codec(..., impl="h11")`` or
``HYPER_CORE_H1_CODEC=h11`` selects it. Here: its state properties, the
cycle (``start_next_cycle``, keep-alive) and the sending half, with the
check of the user's fields against h11's grammar. Its base class
:class:`~._h11_gate.H11Gate` holds the state, the receiving half and the
gate in front of h11 (``_h11_gate.py``).

Strategy:

* ``h11.Connection`` does the protocol work: it parses heads and bodies into
  events, runs the state machine (keep-alive, pipelining, 100-continue,
  protocol switches), frames bodies on both sides and serializes heads. Its
  events are translated to the seam's (names in their received case, from
  ``Headers.raw_items()``), its exceptions to ``ParseError`` (with its
  ``error_status_hint``) or ``UserError``, and ``send_failed()`` is
  h11's.
* A gate in front of it (``_h11_gate.py``): received bytes wait in this
  codec's buffer and are handed to h11 only after the checks hyper makes
  and h11 does not, and never past the end of the current message, so both
  codecs refuse the same hostile input with the same status. The
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
* ``keep_alive`` and the DONE / MUST_CLOSE distinction are tracked by this
  codec as well, because h11 learns about a close only from the ``Connection`` field
  of a message; the states reported are h11's, with DONE shown as MUST_CLOSE
  once keep-alive is off.
* One class in two modules (a base class, not a helper object): a call or
  slot read costs the same whichever module defines it.

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

from hyper_core.error import ParseError, UserError

from ._codec import CodecState, Role
from ._encode import (
    LENGTH,
    encode_request_head,
    encode_response_head,
    encode_trailers,
    response_switches,
)
from ._events import HeaderList, RequestHead, ResponseHead
from ._h11_gate import _HEAD, H11Gate

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


class H11Codec(H11Gate):
    """The h11-based HTTP/1 codec for one connection and one role (see ``_codec.Codec``)."""

    __slots__ = ()

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
