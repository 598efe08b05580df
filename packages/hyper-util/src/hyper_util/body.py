"""A channel body whose sender learns when its data was written.

What belongs here: :func:`written_channel`, hyper's planned "channel
implementation of Body that has an API to know when the data has been
successfully written", with its :class:`WrittenSender` and the
:class:`WriteAck` handles its sends return.

Strategy: nothing here needs the connections' internals. The body is
hyper-core's :func:`~hyper_core.body.channel`; the acknowledgements come
from :func:`hyper_core.ext.on_write`, the per-message hook every HTTP/1 and
HTTP/2 connection reports through (:meth:`WrittenSender.observe` installs
it). The sender numbers its data by cumulative byte offset: the chunk that
ends at offset *n* is written once the hook has reported *n* body bytes
written, so one count acknowledges every chunk up to it, in order, with no
per-chunk bookkeeping in the connection. Acknowledgements waiting are kept
in a deque in offset order; each report settles a prefix of it. The end of
the body (and the trailers) is acknowledged by the hook's ``FINISHED``; a
``FAILED`` report fails every acknowledgement still waiting.

"Written" is the hook's meaning: handed to the transport (the IO's
``send`` returned; on HTTP/2, the DATA frames were sent, so within flow
control), not received by the peer.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import Any, Final, Self, final

import anyio

from hyper_core.body import ChannelBody, Sender, channel
from hyper_core.error import ClosedError
from hyper_core.ext import WriteEvent, WriteStage, on_write
from hyper_core.http import Headers, Request, Response

__all__ = ["WriteAck", "WrittenSender", "written_channel"]

_DEFAULT_BUFFER: Final = 16
_END: Final = math.inf  # the offset of the end-of-message acknowledgement


@final
class WriteAck:
    """The acknowledgement of one send: await it (or :meth:`wait`) to know it was written.

    It resolves once the bytes up to and including this send were handed to
    the transport, in the order they were sent, or raises
    :class:`~hyper_core.error.ClosedError` (its cause says why: the peer
    went away, the stream was reset, the connection closed) if the message
    failed first.
    """

    __slots__ = ("_event", "_state", "offset")

    def __init__(self, state: _AckState, offset: float) -> None:
        self._state = state
        #: The body offset this acknowledgement waits for (inf: the whole message).
        self.offset = offset
        self._event: anyio.Event | None = None

    @property
    def done(self) -> bool:
        """True once written (or the message finished)."""
        return self._state.reached(self.offset)

    @property
    def failed(self) -> bool:
        """True once the message failed before this acknowledgement was reached."""
        return not self.done and self._state.error is not None

    async def wait(self) -> None:
        """Return once written.

        Raises:
            ClosedError: the message failed before these bytes were written.
        """
        state = self._state
        if not state.reached(self.offset) and state.error is None:
            if self._event is None:
                self._event = anyio.Event()
                state.waiting.append(self)
            await self._event.wait()
        if not state.reached(self.offset):
            raise state.failure()

    def __await__(self) -> Generator[Any, None, None]:
        return self.wait().__await__()

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()

    def __repr__(self) -> str:
        what = "end" if self.offset == _END else f"offset={int(self.offset)}"
        status = "done" if self.done else "failed" if self.failed else "pending"
        return f"WriteAck({what}, {status})"


@final
class _AckState:
    """What the hook reported so far, and the acknowledgements waiting for more."""

    __slots__ = ("error", "finished", "head", "waiting", "written")

    def __init__(self) -> None:
        self.written = 0  # body bytes reported written
        self.head = False
        self.finished = False
        self.error: BaseException | None = None
        self.waiting: deque[WriteAck] = deque()  # in offset order (sends are ordered)

    def reached(self, offset: float) -> bool:
        # Data is never written before its head; the end only with FINISHED.
        return self.finished or (self.head and offset <= self.written)

    def failure(self) -> ClosedError:
        error = ClosedError("the message was not written: the connection failed first")
        error.__cause__ = self.error
        return error

    def on_event(self, event: WriteEvent) -> None:
        stage = event.stage
        if stage is WriteStage.DATA or stage is WriteStage.HEAD:
            self.written = event.body_bytes
            self.head = True
        elif stage is WriteStage.FINISHED:
            self.written = event.body_bytes
            self.finished = True
        else:
            self.error = event.error or ClosedError("the message failed")
        waiting = self.waiting
        while waiting and (self.error is not None or self.reached(waiting[0].offset)):
            waiting.popleft()._wake()


@final
class WrittenSender:
    """The writing end of a :func:`written_channel` body; each send returns a :class:`WriteAck`.

    Use it as :class:`~hyper_core.body.Sender` is used (``async with``
    ends the body on a normal exit and aborts it on an exception), and
    call :meth:`observe` on the message carrying the body before it is
    returned or sent.
    """

    __slots__ = ("_head", "_offset", "_sender", "_state")

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._state = _AckState()
        self._offset = 0  # body bytes sent through this sender so far
        self._head = WriteAck(self._state, 0)

    def observe(self, message: Request[Any] | Response[Any]) -> None:
        """Install the write hook on ``message`` (the ``Response`` or ``Request`` with the body).

        Other :func:`~hyper_core.ext.on_write` callbacks on it keep working.
        """
        on_write(message, self._state.on_event)

    async def send_data(self, data: bytes) -> WriteAck:
        """Queue ``data`` (waiting while the buffer is full); return its acknowledgement.

        Raises:
            ClosedError: the reader closed the body (the connection dropped
                it), or the body already ended or was aborted.

        Cancel safety: cancelled while waiting, nothing is queued.
        """
        await self._sender.send_data(data)
        self._offset += len(data)
        return WriteAck(self._state, self._offset)

    async def send_trailers(self, trailers: Headers) -> WriteAck:
        """Queue the trailers and end the body; the acknowledgement is the whole message's."""
        await self._sender.send_trailers(trailers)
        return WriteAck(self._state, _END)

    async def end(self) -> WriteAck:
        """End the body; return the acknowledgement of the whole message (head, body, end)."""
        await self._sender.aclose()
        return WriteAck(self._state, _END)

    async def finish(self) -> None:
        """End the body and wait until the whole message was written.

        Raises:
            ClosedError: the message failed first (the peer went away, ...).
        """
        await (await self.end()).wait()

    def head_written(self) -> WriteAck:
        """The acknowledgement of the message's head."""
        return self._head

    def abort(self) -> None:
        """Break the body (as :meth:`hyper_core.body.Sender.abort`)."""
        self._sender.abort()

    async def aclose(self) -> None:
        """End the body without waiting for it to be written."""
        await self._sender.aclose()

    @property
    def written(self) -> int:
        """Body bytes reported written so far."""
        return self._state.written

    @property
    def is_closed(self) -> bool:
        """True once the reader closed the body (sending is pointless)."""
        return self._sender.is_closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._sender.__aexit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        return f"WrittenSender(sent={self._offset}, written={self._state.written})"


def written_channel(buffer: int = _DEFAULT_BUFFER) -> tuple[WrittenSender, ChannelBody]:
    """A channel body whose sends are acknowledged once written.

    Args:
        buffer: Frames the body holds before a send waits (as
            :func:`hyper_core.body.channel`).

    Returns:
        ``(sender, body)``: put ``body`` on a ``Response`` (servers) or a
        ``Request`` (clients), call ``sender.observe(message)``, then feed
        it from another task.
    """
    sender, body = channel(buffer)
    return WrittenSender(sender), body
