"""The QUIC interface: the multiplexed transport HTTP/3 runs over.

What belongs here: the protocols an HTTP/3 connection needs from QUIC (a
connection that opens and accepts streams and says when it closed; the
streams themselves) and the two errors they raise. The aioquic-backed
implementation is :mod:`hyper_core.quic`; an in-memory one for tests is
:func:`hyper_core.testing.quic_pair`.

Strategy: hyper's 1.0 design note says HTTP/3 "will require a new transport
abstraction ... stream creation is shifted to the QUIC protocol". This is
that abstraction, shaped like :class:`~hyper_core.rt.IO` (and like the
``h3`` crate's ``quic`` traits): each stream is a small pull-based byte
stream, so flow control is the reader's pace. An implementation grants the
peer more receive window only as ``receive`` hands bytes out, and ``send``
waits while the peer's window (or the implementation's send buffer) is full.
Stream and connection errors carry the application error code (HTTP/3's
``H3_*`` codes), never a library's exception type.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "QuicConnection",
    "QuicConnectionClosed",
    "QuicReceiveStream",
    "QuicSendStream",
    "QuicStream",
    "QuicStreamReset",
    "is_unidirectional",
]


class QuicStreamReset(Exception):
    """The peer reset the stream (RESET_STREAM) or asked us to stop sending (STOP_SENDING).

    Attributes:
        error_code: The application error code the peer sent.
    """

    def __init__(self, error_code: int, message: str = "") -> None:
        super().__init__(message or f"stream reset by the peer (error code 0x{error_code:x})")
        self.error_code = error_code


class QuicConnectionClosed(Exception):
    """The QUIC connection is closed; no stream can be used any more.

    Attributes:
        error_code: The error code of the CONNECTION_CLOSE (application or
            transport), 0 when none was exchanged.
        reason: The reason phrase, if any.
        by_peer: Whether the peer closed it (``False``: this side did, or
            the idle timeout passed).
        timed_out: Whether the idle timeout (or the handshake timeout) closed it.
        application: Whether ``error_code`` is an application (HTTP/3) code
            rather than a QUIC transport code.
    """

    def __init__(
        self,
        error_code: int = 0,
        reason: str = "",
        *,
        by_peer: bool = False,
        timed_out: bool = False,
        application: bool = True,
    ) -> None:
        who = "the peer" if by_peer else "this side"
        what = "timed out" if timed_out else f"closed by {who} (error code 0x{error_code:x})"
        super().__init__(f"QUIC connection {what}" + (f": {reason}" if reason else ""))
        self.error_code = error_code
        self.reason = reason
        self.by_peer = by_peer
        self.timed_out = timed_out
        self.application = application


def is_unidirectional(stream_id: int) -> bool:
    """Whether a QUIC stream id names a unidirectional stream (RFC 9000 section 2.1)."""
    return bool(stream_id & 0x2)


class QuicReceiveStream(Protocol):
    """The receiving half of a QUIC stream.

    One reader at a time. The implementation returns flow-control credit to
    the peer as :meth:`receive` hands bytes out, so an unread stream holds
    at most its receive window.
    """

    @property
    def stream_id(self) -> int:
        """The QUIC stream id."""
        ...

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """Return between 1 and ``max_bytes`` bytes; ``b""`` once the peer ended the stream.

        Raises:
            QuicStreamReset: The peer reset the stream.
            QuicConnectionClosed: The connection closed first.

        Cancel safety: no data is lost if cancelled while waiting.
        """
        ...

    def at_eof(self) -> bool:
        """Whether the peer ended the stream and every byte of it was read.

        Lets HTTP/3 see that a request ended with its header section without
        waiting in :meth:`receive`.
        """
        ...

    def stop_sending(self, error_code: int, /) -> None:
        """Ask the peer to stop sending (STOP_SENDING); what arrives after is discarded."""
        ...


class QuicSendStream(Protocol):
    """The sending half of a QUIC stream. One writer at a time."""

    @property
    def stream_id(self) -> int:
        """The QUIC stream id."""
        ...

    async def send(self, data: bytes, /) -> None:
        """Queue ``data``, waiting while the stream's send buffer is full.

        The buffer drains as the peer's flow-control window and congestion
        control let data out, so a peer that reads slowly slows the sender.

        Raises:
            QuicStreamReset: The peer sent STOP_SENDING (``error_code`` is its code).
            QuicConnectionClosed: The connection is closed.
            anyio.ClosedResourceError: This side already ended or reset the stream.
        """
        ...

    async def send_eof(self) -> None:
        """End the stream (FIN) after what was queued. Idempotent."""
        ...

    def reset(self, error_code: int, /) -> None:
        """Abandon the stream (RESET_STREAM with ``error_code``); queued data is dropped."""
        ...


class QuicStream(QuicReceiveStream, QuicSendStream, Protocol):
    """A bidirectional QUIC stream: both halves.

    Optional capability, found by attribute lookup (as ``IO``'s are):
    ``notify_abort(callback | None)`` calls ``callback`` once when the peer
    abandons the stream (RESET_STREAM, STOP_SENDING, or the connection
    closing) and ``None`` forgets it. The HTTP/3 server uses it to tell a
    running service that its client went away (``ext.on_client_gone``)
    while nobody reads or writes the stream; without it that is noticed at
    the next read or write.
    """


class QuicConnection(Protocol):
    """An established QUIC connection (the handshake is done, ALPN agreed).

    Streams opened by the peer come out of :meth:`accept_stream`; streams of
    our own come from the two ``open_*`` methods. How the connection ended is
    reported by the :class:`QuicConnectionClosed` that every pending and
    later call raises.
    """

    @property
    def is_client(self) -> bool:
        """Whether this side started the connection."""
        ...

    async def open_stream(self) -> QuicStream:
        """Open a bidirectional stream, waiting while the peer's stream limit is reached.

        Raises:
            QuicConnectionClosed: The connection is closed.
        """
        ...

    async def open_unidirectional_stream(self) -> QuicSendStream:
        """Open a unidirectional stream (we send, the peer receives).

        Raises:
            QuicConnectionClosed: The connection is closed.
        """
        ...

    async def accept_stream(self) -> QuicStream | QuicReceiveStream:
        """Return the next stream the peer opened (unidirectional ones are receive-only).

        Tell them apart with :func:`is_unidirectional` on ``stream_id``.

        Raises:
            QuicConnectionClosed: The connection closed; how is in the error.
        """
        ...

    def close(self, error_code: int = 0, reason: str = "", /) -> None:
        """Close the connection with an application error code (CONNECTION_CLOSE).

        Does not wait; idempotent. Pending calls then raise
        :class:`QuicConnectionClosed`.
        """
        ...

    async def drain(self) -> None:
        """Wait until the peer acknowledged every byte queued on every stream.

        Returns at once if the connection is closed. A graceful close waits
        for this first: closing drops whatever is still unacknowledged.
        """
        ...

    async def wait_closed(self) -> QuicConnectionClosed:
        """Wait until the connection is closed; return how it ended."""
        ...

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The peer's address, when known."""
        ...
