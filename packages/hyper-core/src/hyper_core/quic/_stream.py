"""The stream halves shared by every QUIC implementation here (aioquic-backed, in-memory).

What belongs here: :class:`RecvHalf` (bytes received and not yet read, the
end or the error that follows them, the waiting reader) and
:class:`QuicStreamHandle`, the object handed to HTTP/3 that satisfies
:class:`hyper_core.rt.QuicStream`. The connection behind a stream is any
:class:`StreamOwner`: it is told how much the reader consumed (to return
flow-control credit) and does the sending.

Strategy: nothing here touches a socket or a QUIC library. Waiting uses
one-shot ``anyio.Event`` objects made when a task must wait and set by
whoever changes the state (the memory pipe's pattern), so the halves work on
asyncio and trio alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, final

import anyio

from hyper_core.rt._quic import QuicConnectionClosed, QuicStreamReset

__all__ = ["QuicStreamHandle", "RecvHalf", "StreamOwner"]


@final
class RecvHalf:
    """Received bytes of one stream, waiting for the reader."""

    __slots__ = ("buffer", "error", "fin", "waiter")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.fin = False
        self.error: BaseException | None = None
        self.waiter: anyio.Event | None = None

    def feed(self, data: bytes, fin: bool) -> None:
        """Append received bytes (and the end, with ``fin``)."""
        if self.error is not None or self.fin:
            return
        if data:
            self.buffer += data
        if fin:
            self.fin = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        """The stream was reset or the connection closed: the reader gets ``error``.

        A reset drops what was not read (RFC 9000 section 3.2); a closed
        connection does too.
        """
        if self.error is None and not (self.fin and not self.buffer):
            self.error = error
            self.buffer.clear()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()

    async def take(self, max_bytes: int) -> bytes:
        """Wait for bytes and return up to ``max_bytes`` of them; ``b""`` at the end."""
        while not self.buffer:
            if self.error is not None:
                raise self.error
            if self.fin:
                return b""
            self.waiter = waiter = anyio.Event()
            await waiter.wait()
        buffer = self.buffer
        if len(buffer) <= max_bytes:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:max_bytes])
            del buffer[:max_bytes]
        return data


class StreamOwner(Protocol):
    """What a QUIC connection implementation provides to its stream handles."""

    def consumed(self, stream_id: int, size: int) -> None:
        """The reader took ``size`` bytes: the peer may send that much more."""
        ...

    async def send_stream(self, stream_id: int, data: bytes, fin: bool) -> None:
        """Queue ``data`` (and the end) on the stream, waiting for buffer room."""
        ...

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """Send RESET_STREAM."""
        ...

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        """Send STOP_SENDING."""
        ...


@final
class QuicStreamHandle:
    """One QUIC stream as :class:`hyper_core.rt.QuicStream` (or one of its halves).

    A unidirectional stream has only one half; the other half's calls raise
    ``anyio.ClosedResourceError``.
    """

    __slots__ = ("_ended", "_on_abort", "_owner", "_stream_id", "recv", "send_error")

    def __init__(self, owner: StreamOwner, stream_id: int, recv: RecvHalf | None) -> None:
        self._owner = owner
        self._stream_id = stream_id
        self.recv = recv
        self._ended = recv is not None and bool(stream_id & 0x2)  # receive-only
        self.send_error: BaseException | None = None  # STOP_SENDING or a closed connection
        self._on_abort: Callable[[], None] | None = None

    @property
    def stream_id(self) -> int:
        """The QUIC stream id."""
        return self._stream_id

    @property
    def send_ended(self) -> bool:
        """Whether our sending half is over (FIN or RESET_STREAM sent, or receive-only)."""
        return self._ended

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """See :meth:`hyper_core.rt.QuicReceiveStream.receive`."""
        recv = self.recv
        if recv is None:
            raise anyio.ClosedResourceError("this stream has no receiving half")
        data = await recv.take(max_bytes)
        if data:
            self._owner.consumed(self._stream_id, len(data))
        return data

    def at_eof(self) -> bool:
        """See :meth:`hyper_core.rt.QuicReceiveStream.at_eof`."""
        recv = self.recv
        return recv is not None and recv.fin and not recv.buffer and recv.error is None

    def stop_sending(self, error_code: int, /) -> None:
        """See :meth:`hyper_core.rt.QuicReceiveStream.stop_sending`."""
        recv = self.recv
        if recv is None or recv.error is not None or (recv.fin and not recv.buffer):
            return
        unread = len(recv.buffer)
        recv.fail(anyio.ClosedResourceError("stop_sending() was called"))
        if unread:
            self._owner.consumed(self._stream_id, unread)
        self._owner.stop_stream(self._stream_id, error_code)

    async def send(self, data: bytes, /) -> None:
        """See :meth:`hyper_core.rt.QuicSendStream.send`."""
        self._check_send()
        await self._owner.send_stream(self._stream_id, data, False)

    async def send_eof(self) -> None:
        """See :meth:`hyper_core.rt.QuicSendStream.send_eof`."""
        if self._ended:
            return
        if self.send_error is not None:
            raise self.send_error
        self._ended = True
        await self._owner.send_stream(self._stream_id, b"", True)

    def reset(self, error_code: int, /) -> None:
        """See :meth:`hyper_core.rt.QuicSendStream.reset`."""
        if self._ended or self.send_error is not None:
            return
        self._ended = True
        self._owner.reset_stream(self._stream_id, error_code)

    def _check_send(self) -> None:
        if self.send_error is not None:
            raise self.send_error
        if self._ended:
            raise anyio.ClosedResourceError("the stream's sending half is ended")

    def notify_abort(self, callback: Callable[[], None] | None, /) -> None:
        """Call ``callback`` once if the peer abandons the stream; ``None`` forgets it.

        Abandoning is RESET_STREAM or STOP_SENDING from the peer, or the
        connection closing. The callback runs synchronously where the event
        is processed: it must be quick and must not raise. This is an
        optional capability of :class:`hyper_core.rt.QuicStream` that a
        server uses to tell a service its client went away while nobody
        reads or writes the stream.
        """
        self._on_abort = callback

    def _aborted(self) -> None:
        callback = self._on_abort
        if callback is not None:
            self._on_abort = None
            callback()

    def fail_recv(self, error: QuicStreamReset) -> None:
        """RESET_STREAM arrived: the reader gets ``error``."""
        if self.recv is not None:
            self.recv.fail(error)
        self._aborted()

    def fail_send(self, error: BaseException) -> None:
        """STOP_SENDING arrived, or the connection closed: sends raise ``error`` from now on."""
        if self.send_error is None and not (self._ended and isinstance(error, QuicStreamReset)):
            self.send_error = error
        self._aborted()

    def fail(self, error: QuicConnectionClosed) -> None:
        """The connection is gone: both halves fail."""
        if self.recv is not None:
            self.recv.fail(error)
        if self.send_error is None:
            self.send_error = error
        self._aborted()

    def __repr__(self) -> str:
        return f"<QuicStream {self._stream_id}>"
