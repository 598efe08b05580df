"""The wrappers the pooled client puts around an IO and around a response body.

What belongs here: :class:`TimedWriteIO`, an IO whose writes give up after
the write timeout of the exchange in progress, and :class:`PooledBodySource`, the source behind the
``Incoming`` body the client hands out, which reports when the body ended
(so the connection goes back to the pool) and bounds each read in time.

Strategy: both are thin pass-throughs that cost one extra call. Every
pooled connection's IO is wrapped, because each request may bring its own
write timeout (``Timeouts``): the client sets :attr:`TimedWriteIO.timeout`
as an exchange starts, and with no limit a write is a plain call through.
The body wrapper is used only for bodies that are not over when the response
arrives (a response without a body returns its connection at once). Over an
IO with the receive-watch capability (:class:`hyper_core.rt.SupportsReceiveWatch`:
hyper-util's asyncio stream), :func:`timed_write_io` returns a
:class:`TimedWriteWatchableIO`, whose three typed methods delegate to it, so
the connection watches the stream itself with a write timeout too; over any
other IO a plain :class:`TimedWriteIO` (the connection then reads it
through a ``hyper_core.rt.ReceiveWatcher``).

A timed-out write is reported by raising :class:`WriteTimedOut`, a subclass
of ``anyio.BrokenResourceError``, from ``send``: to the connection it is a
broken stream (which it is, once part of a message may be on the wire), and
the client finds it in the error's ``__cause__`` chain to raise
``WriteTimeoutError`` instead. It breaks the stream both ways: the wrapped
IO is closed at once (forcefully: a peer that took nothing for that long
would not take the rest), which wakes a ``receive`` waiting in another task,
and every ``receive`` then raises ``WriteTimedOut`` too. A streamed request
body is written by a task of its own while the caller waits for the
response, and hyper-core reads on after a failed body write (the server may
have answered early): without this, the caller would wait for a response
that a server not reading never sends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final, final

import anyio

from hyper_core.body import Frame, Incoming, SizeHint
from hyper_core.error import HyperError
from hyper_core.rt import IO, Timer, WatchableIO, send_all, supports_receive_watch
from hyper_util.client.legacy._errors import (
    ReadTimeoutError,
    TotalTimeoutError,
    WriteTimeoutError,
)

__all__ = [
    "PooledBodySource",
    "TimedWriteIO",
    "TimedWriteWatchableIO",
    "WriteTimedOut",
    "find_cause",
    "timed_write_io",
]

_NEVER: Final = math.inf


class WriteTimedOut(anyio.BrokenResourceError):
    """A write waited longer than the write timeout (internal marker)."""


def find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """Return the first exception of ``kind`` in ``exc``'s cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class TimedWriteIO:
    """An IO whose ``send`` calls each give up after :attr:`timeout` seconds.

    Attributes:
        timeout: Seconds a write may stay blocked (``None``: no limit); the
            client sets it for each exchange.
    """

    __slots__ = ("_io", "_timed_out", "_timer", "timeout")

    def __init__(self, io: IO, timer: Timer, timeout: float | None) -> None:
        self._io = io
        self._timer = timer
        self.timeout = timeout
        self._timed_out = False

    @property
    def inner(self) -> IO:
        """The wrapped IO."""
        return self._io

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """Read from the wrapped IO (no time limit here).

        Raises:
            WriteTimedOut: A write timed out (now or earlier): the stream is broken.
        """
        try:
            return await self._io.receive(max_bytes)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            if self._timed_out:
                raise WriteTimedOut from None
            raise

    async def _timed_out_now(self) -> None:
        """Break the stream both ways (see the module docstring)."""
        self._timed_out = True
        # anyio.aclose_forcefully's way: a stream closed in a cancelled scope
        # aborts instead of flushing; the close wakes a waiting receive.
        with anyio.CancelScope() as scope:
            scope.cancel()
            await self._io.aclose()

    async def send(self, item: bytes, /) -> None:
        """Write ``item``; raise :class:`WriteTimedOut` after the write timeout."""
        if self._timed_out:
            raise WriteTimedOut
        timeout = self.timeout
        if timeout is None:
            await self._io.send(item)
            return
        timer = self._timer
        with timer.deadline(timer.now() + timeout) as deadline:
            await self._io.send(item)
        if deadline.expired:
            await self._timed_out_now()
            raise WriteTimedOut

    async def send_many(self, items: Sequence[bytes], /) -> None:
        """Write every chunk (vectored when the IO can); same limit as :meth:`send`."""
        if self._timed_out:
            raise WriteTimedOut
        timeout = self.timeout
        if timeout is None:
            await send_all(self._io, items)
            return
        timer = self._timer
        with timer.deadline(timer.now() + timeout) as deadline:
            await send_all(self._io, items)
        if deadline.expired:
            await self._timed_out_now()
            raise WriteTimedOut

    async def send_eof(self) -> None:
        """Shut down the write side of the wrapped IO."""
        await self._io.send_eof()

    async def aclose(self) -> None:
        """Close the wrapped IO (already closed, at once, after a timed-out write)."""
        if not self._timed_out:
            await self._io.aclose()

    def extra(self, attribute: Any, default: Any = None) -> Any:
        """Pass anyio typed attributes through (``SocketAttribute``...)."""
        extra = getattr(self._io, "extra", None)
        return default if extra is None else extra(attribute, default)


