"""The native HTTP/1 codec (the default): pure Python, h11's grammar and states, hyper's rules.

What belongs here: :class:`NativeCodec`, the state machine for both roles
and the decisions that depend on it (keep-alive, 100-continue, upgrades):
its state properties, the cycle (``start_next_cycle``, keep-alive) and the
sending half. Its base class :class:`~._native_receive.NativeReceiver`
holds the state and the receiving half. Byte-level parsing is in
``_parse.py`` (heads) and ``_body_readers.py`` (bodies), reading the fields
of a received head in ``_heads.py``, head encoding and outgoing framing in
``_encode.py``. The other codec behind the seam, ``_h11_codec.py``, runs
``h11.Connection`` itself and is held to the same checks.

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
  (framing, smuggling checks, keep-alive, upgrades); the receiving half
  (``_native_receive.py``) applies the verdict to the states and picks the
  body reader. Outgoing heads and framing are ``_encode.py``'s; this half
  applies what it decided (keep-alive, a protocol switch) to the states.
* State changes happen only after a check passed; any exception moves the
  side that caused it to ERROR, from which nothing more is parsed or sent.
* The lenient switches (``_lenient.py``) reach the codec as flags read on
  the slow paths only; HTTP/0.9 (``_http09_head``) is looked for only on a
  client built with ``http09_responses``, before its first final response.
* One class in two modules (a base class, not a helper object): a call or
  slot read costs the same whichever module defines it, compiled or not.
"""

from __future__ import annotations

from hyper_core.error import ParseError, UserError

from ._codec import MIN_BUF_SIZE, CodecState, Role
from ._encode import (
    LENGTH,
    NO_BODY,
    encode_request_head,
    encode_response_head,
    encode_trailers,
    response_switches,
)
from ._events import HeaderList, RequestHead, ResponseHead
from ._native_receive import (
    DONE,
    ERROR,
    IDLE,
    MIGHT_SWITCH_PROTOCOL,
    MUST_CLOSE,
    SEND_BODY,
    SEND_RESPONSE,
    SWITCHED_PROTOCOL,
    NativeReceiver,
)

__all__ = ["MIN_BUF_SIZE", "NativeCodec"]


class NativeCodec(NativeReceiver):
    """The native HTTP/1 codec for one connection and one role (see ``_codec.Codec``)."""

    __slots__ = ()

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
        if self._fresh is not None:  # the buffer is empty while it is set
            return self._fresh, self._eof
        return bytes(self._buf), self._eof

    @property
    def input_pending(self) -> bool:
        """Received bytes wait to be parsed and the peer has not closed."""
        return not self._eof and (
            bool(self._buf) or self._direct is not None or self._fresh is not None
        )

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
