"""channel(): a body written by one task and read by another.

What belongs here: the bounded frame queue shared by every push-style body
(:class:`_FrameQueue`), and the user-facing pair built on it:
:class:`Sender` and :class:`ChannelBody`. ``Incoming.from_channel`` reuses the
queue with a bound in bytes instead of frames.

Strategy: a deque of frames bounded in frames and in data bytes, a state
machine, and one-shot ``anyio.Event`` objects for whoever waits (made when a
task must wait, set by whoever changes what it waits for). The states::

    OPEN --end()----> ENDED      reader drains what is queued, then gets None
    OPEN --abort()--> ABORTED    queue dropped; reader gets the abort error
    any  --release()-> RELEASED  (reader gone) queue dropped; sends fail

``abort`` after the end, or anything after a release, changes nothing. An
abort is reported to the reader at its next read rather than after the
frames still queued: the body is broken either way, and a proxy learns it
sooner. Waiting is the only place these operations yield: a frame already
queued is returned without a checkpoint, so a body costs no scheduling round
per frame while the producer keeps up.
"""

from __future__ import annotations

import enum
import sys
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self, final

import anyio

from hyper_core.body._frame import Frame, SizeHint
from hyper_core.error import BodyWriteAbortedError, ClosedError

if TYPE_CHECKING:
    from hyper_core.http import Headers

__all__ = ["ChannelBody", "Sender", "channel"]

# Frames a channel body holds before the sender waits. 16 follows hyper's
# old ``Body::channel`` spirit of a small bound: enough to keep a producer
# and a connection both busy, small enough that memory tracks the reader.
DEFAULT_BUFFER_FRAMES: Final = 16

_UNBOUNDED: Final = sys.maxsize
_UNKNOWN: Final = SizeHint()


class _State(enum.Enum):
    OPEN = "open"
    ENDED = "ended"
    ABORTED = "aborted"
    RELEASED = "released"


@final
class _FrameQueue:
    """A bounded queue of frames between one producer and one consumer."""

    __slots__ = (
        "_bytes",
        "_error",
        "_frames",
        "_max_bytes",
        "_max_frames",
        "_readable",
        "_state",
        "_writable",
    )

    def __init__(self, *, max_frames: int = _UNBOUNDED, max_bytes: int = _UNBOUNDED) -> None:
        self._frames: deque[Frame] = deque()
        self._bytes = 0  # data bytes queued
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._state = _State.OPEN
        self._error: BaseException | None = None
        self._readable: anyio.Event | None = None
        self._writable: anyio.Event | None = None

    @property
    def state(self) -> _State:
        return self._state

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def _wake_reader(self) -> None:
        if self._readable is not None:
            self._readable.set()
            self._readable = None

    def _wake_writers(self) -> None:
        if self._writable is not None:
            self._writable.set()
            self._writable = None

    def _closed_error(self) -> ClosedError:
        if self._state is _State.RELEASED:
            return ClosedError("the reader closed the body")
        if self._state is _State.ABORTED:
            return ClosedError("the body was aborted")
        return ClosedError("the body has already ended")

    def has_room(self, size: int) -> bool:
        # A data frame larger than the whole byte bound still goes in, alone.
        return len(self._frames) < self._max_frames and (
            self._bytes == 0 or self._bytes + size <= self._max_bytes
        )

    def put_nowait(self, frame: Frame) -> None:
        """Queue ``frame`` without checking the bounds."""
        if self._state is not _State.OPEN:
            raise self._closed_error()
        data = frame.data_ref
        if data is not None:
            self._bytes += len(data)
        self._frames.append(frame)
        self._wake_reader()

    async def put(self, frame: Frame) -> None:
        """Queue ``frame``, waiting while the queue is full."""
        data = frame.data_ref
        size = 0 if data is None else len(data)
        while True:
            if self._state is not _State.OPEN:
                raise self._closed_error()
            if self.has_room(size):
                self._bytes += size
                self._frames.append(frame)
                self._wake_reader()
                return
            if self._writable is None:
                self._writable = anyio.Event()
            await self._writable.wait()

    def end(self) -> None:
        """Mark the end: the reader gets what is queued, then ``None``."""
        if self._state is _State.OPEN:
            self._state = _State.ENDED
            self._wake_reader()
            self._wake_writers()

    def abort(self, error: BaseException) -> int:
        """Break the body; return the data bytes dropped from the queue."""
        if self._state is not _State.OPEN:
            return 0
        self._state = _State.ABORTED
        self._error = error
        return self._drop()

    def release(self) -> int:
        """The reader is gone; return the data bytes dropped from the queue."""
        if self._state is _State.RELEASED:
            return 0
        self._state = _State.RELEASED
        self._error = None
        return self._drop()

    def _drop(self) -> int:
        dropped = self._bytes
        self._frames.clear()
        self._bytes = 0
        self._wake_reader()
        self._wake_writers()
        return dropped

    async def get(self) -> Frame | None:
        """Return the next frame, ``None`` at the end; raise the abort error."""
        while True:
            if self._frames:
                frame = self._frames.popleft()
                data = frame.data_ref
                if data is not None:
                    self._bytes -= len(data)
                self._wake_writers()
                return frame
            state = self._state
            if state is _State.ENDED:
                return None
            if state is _State.ABORTED:
                assert self._error is not None
                raise self._error
            if state is _State.RELEASED:
                raise ClosedError("the body was closed")
            if self._readable is None:
                self._readable = anyio.Event()
            await self._readable.wait()

    def is_end_stream(self) -> bool:
        return self._state is _State.ENDED and not self._frames

    def frame_ready(self) -> bool:
        """Whether :meth:`get` answers without waiting: a frame queued, or not open."""
        return bool(self._frames) or self._state is not _State.OPEN