@final
class TimedWriteWatchableIO(TimedWriteIO):
    """A :class:`TimedWriteIO` over a :class:`~hyper_core.rt.WatchableIO`, watchable too.

    Reads are not timed here: the three receive-watch methods are the
    wrapped IO's (a stream broken by a timed-out write is closed, which its
    watch reports).
    """

    __slots__ = ("_rx",)

    def __init__(self, io: WatchableIO, timer: Timer, timeout: float | None) -> None:
        super().__init__(io, timer, timeout)
        self._rx = io

    def notify_receivable(self, callback: Callable[[], object] | None, /) -> bool:
        """The wrapped IO's ``notify_receivable``."""
        return self._rx.notify_receivable(callback)

    def receive_nowait(self, max_bytes: int, /) -> bytes:
        """The wrapped IO's ``receive_nowait``."""
        return self._rx.receive_nowait(max_bytes)

    def interrupt_receive(self, error: BaseException, /) -> bool:
        """The wrapped IO's ``interrupt_receive``."""
        return self._rx.interrupt_receive(error)


def timed_write_io(io: IO, timer: Timer, timeout: float | None) -> TimedWriteIO:
    """Wrap ``io`` for write timeouts, keeping its receive-watch capability if it has one."""
    if supports_receive_watch(io):
        return TimedWriteWatchableIO(io, timer, timeout)
    return TimedWriteIO(io, timer, timeout)


@final
class PooledBodySource:
    """The source of a pooled response body: says when it ended, bounds each read.

    Args:
        inner: The connection's own response body.
        on_end: Called once with True when the body was read to its end (or
            closed when nothing was left), False when it failed, timed out or
            was closed early.
        timer: The clock for the limits.
        read_timeout: Seconds each read may wait for data (``None``: no limit).
        total_deadline: When the whole exchange must be over, on the timer's
            clock (``math.inf``: never).
    """

    __slots__ = ("_done", "_inner", "_on_end", "_read_timeout", "_timer", "_total")

    def __init__(
        self,
        inner: Incoming,
        on_end: Callable[[bool], None],
        timer: Timer,
        read_timeout: float | None,
        total_deadline: float,
    ) -> None:
        self._inner = inner
        self._on_end = on_end
        self._timer = timer
        self._read_timeout = read_timeout
        self._total = total_deadline
        self._done = False

    def _end(self, complete: bool) -> None:
        if self._done:
            return
        self._done = True
        if not complete:
            # HTTP/1: an unfinished body closes its connection; HTTP/2:
            # the stream is reset.
            self._inner.close()
        self._on_end(complete)

    async def next_frame(self) -> Frame | None:
        """Return the next frame of the body, or ``None`` at its end.

        Raises:
            ReadTimeoutError: No data within ``read_timeout``.
            TotalTimeoutError: The total deadline passed.
            WriteTimeoutError: The request body, still being written, timed
                out (the connection broke).
            hyper_core.error.HyperError: Reading failed (the connection's error).

        Cancel safety: cancelled from outside while waiting, nothing is lost.
        """
        read_timeout = self._read_timeout
        total = self._total
        inner = self._inner
        try:
            # A read that cannot wait needs no deadline (it could not fire:
            # nothing suspends); over HTTP/2 most frames are already queued,
            # and a deadline costs two cancel scope operations.
            if (read_timeout is None and total == _NEVER) or inner.frame_ready():
                frame = await inner.frame()
            else:
                timer = self._timer
                read_at = _NEVER if read_timeout is None else timer.now() + read_timeout
                at = min(read_at, total)
                frame = None
                with timer.deadline(at) as deadline:
                    frame = await inner.frame()
                if deadline.expired:
                    self._end(False)
                    if total <= read_at:
                        raise TotalTimeoutError("the exchange took longer than the total timeout")
                    raise ReadTimeoutError(
                        f"no response body data within the read timeout ({read_timeout} s)"
                    )
        except (HyperError, Exception) as exc:
            self._end(False)
            if find_cause(exc, WriteTimedOut) is not None:
                raise WriteTimeoutError("writing the request body timed out") from exc
            raise
        if frame is None:
            self._end(True)
        return frame

    def is_end_stream(self) -> bool:
        """Whether the body is over."""
        return self._inner.is_end_stream()

    def frame_ready(self) -> bool:
        """Whether the next frame is there without waiting (the connection's answer)."""
        return self._inner.frame_ready()

    def size_hint(self) -> SizeHint:
        """The remaining size, as the connection knows it."""
        return self._inner.size_hint()

    def release(self) -> None:
        """The reader closed the body: the connection is kept only if nothing was left."""
        if self._done:
            self._inner.close()
            return
        complete = self._inner.is_end_stream()
        self._inner.close()
        self._end(complete)
