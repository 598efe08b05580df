"""Write observability: what a connection tells a message about its own writes.

What belongs here: :class:`WriteReport`, the per-message record that
:func:`hyper_core.ext.on_write` stores in a message's extensions, and the
event types its callbacks receive (:class:`WriteStage`,
:class:`WriteEvent`). Connections (HTTP/1 and HTTP/2, server and client)
look the record up once per message and call :meth:`WriteReport.head`,
:meth:`WriteReport.data`, :meth:`WriteReport.finish` and
:meth:`WriteReport.fail` as the bytes are handed to the transport.

Strategy: one small object per observed message and nothing at all for
the others (a connection's lookup is behind ``message._extensions is not
None``, which the usual message fails). The record counts, drops every
event after the first ``finish`` or ``fail`` (so a connection may report a
failure on every path without checking whether one was already reported),
and keeps a callback that raises from breaking the connection: the error
is logged at ERROR and the write goes on.

"Written" means handed to the transport: the IO's ``send`` returned (on
HTTP/2, the writer task's ``send`` of the frames carrying the bytes). On
trio that is the kernel's socket buffer; on asyncio and uvloop it is the
transport's write buffer, which the event loop drains into the kernel by
itself and which holds at most its high-water mark. It is never "received
by the peer".
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any, Final, final

__all__ = ["WriteCallback", "WriteEvent", "WriteReport", "WriteStage", "report_of"]

_log: Final = logging.getLogger("hyper_core")


class WriteStage(enum.Enum):
    """What a :class:`WriteEvent` reports."""

    #: The message's head was written.
    HEAD = "head"
    #: Body data bytes were written (``WriteEvent.chunk_bytes`` of them).
    DATA = "data"
    #: The whole message was written: head, body and its end (trailers too).
    FINISHED = "finished"
    #: The message will not be written whole; ``WriteEvent.error`` says why.
    FAILED = "failed"


@final
class WriteEvent:
    """One report of a message's writes.

    Attributes:
        stage: What happened.
        head_bytes: Bytes of the head written so far (HTTP/1: the start
            line and header fields as encoded; HTTP/2: the HEADERS frames,
            frame headers included). 0 until ``HEAD``.
        body_bytes: Body data bytes written so far (payload only: HTTP/1
            chunk framing and HTTP/2 frame headers are not counted).
        chunk_bytes: The body data bytes this ``DATA`` event adds (0 otherwise).
        error: Why the message failed (``FAILED`` only).
    """

    __slots__ = ("body_bytes", "chunk_bytes", "error", "head_bytes", "stage")

    def __init__(
        self,
        stage: WriteStage,
        head_bytes: int,
        body_bytes: int,
        chunk_bytes: int = 0,
        error: BaseException | None = None,
    ) -> None:
        self.stage = stage
        self.head_bytes = head_bytes
        self.body_bytes = body_bytes
        self.chunk_bytes = chunk_bytes
        self.error = error

    def __repr__(self) -> str:
        extra = f", error={self.error!r}" if self.error is not None else ""
        return (
            f"WriteEvent({self.stage.name}, head_bytes={self.head_bytes}, "
            f"body_bytes={self.body_bytes}{extra})"
        )


WriteCallback = Callable[[WriteEvent], None]

_HEAD: Final = WriteStage.HEAD
_DATA: Final = WriteStage.DATA


@final
class WriteReport:
    """The connection's handle on one observed message (stored under its type)."""

    __slots__ = ("_callbacks", "body_bytes", "done", "head_bytes")

    def __init__(self, callback: WriteCallback) -> None:
        self._callbacks = [callback]
        self.head_bytes = 0
        self.body_bytes = 0
        self.done = False  # finished or failed: later events are dropped

    def add(self, callback: WriteCallback) -> None:
        """Call ``callback`` too (after the ones added before it)."""
        self._callbacks.append(callback)

    def _emit(self, event: WriteEvent) -> None:
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:
                # The connection must not fail for an observer's bug.
                _log.exception("a write observer raised on %r", event)

    def head(self, size: int) -> None:
        """The head, ``size`` bytes, was handed to the transport."""
        if not self.done:
            self.head_bytes += size
            self._emit(WriteEvent(_HEAD, self.head_bytes, self.body_bytes))

    def data(self, size: int) -> None:
        """``size`` more body data bytes were handed to the transport."""
        if not self.done and size:
            self.body_bytes += size
            self._emit(WriteEvent(_DATA, self.head_bytes, self.body_bytes, size))

    def finish(self) -> None:
        """The whole message was handed to the transport."""
        if not self.done:
            self.done = True
            self._emit(WriteEvent(WriteStage.FINISHED, self.head_bytes, self.body_bytes))

    def fail(self, error: BaseException) -> None:
        """The message will not be written whole (a no-op once finished)."""
        if not self.done:
            self.done = True
            event = WriteEvent(WriteStage.FAILED, self.head_bytes, self.body_bytes, error=error)
            self._emit(event)


def report_of(message: Any) -> WriteReport | None:
    """The :class:`WriteReport` of a ``Request`` or ``Response``, if it has one."""
    extensions = message._extensions
    return None if extensions is None else extensions.get(WriteReport)
