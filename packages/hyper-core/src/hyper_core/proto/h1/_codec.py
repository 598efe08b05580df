"""The HTTP/1 codec seam: the small sans-I/O interface the dispatchers use.

What belongs here: the :class:`Codec` protocol, its two enums, the
constants every codec shares, and the :func:`new_codec` factory that picks
an implementation. Nothing here parses or awaits.

Implementations (both pass ``tests/test_h1_codec.py`` and the HTTP/1 suites):

* ``"native"`` (the default, ``_native_codec.py``): pure Python, h11's
  grammar (tightened) and hyper's framing rules; about twice as fast as h11.
* ``"h11"`` (``_h11_codec.py``): ``h11.Connection`` behind the seam, fed only
  bytes that passed the same hyper checks; its documented differences are
  the things h11 cannot do (HTTP/1.0 keep-alive, answering HTTP/1.0 as 1.0,
  transfer codings other than chunked...).

The implementation is picked per call (``new_codec(..., impl="h11")``) or
for the whole process by the environment variable ``HYPER_CORE_H1_CODEC``
(``native`` or ``h11``), read once when this module is imported, so that a
test suite can run on either codec. There is no public option for it.

Rules every codec follows (the dispatchers rely on them):

1. Bytes in, events out; events in, bytes out. A codec never touches a
   socket, a clock it was not given, or a task.
2. One codec per connection, for one role (CLIENT or SERVER), across
   keep-alive cycles. ``start_next_cycle()`` moves both sides from DONE back
   to IDLE.
3. Framing is the codec's job in both directions: it reads Content-Length,
   chunked and close-delimited bodies, and on send it adds or removes
   ``content-length`` / ``transfer-encoding`` / ``connection`` fields by the
   rules of RFC 9112 and hyper (see ``_native_codec.py``). The caller passes the
   body's exact length when it knows it.
4. Bad input raises :class:`hyper_core.error.ParseError` with the status a
   server should answer with (``status_hint``: 400, 413, 414, 431, 501, 505,
   or ``None`` for "close without answering"); their side moves to ERROR.
   Misuse by the caller (a body longer than its Content-Length, sending in
   the wrong state) raises :class:`hyper_core.error.UserError`; our side
   moves to ERROR. Any exception leaves the codec in a state that refuses
   further work instead of a half-updated one.
5. A write that the caller could not complete must be reported with
   ``send_failed()``: the byte stream is then unusable.

State machine (per side, like h11's; server shown, the client mirrors it)::

    their side:  IDLE --head--> SEND_BODY --end--> DONE --next cycle--> IDLE
                                  (no body: IDLE --head--> DONE)
                 DONE + upgrade asked (Upgrade / CONNECT) -> MIGHT_SWITCH_PROTOCOL
                 MIGHT_SWITCH_PROTOCOL + 101 / CONNECT 2xx sent -> SWITCHED_PROTOCOL
                 MIGHT_SWITCH_PROTOCOL + any other final response -> DONE
    our side:    IDLE --their head--> SEND_RESPONSE --head--> SEND_BODY --end--> DONE
    either side: DONE and keep-alive off -> MUST_CLOSE; EOF -> CLOSED;
                 any error -> ERROR (final)
"""

from __future__ import annotations

import enum
import os
from typing import Final, Protocol

from ._events import Event, HeaderList, RequestHead, ResponseHead, Sentinel
from ._parse import DEFAULT_LIMITS, HeadLimits

__all__ = [
    "CODEC_ENV_VAR",
    "DEFAULT_IMPL",
    "DEFAULT_MAX_BUF_SIZE",
    "IMPLS",
    "MIN_BUF_SIZE",
    "Codec",
    "CodecState",
    "Role",
    "new_codec",
]

#: Smallest allowed ``max_buf_size``, in bytes (hyper panics below 8192).
MIN_BUF_SIZE: Final = 8192
#: hyper's default ``max_buf_size``: 8192 + 4096 * 100 bytes.
DEFAULT_MAX_BUF_SIZE: Final = 417_792
#: The codec implementations :func:`new_codec` can make.
IMPLS: Final = ("native", "h11")
#: The environment variable that picks the process-wide default codec.
CODEC_ENV_VAR: Final = "HYPER_CORE_H1_CODEC"


def _default_impl() -> str:
    impl = os.environ.get(CODEC_ENV_VAR, "").strip().lower() or "native"
    if impl not in IMPLS:
        # A typo must not silently test the other codec.
        raise ValueError(f"{CODEC_ENV_VAR}={impl!r}: expected one of {', '.join(IMPLS)}")
    return impl


