"""Watching a stream while nobody reads it: the receive-watch capability.

What belongs here: :class:`SupportsReceiveWatch`, the typed protocol of an
IO that can tell, by a callback, when ``receive`` would not wait;
:class:`WatchableIO`, an :class:`~hyper_core.rt.IO` that has it; and
:class:`ReceiveWatcher`, its implementation over any IO (anyio's TCP, TLS
and memory streams, on asyncio or trio).

Why: an idle keep-alive connection must notice at once that its peer closed
it or sent bytes nobody asked for (the HTTP/1 client), without a task
parked in ``receive`` that every request must take the read from. A
transport that owns its read buffer (hyper-util's ``AsyncioSocketStream``)
answers from its own callbacks, with no task at all; any other stream gets
the same three methods from a :class:`ReceiveWatcher`, so the connection
has one way to read.

Strategy of :class:`ReceiveWatcher`: interruptibility is paid for only while
the stream is watched, never on the reads of an active exchange.

* A task of the user's (:meth:`ReceiveWatcher.run`) waits in the wrapped
  stream's ``receive`` only while a callback is registered and no caller
  reads. What it gets (bytes, the end of stream or an error) is held for the
  next ``receive`` or ``receive_nowait``, and the callback runs.
* A ``receive`` that starts while that task waits takes its result instead
  of reading beside it: it waits on an event, which
  :meth:`~ReceiveWatcher.interrupt_receive` can set, so this wait is
  interruptible at no cost.
* Any other ``receive`` is the wrapped stream's own call, with no cancel
  scope and nothing around it but two flag writes: a body streamed over the
  connection costs what it costs over the bare stream.
  ``interrupt_receive`` declines such a read (returns False); it ends when
  the stream is closed, which is how its owner stops it (the HTTP/1 client
  closes the IO when a connection ends with a read in flight).

Nothing is lost: the wrapped ``receive`` loses nothing when cancelled (the
``IO`` contract), and what the watching task read waits in :meth:`pending`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeGuard, final

import anyio

from hyper_core.rt._io import IO

__all__ = [
    "ReceiveWatcher",
    "SupportsReceiveWatch",
    "WatchableIO",
    "as_watchable",
    "supports_receive_watch",
]


class SupportsReceiveWatch(Protocol):
    """Optional IO capability: watch the read side with a callback, not a task.

    All three methods together, or none. hyper-core's HTTP/1 client uses them
    to watch an idle connection and to stop a read when the connection
    closes. hyper-util's ``AsyncioSocketStream`` has them natively; any
    other IO gets them from a :class:`ReceiveWatcher`.
    """

    def notify_receivable(self, callback: Callable[[], object] | None, /) -> bool:
        """Have ``callback()`` called once ``receive`` would not wait.

        The callback runs once, when bytes, the end of stream or a failure
        can be received (or the stream was closed). It must not raise and
        must not block. One callback at a time: a new one replaces the
        previous one; ``None`` withdraws it.

        Returns:
            True if ``receive`` would not wait right now; the callback is
            then not registered (the caller acts at once instead).
        """
        ...

    def receive_nowait(self, max_bytes: int, /) -> bytes:
        """Return between 1 and ``max_bytes`` bytes that are ready, without waiting.

        Raises:
            anyio.WouldBlock: Nothing is ready.
            anyio.EndOfStream: As ``IO.receive``.
            anyio.BrokenResourceError: As ``IO.receive``.
            anyio.ClosedResourceError: As ``IO.receive``.
        """
        ...

    def interrupt_receive(self, error: BaseException, /) -> bool:
        """Make the ``receive`` waiting now raise ``error``; no byte is lost.

        The stream is unchanged: the next ``receive`` works as usual. An
        implementation may decline a read it cannot stop cheaply; that read
        then ends when the stream is closed.

        Returns:
            Whether a waiting ``receive`` was interrupted (False: none
            waits, or the one waiting was declined).
        """
        ...


class WatchableIO(IO, SupportsReceiveWatch, Protocol):
    """An :class:`~hyper_core.rt.IO` with the :class:`SupportsReceiveWatch` capability."""


def supports_receive_watch(io: IO, /) -> TypeGuard[WatchableIO]:
    """Whether ``io`` has the three :class:`SupportsReceiveWatch` methods.

    They are looked up by name (all three, or the answer is no), not by
    ``isinstance``: a runtime-checkable protocol check costs far more.
    """
    return (
        getattr(io, "notify_receivable", None) is not None
        and getattr(io, "receive_nowait", None) is not None
        and getattr(io, "interrupt_receive", None) is not None
    )


def as_watchable(io: IO, /) -> WatchableIO:
    """Return ``io`` itself if it has the receive-watch capability, else a :class:`ReceiveWatcher`.

    A :class:`ReceiveWatcher` returned here needs its :meth:`~ReceiveWatcher.run` task.
    """
    return io if supports_receive_watch(io) else ReceiveWatcher(io)


@final
class ReceiveWatcher:
    """:class:`WatchableIO` over any IO: a task of its own watches while a callback waits.

    Run :meth:`run` in a task for as long as the watcher is used (cancel
    it to stop); without it a callback is never called. Writes and closing
    pass through to the wrapped IO. Bytes read and not yet returned are
    :meth:`pending`: hand them on with the wrapped IO when it changes hands.
    See the module docstring for which reads :meth:`interrupt_receive` stops.

    Args:
        io: The stream to watch. Nothing else may read from it meanwhile.
        watch_bytes: The ``max_bytes`` the watching task reads with until a
            ``receive`` asks for another size (then it follows the last one
            asked).
    """

    __slots__ = (
        "_done",
        "_end",
        "_held",
        "_interrupt",
        "_io",
        "_new_event",
        "_notify",
        "_reading",
        "_size",
        "_taking_over",
        "_wake",
        "_watching",
    )

    def __init__(self, io: IO, *, watch_bytes: int = 65536) -> None:
        if watch_bytes < 1:
            raise ValueError("watch_bytes must be a positive integer")
        self._io = io
        self._held = b""  # read by the watching task, not yet returned
        self._end: BaseException | None = None  # how the wrapped stream ended
        self._notify: Callable[[], object] | None = None
        self._watching = False  # the watching task waits in the wrapped receive
        self._reading = False  # a caller waits in the wrapped receive
        self._taking_over = False  # a caller waits for the watching task's read
        self._size = watch_bytes  # what the watching task asks for
        self._wake: anyio.Event | None = None  # the watching task sleeps on it
        self._done: anyio.Event | None = None  # the taking-over caller sleeps on it
        self._interrupt: BaseException | None = None
        # The backend's own Event class, found when run() starts:
        # ``anyio.Event()`` looks the running library up (through sniffio)
        # on every call, a visible share of a small request's cost.
        self._new_event: type[anyio.Event] | None = None

    @property
    def inner(self) -> IO:
        """The wrapped IO."""
        return self._io

    def pending(self) -> bytes:
        """Bytes read from the wrapped IO that no ``receive`` has returned yet."""
        return self._held

    def _ready_result(self, max_bytes: int) -> bytes:
        held = self._held
        if held:
            if max_bytes < 1:
                raise ValueError("max_bytes must be a positive integer")
            if len(held) <= max_bytes:
                self._held = b""
                return held
            self._held = held[max_bytes:]
            return held[:max_bytes]
        assert self._end is not None
        raise self._end  # the wrapped IO ended: so does every later read

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """Return between 1 and ``max_bytes`` bytes, as the wrapped IO's ``receive``.

        Raises:
            BaseException: The error given to :meth:`interrupt_receive`.
            anyio.EndOfStream: As the wrapped IO (also when it returned ``b""``).

        Cancel safety: no data is lost if cancelled while waiting.
        """
        if self._held or self._end is not None:
            return self._ready_result(max_bytes)
        if self._watching:
            return await self._take_over(max_bytes)
        self._size = max_bytes
        self._reading = True
        try:
            data = await self._io.receive(max_bytes)
        finally:
            self._reading = False
            if self._notify is not None:
                self._wake_watcher()
        if not data:
            raise anyio.EndOfStream
        return data

    async def _take_over(self, max_bytes: int) -> bytes:
        """Wait for the watching task's read and return its result."""
        self._size = max_bytes
        self._taking_over = True
        try:
            while self._watching:
                done = self._done
                if done is None:
                    assert self._new_event is not None  # run() is watching
                    done = self._done = self._new_event()
                await done.wait()
                interrupt = self._interrupt
                if interrupt is not None:
                    raise interrupt
        finally:
            self._taking_over = False
            self._interrupt = None  # meant for this receive only
        # The watching task's result, or (it was cancelled mid-read) a read of our own.
        return await self.receive(max_bytes)

    def receive_nowait(self, max_bytes: int = 65536, /) -> bytes:
        """Return what the watching task read, without waiting.

        Raises:
            anyio.WouldBlock: Nothing was read yet.
            anyio.EndOfStream: The wrapped IO ended (or its error, as it ended).
        """
        if self._held or self._end is not None:
            return self._ready_result(max_bytes)
        raise anyio.WouldBlock

    def notify_receivable(self, callback: Callable[[], object] | None, /) -> bool:
        """Have ``callback()`` called once ``receive`` would not wait (see the protocol)."""
        if callback is None:
            self._notify = None
            return False
        if self._held or self._end is not None:
            self._notify = None
            return True
        self._notify = callback
        if not self._watching and not self._reading:
            self._wake_watcher()
        return False

    def interrupt_receive(self, error: BaseException, /) -> bool:
        """Make a ``receive`` waiting for the watching task raise ``error``.

        A ``receive`` that reads the wrapped IO itself is declined (False):
        it ends when the wrapped IO is closed (see the module docstring).
        """
        if not self._taking_over:
            return False
        self._interrupt = error
        done = self._done
        if done is not None:
            self._done = None
            done.set()
        return True

    def _wake_watcher(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    async def run(self) -> None:
        """Watch the wrapped IO while a callback is registered; run until cancelled."""
        new_event = self._new_event = type(anyio.Event())
        while True:
            if self._notify is None or self._reading or self._held or self._end is not None:
                wake = self._wake = new_event()
                await wake.wait()
                continue
            self._watching = True
            try:
                data = await self._io.receive(self._size)
                if data:
                    self._held = data
                else:
                    self._end = anyio.EndOfStream()
            except Exception as exc:  # end of stream or a failure: for the next reader
                self._end = exc
            finally:
                self._watching = False
                done = self._done
                if done is not None:
                    self._done = None
                    done.set()
            callback = self._notify
            if callback is not None:
                self._notify = None
                callback()

    async def send(self, item: bytes, /) -> None:
        """Write ``item`` to the wrapped IO."""
        await self._io.send(item)

    async def send_eof(self) -> None:
        """Shut down the wrapped IO's write side."""
        await self._io.send_eof()

    async def aclose(self) -> None:
        """Close the wrapped IO."""
        await self._io.aclose()
