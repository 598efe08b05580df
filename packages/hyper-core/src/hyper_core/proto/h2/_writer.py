"""The HTTP/2 server connection's writer: one output queue, one task sending it.

What belongs here: :class:`_Writer`, which owns everything between "a frame
is queued" and "it was sent": the queue (h2's own output buffer plus
``raw_out``, frames written around h2 such as the graceful GOAWAY), the one
writer task (:meth:`_Writer.run`), the count of DATA bytes queued and not
yet sent with the waits for it to drain, the ``send_stall_timeout`` deadline
of every send, and the write marks that settle ``ext.on_write`` reports
(``_write_marks.py``). The connection (``_server.py``) makes one writer and
stores the bound methods the stream tasks and the reader call
(``self._want_write = writer.want_write``), so queueing a frame costs one
method call, as it did when these were the connection's own methods.

Strategy:

* Whoever queues frames calls :meth:`_Writer.want_write` (or
  :meth:`_Writer.data_queued` for DATA); the task wakes once and sends
  everything h2 has produced since in one ``send``, so the responses of all
  streams answered in one scheduling round leave in one write.
* Backpressure: ``buffered_data`` counts DATA bytes queued and not yet
  written; :meth:`_Writer.data_queued` says when it passes
  ``max_send_buf_size``, and the stream waits in :meth:`_Writer.wait_drained`
  until the next ``send`` returns. The reader stops reading while
  :meth:`_Writer.backlog` (frames of any kind) is twice that.
* Each ``send`` may take ``send_stall_timeout``; past it the connection
  fails with :class:`~hyper_core.error.TimeoutError` (a peer that stopped
  reading). A broken IO ends the connection without an error of its own.
  Both go through callbacks the connection gives, since what a failure
  means (the reader's cancel scope, the connection's error) is its state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, final

import anyio

from hyper_core.error import ClosedError, HyperError, TimeoutError
from hyper_core.rt import IO, Timer, send_all

from ._stream_record import _StreamGone
from ._write_marks import WriteMarks

if TYPE_CHECKING:
    from hyper_core._write_report import WriteReport

    from ._fast_server import H2ServerConnection

__all__ = ["_Writer"]

_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


@final
class _Writer:
    """The output queue and writer task of one server connection (see the module docstring)."""

    __slots__ = (
        "_drained",
        "_error",
        "_fail",
        "_finishing",
        "_h2",
        "_io",
        "_lost",
        "_max_buf",
        "_new_event",
        "_stall_timeout",
        "_timer",
        "_wake",
        "buffered_data",
        "done",
        "marks",
        "raw_out",
    )

    def __init__(
        self,
        io: IO,
        h2c: H2ServerConnection,
        timer: Timer,
        *,
        max_send_buf_size: int,
        send_stall_timeout: float | None,
        lost: Callable[[], None],
        fail: Callable[[HyperError], None],
        error: Callable[[], HyperError | None],
    ) -> None:
        """``lost``: the IO broke; ``fail``: a send stalled; ``error``: the connection's error."""
        self._io = io
        self._h2 = h2c
        self._timer = timer
        self._max_buf = max_send_buf_size
        self._stall_timeout = send_stall_timeout
        self._lost = lost
        self._fail = fail
        self._error = error
        self.raw_out = bytearray()  # frames written around h2 (graceful GOAWAY)
        self.marks = WriteMarks()
        self._wake: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self.buffered_data = 0  # DATA bytes queued in h2 and not yet written
        self._finishing = False
        self.done = anyio.Event()
        # anyio.Event() looks the running library up (sniffio) on every call;
        # the backend's own class constructs directly, and a connection never
        # changes event loops. The writer makes one per wake-up.
        self._new_event = type(self.done)

    def want_write(self) -> None:
        """Wake the writer task: h2 (or ``raw_out``) holds frames to send."""
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def data_queued(self, size: int) -> bool:
        """``size`` DATA bytes were queued: wake the writer; True if writers should drain."""
        self.buffered_data += size
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()
        return self.buffered_data > self._max_buf

    def queue_raw(self, frame: bytes) -> None:
        """Queue ``frame`` after everything h2 has produced so far."""
        self.raw_out += self._h2.data_to_send()
        self.raw_out += frame
        self.want_write()

    def backlog(self) -> int:
        """Bytes queued and not yet written, frames of any kind."""
        # h2's own buffer is read as _fast_server does.
        return self.buffered_data + len(self.raw_out) + len(self._h2._data_to_send)

    def mark(self, report: WriteReport, kind: int, size: int) -> None:
        """Report ``kind`` of ``size`` bytes once what is queued now is written."""
        self.marks.add(self._h2, len(self.raw_out), report, kind, size)

    def stall_deadline(self) -> float:
        """When a send or a window wait started now gives up (``send_stall_timeout``)."""
        timeout = self._stall_timeout
        return math.inf if timeout is None else self._timer.now() + timeout

    def finish(self) -> None:
        """Send what is queued, then end the task."""
        self._finishing = True
        self.want_write()

    async def wait_drained(self) -> None:
        """Wait until the next ``send`` returns.

        Raises:
            _StreamGone: the writer has ended.
        """
        if self.done.is_set():
            raise _StreamGone
        if self._drained is None:
            self._drained = self._new_event()
        await self._drained.wait()

    def _take_output(self) -> bytes:
        data = self._h2.data_to_send()
        if self.raw_out:
            data = bytes(self.raw_out) + data
            self.raw_out.clear()
        self.marks.taken += len(data)
        return data

    async def run(self) -> None:
        """The writer task: send whatever is queued until :meth:`finish` or a failure."""
        io = self._io
        timer = self._timer
        try:
            while True:
                data = self._take_output()
                if not data:
                    if self._finishing:
                        return
                    self._wake = wake = self._new_event()
                    await wake.wait()
                    continue
                taken = self.buffered_data
                with timer.deadline(self.stall_deadline()) as deadline:
                    try:
                        await send_all(io, (data,))
                    except _IO_ERRORS:
                        self._lost()
                        return
                if deadline.expired:
                    self._fail(TimeoutError("the client stopped reading the connection"))
                    return
                self.buffered_data -= taken
                if self.marks.due:
                    self.marks.settle()
                drained = self._drained
                if drained is not None:
                    self._drained = None
                    drained.set()
        finally:
            self.done.set()
            self.marks.fail_all(self._error() or ClosedError("the connection closed"))
            drained = self._drained
            if drained is not None:
                drained.set()