#: The codec :func:`new_codec` makes when no ``impl`` is given.
DEFAULT_IMPL: Final = _default_impl()


class Role(enum.Enum):
    """Which end of the connection a codec speaks for."""

    CLIENT = "CLIENT"
    SERVER = "SERVER"


class CodecState(enum.Enum):
    """The state of one side of an HTTP/1 connection (h11's names)."""

    IDLE = "IDLE"
    #: Server only: a request head arrived, no response head sent yet.
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    CLOSED = "CLOSED"
    MIGHT_SWITCH_PROTOCOL = "MIGHT_SWITCH_PROTOCOL"
    SWITCHED_PROTOCOL = "SWITCHED_PROTOCOL"
    ERROR = "ERROR"


class Codec(Protocol):
    r"""A sans-I/O HTTP/1 connection codec for one role.

    Reading: feed bytes with :meth:`receive_data`, then call
    :meth:`next_event` until it returns ``NEED_DATA`` or ``PAUSED``.
    Writing: :meth:`send_head`, :meth:`send_data`\* and :meth:`send_end`
    (or :meth:`send_message` for a body known in full), each returning the
    bytes to write.
    """

    @property
    def role(self) -> Role:
        """The role this codec speaks for."""
        ...

    @property
    def our_state(self) -> CodecState:
        """Our side's state."""
        ...

    @property
    def their_state(self) -> CodecState:
        """The peer's side's state."""
        ...

    @property
    def their_version(self) -> bytes | None:
        """HTTP version of the last head received (``b"1.1"``), or None."""
        ...

    @property
    def their_body_length(self) -> int | None:
        """Bytes of the current incoming body not yet returned as ``Data``.

        0 when the message has no body (or its end was reached); None when
        the length is not known in advance (chunked, or read until close).
        """
        ...

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        """The peer asked for ``100 Continue`` and has not been answered."""
        ...

    @property
    def upgrade_requested(self) -> bool:
        """The request of this cycle asked for an upgrade (CONNECT, or ``Upgrade`` on 1.1)."""
        ...

    @property
    def keep_alive(self) -> bool:
        """Whether the connection can carry another cycle after this one."""
        ...

    @property
    def our_body_allowed(self) -> bool:
        """After :meth:`send_head`: whether body bytes will be written at all.

        False for a response to HEAD, 1xx, 204, 304 and a 2xx to CONNECT; a
        caller may then skip producing the body.
        """
        ...

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not parsed, and whether EOF was received."""
        ...

    @property
    def input_pending(self) -> bool:
        """Received bytes wait to be parsed and the peer has not closed (no copy made)."""
        ...

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` means the peer closed (EOF).

        Raises:
            ParseError: the buffered head already exceeds the size limit.
        """
        ...

    def next_event(self) -> Event | Sentinel:
        """Parse and return the next event, or ``NEED_DATA`` / ``PAUSED``.

        Raises:
            ParseError: the peer sent something invalid; ``status_hint`` is
                the status to answer with (None: close without answering).
            IncompleteMessageError: EOF in the middle of a message.
        """
        ...

    def disable_keep_alive(self) -> None:
        """Close after the current cycle (graceful shutdown, ``keep_alive=False``)."""
        ...

    def send_head(self, head: RequestHead | ResponseHead, body_length: int | None = None) -> bytes:
        """Serialize a request head (client) or a final response head (server).

        Args:
            head: The head; its headers are the user's, framing fields
                included. The codec fixes framing and ``connection`` fields.
            body_length: The body's exact length in bytes if known, else
                None. Used only when the headers carry no framing fields.

        Raises:
            UserError: the head is not valid to send now (wrong state,
                Content-Length and Transfer-Encoding both set, ...).
        """
        ...

    def send_informational(self, head: ResponseHead) -> bytes:
        """Serialize a 1xx response other than 101 (server only)."""
        ...

    def send_data(self, data: bytes) -> list[bytes]:
        """Frame a piece of body; returns the pieces to write in order.

        An empty ``data`` yields ``[]`` (a zero-length chunk would end the
        body). Nothing is returned when the body is not allowed (HEAD, 204).

        Raises:
            UserError: more bytes than the declared Content-Length.
        """
        ...

    def send_end(self, trailers: HeaderList | None = None) -> bytes:
        """End the body (last chunk and trailers when chunked).

        Trailers are written only when the encoding is chunked and the rules
        allow it (server: the request said ``TE: trailers`` and the response
        declared them in ``Trailer``); the others are silently dropped.

        Raises:
            UserError: fewer bytes than the declared Content-Length.
        """
        ...

    def send_message(
        self, head: RequestHead | ResponseHead, body: bytes, trailers: HeaderList | None = None
    ) -> bytes:
        """Head, whole body and end in one call: the fast path for full bodies."""
        ...

    def send_failed(self) -> None:
        """Record that bytes we produced could not be written: our side is ERROR."""
        ...

    def start_next_cycle(self) -> None:
        """Reset both sides from DONE to IDLE for the next request.

        Raises:
            UserError: either side is not DONE.
        """
        ...


