"""Incoming: the body of a message received from the peer.

What belongs here: :class:`Incoming`, the one concrete body type that
connections hand to applications (request bodies on a server, response
bodies on a client); the :class:`_IncomingSource` protocol a connection
implements behind it; and the channel-backed source
(:meth:`Incoming.from_channel`) for connections that push frames.

Strategy: ``Incoming`` is a thin final class over a source, so applications
see one type whatever the protocol, while each connection supplies the
source that fits it. An HTTP/1 connection implements a source that reads
from the connection only when asked (the unread body never buffers more than
one read). An HTTP/2 connection, which demultiplexes many streams in one
task, pushes DATA frames into a :class:`IncomingSender` without waiting and
learns through ``on_consumed`` when the application has taken them, to
release exactly that much flow-control window.

``aclose()`` tells the source the application is done (``release()``); the
connection then drains or discards the rest, or resets the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol, Self, final

from hyper_core.body._channel import _FrameQueue, _State
from hyper_core.body._frame import Frame, SizeHint
from hyper_core.error import ClosedError

if TYPE_CHECKING:
    from hyper_core.http import Headers

__all__ = ["Incoming", "IncomingSender"]

_ZERO: Final = SizeHint.with_exact(0)
_UNKNOWN: Final = SizeHint()

# Data bytes a channel-backed Incoming queues before ``IncomingSender.send_data``
# waits: 64 KiB, the HTTP/2 default initial window (RFC 9113, section 6.9.2),
# so one window's worth of data can be in flight unread.
DEFAULT_INCOMING_BUFFER: Final = 65536


class _IncomingSource(Protocol):
    """What a connection implements to feed an :class:`Incoming` body."""

    async def next_frame(self) -> Frame | None:
        """Return the next frame of the received body, or ``None`` at its end."""
        ...

    def is_end_stream(self) -> bool:
        """Return True if :meth:`next_frame` will certainly return ``None``."""
        ...

    def size_hint(self) -> SizeHint:
        """Return the remaining size as far as it is known."""
        ...

    def release(self) -> None:
        """The reader dropped the body: drain or discard the rest (called once)."""
        ...

    # Optional: ``frame_ready() -> bool``, True when ``next_frame`` will not
    # wait (see ``Incoming.frame_ready``); a source without it is never ready.


@final
class _EmptySource:
    __slots__ = ()

    async def next_frame(self) -> Frame | None:
        return None

    def is_end_stream(self) -> bool:
        return True

    def frame_ready(self) -> bool:
        return True

    def size_hint(self) -> SizeHint:
        return _ZERO

    def release(self) -> None:
        pass


_EMPTY_SOURCE: Final = _EmptySource()


@final
class Incoming:
    """The body of a received message, read frame by frame or chunk by chunk.

    Connections make these; applications read them::

        async for chunk in request.body:   # data only; trailers are kept aside
            ...
        trailers = request.body.trailers

        collected = await collect(request.body)   # or everything at once

    Reading is what pulls data from the peer: an unread body holds at most a
    bounded amount in memory, and on HTTP/2 the peer may send more only as
    data is read. Call :meth:`aclose` when you stop reading early; the
    connection then discards the rest (HTTP/1, keeping the connection if it
    can) or resets the stream (HTTP/2).

    Args:
        source: The connection's source for this body. Applications do not
            build ``Incoming`` themselves except through :meth:`empty` and
            :meth:`from_channel` (useful to test a service).
    """

    __slots__ = ("_released", "_source", "_trailers")

    def __init__(self, source: _IncomingSource) -> None:
        self._source = source
        self._released = False
        self._trailers: Headers | None = None

    @classmethod
    def empty(cls) -> Incoming:
        """Return a body with no frames (what a message without a body has)."""
        return cls(_EMPTY_SOURCE)

    @classmethod
    def from_channel(
        cls,
        *,
        max_buffer: int = DEFAULT_INCOMING_BUFFER,
        size_hint: SizeHint | None = None,
        on_consumed: Callable[[int], None] | None = None,
        on_release: Callable[[], None] | None = None,
    ) -> tuple[IncomingSender, Incoming]:
        """Return a body fed by pushing frames into the returned sender.

        Args:
            max_buffer: Data bytes queued before :meth:`IncomingSender.send_data`
                waits (``send_data_nowait`` ignores it: the caller bounds
                itself, as HTTP/2 flow control does). Default 64 KiB, the
                HTTP/2 initial window.
            size_hint: The body's size, if known (say from Content-Length);
                it shrinks as data is read.
            on_consumed: Called with a byte count each time data bytes leave
                the queue: when the reader takes a data frame, and for
                whatever is dropped when the reader closes the body or the
                sender aborts it. Every queued data byte is reported exactly
                once (HTTP/2 returns that much flow-control window). It runs
                inside the reader's call and must not block.
            on_release: Called once when the reader closes the body with
                :meth:`aclose` (after ``on_consumed`` for the dropped bytes).

        Returns:
            The sender (for the connection) and the body (for the application).

        Raises:
            ValueError: ``max_buffer`` is less than 1.
        """
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be at least 1 byte (got {max_buffer})")
        source = _ChannelSource(max_buffer, size_hint, on_consumed, on_release)
        return IncomingSender(source), cls(source)

    async def frame(self) -> Frame | None:
        """Return the next frame, or ``None`` at the end of the body.

        Raises:
            ClosedError: The body was closed with :meth:`aclose`.
            hyper_core.error.HyperError: Reading failed; the subclass says why
                (the peer closed early: ``IncompleteMessageError``; the
                stream was reset: ``ProtocolError``; ...).

        Cancel safety: cancelled while waiting, nothing is lost.
        """
        if self._released:
            raise ClosedError("the body was closed")
        frame = await self._source.next_frame()
        if frame is not None and frame.trailers_ref is not None:
            self._trailers = frame.trailers_ref
        return frame

    def is_end_stream(self) -> bool:
        """Return True if the body is certainly over (always True once closed)."""
        return self._released or self._source.is_end_stream()

    def frame_ready(self) -> bool:
        """Return True if :meth:`frame` will answer without waiting.

        True when a frame is already buffered, or the body is over (ended,
        failed or closed); False when reading may wait for the peer, or the
        connection cannot tell (an HTTP/1 body). A reader that bounds each
        read in time needs no timer for a read that cannot wait.
        """
        if self._released:
            return True
        ready = getattr(self._source, "frame_ready", None)
        return ready is not None and bool(ready())

    def size_hint(self) -> SizeHint:
        """Return the remaining size, in bytes, as far as it is known.

        Exact when the peer announced a length (Content-Length) and for an
        empty body; unknown for chunked or close-delimited bodies.
        """
        if self._released:
            return _ZERO
        return self._source.size_hint()

    @property
    def trailers(self) -> Headers | None:
        """The trailers, once a trailers frame has been read (``None`` before, or none)."""
        return self._trailers

    async def aclose(self) -> None:
        """Stop reading: the connection may discard the rest. Idempotent; never waits."""
        self.close()

    def close(self) -> None:
        """:meth:`aclose`, for synchronous code (a finalizer, a sync wrapper)."""
        if not self._released:
            self._released = True
            self._source.release()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        """Return the next data chunk; trailers are skipped (see :attr:`trailers`)."""
        while True:
            frame = await self.frame()
            if frame is None:
                raise StopAsyncIteration
            data = frame.data_ref
            if data is not None:
                return data

    def __repr__(self) -> str:
        state = "closed" if self._released else "open"
        return f"<Incoming {state} {self.size_hint()!r}>"


@final
class _ChannelSource:
    """An Incoming source fed by pushes from a connection."""

    __slots__ = ("_lower", "_on_consumed", "_on_release", "_queue", "_upper")

    def __init__(
        self,
        max_buffer: int,
        size_hint: SizeHint | None,
        on_consumed: Callable[[int], None] | None,
        on_release: Callable[[], None] | None,
    ) -> None:
        self._queue = _FrameQueue(max_bytes=max_buffer)
        hint = _UNKNOWN if size_hint is None else size_hint
        self._lower = hint.lower
        self._upper = hint.upper
        self._on_consumed = on_consumed
        self._on_release = on_release

    def _consumed(self, size: int) -> None:
        if size and self._on_consumed is not None:
            self._on_consumed(size)

    async def next_frame(self) -> Frame | None:
        frame = await self._queue.get()
        if frame is not None:
            data = frame.data_ref
            if data is not None and data:
                size = len(data)
                self._lower = max(0, self._lower - size)
                if self._upper is not None:
                    self._upper = max(0, self._upper - size)
                self._consumed(size)
        return frame

    def is_end_stream(self) -> bool:
        return self._queue.is_end_stream()

    def frame_ready(self) -> bool:
        return self._queue.frame_ready()

    def size_hint(self) -> SizeHint:
        if self._queue.is_end_stream():
            return _ZERO
        return SizeHint(self._lower, self._upper)

    def release(self) -> None:
        self._consumed(self._queue.release())
        if self._on_release is not None:
            self._on_release()


@final
class IncomingSender:
    """The connection's end of :meth:`Incoming.from_channel`: push the received body.

    Sends raise :class:`~hyper_core.error.ClosedError` once the body has
    ended, been aborted, or been closed by its reader (check
    :attr:`is_released` to skip the exception on a hot path).
    """

    __slots__ = ("_source",)

    def __init__(self, source: _ChannelSource) -> None:
        self._source = source

    async def send_data(self, data: bytes) -> None:
        """Queue a data frame, waiting while ``max_buffer`` bytes are queued.

        A chunk larger than ``max_buffer`` waits for an empty queue and goes
        in alone.

        Raises:
            ClosedError: The body ended, was aborted, or was released.

        Cancel safety: cancelled while waiting, nothing is queued.
        """
        await self._source._queue.put(Frame.data(data))

    def send_data_nowait(self, data: bytes) -> None:
        """Queue a data frame at once, whatever is already queued.

        For a caller that bounds what it pushes itself (HTTP/2 flow control).

        Raises:
            ClosedError: The body ended, was aborted, or was released.
        """
        self._source._queue.put_nowait(Frame.data(data))

    def send_trailers(self, trailers: Headers) -> None:
        """Queue the trailers and end the body.

        Raises:
            ClosedError: The body ended, was aborted, or was released.
        """
        self._source._queue.put_nowait(Frame.trailers(trailers))
        self._source._queue.end()

    def finish(self) -> None:
        """End the body: the reader gets what is queued, then the end. Idempotent."""
        self._source._queue.end()

    def abort(self, error: BaseException) -> None:
        """Fail the body: the reader's next read raises ``error``.

        Queued frames are dropped (and reported through ``on_consumed``).
        After the end or a release it does nothing.

        Args:
            error: What the reader gets, usually a
                :class:`~hyper_core.error.HyperError` subclass such as
                ``IncompleteMessageError`` (the peer closed mid-body) or
                ``ProtocolError`` (the stream was reset).
        """
        source = self._source
        source._consumed(source._queue.abort(error))

    @property
    def is_released(self) -> bool:
        """True once the reader closed the body: the rest is unwanted."""
        return self._source._queue.state is _State.RELEASED

    @property
    def queued_bytes(self) -> int:
        """Data bytes queued and not yet read."""
        return self._source._queue.queued_bytes

    def __repr__(self) -> str:
        return f"<IncomingSender {self._source._queue.state.value}>"
