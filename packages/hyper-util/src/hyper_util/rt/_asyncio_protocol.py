"""The asyncio side of :class:`~hyper_util.rt.AsyncioSocketStream`: its protocol.

What belongs here: :class:`StreamProtocol`, the ``asyncio.Protocol`` whose
callbacks (``data_received``, ``eof_received``, ``connection_lost``,
``pause_writing``, ``resume_writing``) buffer what the transport reads and
record the transport's state, :func:`new_protocol`, which checks the
high-water marks and makes one, and :func:`writelines_pauses`, whether a
transport's ``writelines`` calls ``pause_writing`` as its ``write`` does.
The awaiting side is in ``_asyncio_stream``.

Strategy: all the stream's state lives in the protocol's slots, where the
callbacks reach it without a second attribute lookup; the stream reads and
changes the same slots directly. A callback never awaits: it appends,
counts, pauses reading at ``read_high_water`` and wakes the future a
waiting ``receive`` or ``send`` made (:func:`wake`). The buffering and
waiting rules are in the ``_asyncio_stream`` module's opening block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast, final

import anyio

__all__ = ["StreamProtocol", "new_protocol", "wake", "writelines_pauses"]


def wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve ``waiter`` if a task still waits on it (it may have been cancelled)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


@final
class StreamProtocol(asyncio.Protocol):
    """Buffers what the transport reads and records the transport's state.

    All the stream's state lives here, where the callbacks can reach it
    without a second attribute lookup;
    :class:`~hyper_util.rt.AsyncioSocketStream` is the awaiting side.
    """

    __slots__ = (
        "buffered",
        "chunks",
        "closed",
        "eof",
        "eof_sent",
        "exc",
        "lost",
        "lost_waiter",
        "notify",
        "read_high",
        "read_low",
        "read_waiter",
        "reading_paused",
        "transport",
        "write_high",
        "write_paused",
        "write_waiter",
    )

    def __init__(self, read_high_water: int, write_high_water: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.read_high = read_high_water
        # A quarter, as asyncio's own low-water marks: resuming at a quarter
        # rather than at "below high" keeps a slow reader from toggling the
        # socket's registration (an epoll_ctl call each way) on every read.
        self.read_low = read_high_water // 4
        self.write_high = write_high_water
        self.reading_paused = False
        self.write_paused = False
        self.eof = False
        self.eof_sent = False
        self.lost = False
        self.closed = False
        self.exc: Exception | None = None
        self.read_waiter: asyncio.Future[None] | None = None
        self.write_waiter: asyncio.Future[None] | None = None
        self.lost_waiter: asyncio.Future[None] | None = None
        # notify_receivable()'s one-shot callback.
        self.notify: Callable[[], object] | None = None

    def fire_notify(self) -> None:
        callback = self.notify
        if callback is not None:
            self.notify = None
            callback()

    # -- asyncio.Protocol callbacks ----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not isinstance: uvloop's transports do not subclass asyncio's.
        transport = cast("asyncio.Transport", transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.write_high)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        # The proactor loop (Windows) may hand over a bytearray.
        self.chunks.append(data if type(data) is bytes else bytes(data))
        self.buffered += len(data)
        if self.buffered >= self.read_high and not self.reading_paused:
            self.reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        wake(self.read_waiter)
        if self.notify is not None:
            self.fire_notify()

    def eof_received(self) -> bool:
        self.eof = True
        wake(self.read_waiter)
        self.fire_notify()
        # Keep the transport open: the peer only shut down its write side,
        # and this side may still answer (TCP half-close).
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exc = exc
        self.write_paused = False
        wake(self.read_waiter)
        wake(self.write_waiter)
        wake(self.lost_waiter)
        self.fire_notify()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        wake(self.write_waiter)

    # -- helpers for the stream ---------------------------------------------

    def read_error(self) -> Exception:
        """What ``receive`` raises once the buffer is empty and no more can come."""
        if self.closed:
            return anyio.ClosedResourceError()
        if self.exc is not None:
            error = anyio.BrokenResourceError()
            error.__cause__ = self.exc
            return error
        return anyio.EndOfStream()

    def write_error(self) -> Exception | None:
        """What ``send`` raises now, or ``None`` if writing is possible."""
        if self.closed or self.eof_sent:
            return anyio.ClosedResourceError()
        assert self.transport is not None
        if self.lost or self.transport.is_closing():
            error = anyio.BrokenResourceError()
            error.__cause__ = self.exc
            return error
        return None


def new_protocol(read_high_water: int, write_high_water: int) -> StreamProtocol:
    """A protocol for one stream; ``ValueError`` if a high-water mark is not positive."""
    if read_high_water < 1 or write_high_water < 1:
        raise ValueError("read_high_water and write_high_water must be positive byte counts")
    return StreamProtocol(read_high_water, write_high_water)


_writelines_checked: dict[type, bool] = {}


def writelines_pauses(kind: type) -> bool:
    """Whether ``kind.writelines`` pauses the protocol when its buffer fills, as write() does.

    CPython 3.12.0 to 3.12.x and 3.13.0 gave selector socket transports a
    writelines() that buffers and registers the writer itself but never
    calls ``_maybe_pause_protocol()``: a sender relying on pause_writing()
    then never waits, its memory grows without bound and it starves the
    loop (seen as a streamed upload to a peer that does not read hanging
    on those versions). Read from the method's code, once per transport
    type; a method without Python code (uvloop's) or one that does not
    buffer by itself (the base class joins and calls write()) pauses.
    """
    known = _writelines_checked.get(kind)
    if known is None:
        code = getattr(getattr(kind, "writelines", None), "__code__", None)
        names = () if code is None else code.co_names
        known = "_add_writer" not in names or "_maybe_pause_protocol" in names
        _writelines_checked[kind] = known
    return known