def new_codec(
    role: Role,
    *,
    max_buf_size: int = DEFAULT_MAX_BUF_SIZE,
    max_headers: int = 100,
    title_case_headers: bool = False,
    auto_date_header: bool = False,
    allow_obs_fold: bool = False,
    limits: HeadLimits | None = None,
    impl: str | None = None,
    ignore_invalid_headers: bool = False,
    allow_space_before_colon: bool = False,
    http09_responses: bool = False,
    allow_multiple_spaces_in_request_line: bool = False,
) -> Codec:
    """Make a codec for one connection.

    Args:
        role: CLIENT or SERVER.
        max_buf_size: Largest head accepted, in bytes (hyper's default,
            8192 + 4096 * 100). A bigger head is a ParseError with hint 431.
        max_headers: Most header fields in a head (hyper's default 100);
            more is a ParseError with hint 431. Also bounds trailer fields.
        title_case_headers: Write header names in Title-Case.
        auto_date_header: Server: add a cached ``date`` field to responses
            that have none.
        allow_obs_fold: Client: unfold obsolete line folding in response
            heads instead of rejecting it (never allowed in requests).
        ignore_invalid_headers: Drop invalid header lines of received heads
            instead of rejecting them, except lines that touch framing or
            Host (see ``_lenient.py``).
        allow_space_before_colon: Client: read ``Name : value`` in a
            response head as ``Name: value``.
        http09_responses: Client: take a first response that does not start
            with an HTTP/1.x status line as HTTP/0.9 (the bytes up to the
            close are its body). The h11 codec cannot (ValueError).
        allow_multiple_spaces_in_request_line: Server: accept runs of SP
            between the parts of a request line.
        limits: The bound on each element of a head (method, target, field
            name and value, reason phrase); None: the defaults of
            :class:`~hyper_core.proto.h1._parse.HeadLimits`.
        impl: ``"native"`` or ``"h11"``; None means :data:`DEFAULT_IMPL`
            (``native`` unless ``HYPER_CORE_H1_CODEC`` says otherwise).

    Raises:
        ValueError: an unknown ``impl``, ``max_buf_size`` below
            :data:`MIN_BUF_SIZE`, or ``http09_responses`` with the h11 codec.
    """
    chosen = DEFAULT_IMPL if impl is None else impl
    if chosen == "native":
        from ._native_codec import NativeCodec

        return NativeCodec(
            role,
            max_buf_size=max_buf_size,
            max_headers=max_headers,
            title_case_headers=title_case_headers,
            auto_date_header=auto_date_header,
            allow_obs_fold=allow_obs_fold,
            limits=limits if limits is not None else DEFAULT_LIMITS,
            ignore_invalid_headers=ignore_invalid_headers,
            allow_space_before_colon=allow_space_before_colon,
            http09_responses=http09_responses,
            allow_multiple_spaces_in_request_line=allow_multiple_spaces_in_request_line,
        )
    if chosen == "h11":
        from ._h11_codec import H11Codec

        return H11Codec(
            role,
            max_buf_size=max_buf_size,
            max_headers=max_headers,
            title_case_headers=title_case_headers,
            auto_date_header=auto_date_header,
            allow_obs_fold=allow_obs_fold,
            limits=limits if limits is not None else DEFAULT_LIMITS,
            ignore_invalid_headers=ignore_invalid_headers,
            allow_space_before_colon=allow_space_before_colon,
            http09_responses=http09_responses,
            allow_multiple_spaces_in_request_line=allow_multiple_spaces_in_request_line,
        )
    raise ValueError(f"unknown HTTP/1 codec {chosen!r}: expected one of {', '.join(IMPLS)}")