@final
class Sender:
    """The writing end of a :func:`channel` body.

    Use it as an async context manager: a normal exit ends the body
    (:meth:`aclose`); an exception, including cancellation, aborts it
    (:meth:`abort`), so the reader never waits for a producer that died::

        sender, body = channel()

        async def produce():
            async with sender:
                for chunk in chunks:
                    await sender.send_data(chunk)

    All sends raise :class:`~hyper_core.error.ClosedError` once the reader
    has closed the body (:meth:`ChannelBody.aclose`) or the body has ended or
    been aborted. A sender dropped without :meth:`aclose` or :meth:`abort`
    leaves the reader waiting (Python has no ``Drop``): the ``async with``
    form makes that impossible.
    """

    __slots__ = ("_queue",)

    def __init__(self, queue: _FrameQueue) -> None:
        self._queue = queue

    async def send(self, frame: Frame) -> None:
        """Queue ``frame``, waiting while the buffer is full.

        A trailers frame is the last one: it ends the body.

        Raises:
            ClosedError: The reader closed the body, or it already ended or
                was aborted.

        Cancel safety: cancelled while waiting, the frame is not queued.
        """
        await self._queue.put(frame)
        if frame.trailers_ref is not None:
            self._queue.end()

    async def send_data(self, data: bytes) -> None:
        """Queue a data frame, waiting while the buffer is full.

        Raises:
            ClosedError: As :meth:`send`.

        Cancel safety: cancelled while waiting, nothing is queued.
        """
        await self._queue.put(Frame.data(data))

    async def send_trailers(self, trailers: Headers) -> None:
        """Queue the trailers and end the body.

        Raises:
            ClosedError: As :meth:`send`.

        Cancel safety: cancelled while waiting, nothing is queued and the
        body is still open.
        """
        await self._queue.put(Frame.trailers(trailers))
        self._queue.end()

    async def aclose(self) -> None:
        """End the body normally: the reader gets what is queued, then the end.

        It does not wait for the reader. After an abort, or a second time, it
        does nothing.
        """
        self._queue.end()

    def abort(self) -> None:
        """Break the body: the reader's next read raises ``BodyWriteAbortedError``.

        Frames still queued are dropped. After the end it does nothing. A
        connection writing this body stops and resets the message (HTTP/1:
        closes the connection; HTTP/2: RST_STREAM) instead of ending it well.
        """
        self._abort(None)

    def _abort(self, cause: BaseException | None) -> None:
        error = BodyWriteAbortedError("the sender aborted the body")
        error.__cause__ = cause
        self._queue.abort(error)

    @property
    def is_closed(self) -> bool:
        """True once the reader has closed the body: sending is pointless."""
        return self._queue.state is _State.RELEASED

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_value is None:
            await self.aclose()
        elif isinstance(exc_value, anyio.get_cancelled_exc_class()):
            # A cancellation belongs to the producer's task; the reader only
            # needs to know the body is broken.
            self._abort(None)
        else:
            # The reader sees why the producer failed as the error's cause.
            self._abort(exc_value)

    def __repr__(self) -> str:
        return f"<body Sender {self._queue.state.value}>"


@final
class ChannelBody:
    """The reading end of a :func:`channel`: a body fed by a :class:`Sender`."""

    __slots__ = ("_queue",)

    def __init__(self, queue: _FrameQueue) -> None:
        self._queue = queue

    async def frame(self) -> Frame | None:
        """Return the next frame the sender queued, waiting for one.

        Returns ``None`` after the sender ended the body and every frame was
        read.

        Raises:
            BodyWriteAbortedError: The sender aborted the body (or exited its
                ``async with`` block with an exception).
            ClosedError: This body was closed with :meth:`aclose`.

        Cancel safety: cancelled while waiting, nothing is lost.
        """
        return await self._queue.get()

    def is_end_stream(self) -> bool:
        """Return True when the sender has ended the body and every frame was read."""
        return self._queue.is_end_stream()

    def size_hint(self) -> SizeHint:
        """Return an unknown size: the sender has not said."""
        return _UNKNOWN

    async def aclose(self) -> None:
        """Stop reading: queued frames are dropped and the sender's sends fail."""
        self._queue.release()

    def __repr__(self) -> str:
        return f"<ChannelBody {self._queue.state.value}>"


def channel(buffer: int = DEFAULT_BUFFER_FRAMES) -> tuple[Sender, ChannelBody]:
    """Return a connected (sender, body) pair for producing a body from a task.

    The body is pulled by its consumer (typically a connection writing a
    response); the sender waits whenever ``buffer`` frames are queued, so the
    producer runs no faster than the peer reads.

    Args:
        buffer: Frames queued before :meth:`Sender.send` waits (at least 1).
            The bound counts frames, not bytes: choose chunk sizes to suit.

    Raises:
        ValueError: ``buffer`` is less than 1.

    Example::

        sender, body = channel()
        executor.spawn(produce, sender)
        return Response(200, body=body)
    """
    if buffer < 1:
        raise ValueError(f"buffer must be at least 1 frame (got {buffer})")
    queue = _FrameQueue(max_frames=buffer)
    return Sender(queue), ChannelBody(queue)
