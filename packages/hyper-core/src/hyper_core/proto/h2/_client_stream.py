"""The HTTP/2 client's streams: request bodies within windows, slots, the writer.

What belongs here: :class:`StreamSending`, the half of the client
connection that works for each stream (a request body sent inline or by a
pump task within the peer's windows, CONNECT tunnels' sending half, the
concurrency slots, resetting and forgetting a stream, the writer task that
every stream feeds) and the end of the connection both halves call
(``_finish``); the per-stream record :class:`Stream`; and
:class:`RequestNotProcessedError`, which both halves raise. The reader
task and the h2 events are in ``_client_reader.py`` (:class:`ClientReader`
subclasses this); the handshake, ``send`` and ``run`` are in
``_client.py`` (:class:`ClientConnection` subclasses that).

Strategy: h2 is changed only between awaits, so the tasks of all streams
share it without a lock; whoever queues frames calls
:meth:`StreamSending._flush_soon`, and the single writer task sends what
h2 produced, with the bytes other tasks queued, in one ``send``. A body
waits on its stream's own event for window (woken by WINDOW_UPDATE or
SETTINGS) and on the flush of the socket while more than
``max_send_buf_size`` DATA bytes are queued. The state the methods use is
declared on the class and set by ``ClientConnection.__init__``, so the
halves are one object and a call costs what it cost in one class.
"""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.abc
import h2.connection
import h2.exceptions
from h2.errors import ErrorCodes

from hyper_core._write_report import WriteReport
from hyper_core.body import Body, Incoming, IncomingSender
from hyper_core.error import CanceledError, ClosedError, HyperError, UserError
from hyper_core.ext import InformationalResponse
from hyper_core.http import Response
from hyper_core.proto.h2._client_encode import encode_trailers
from hyper_core.proto.h2._fast_client import H2ClientConnection
from hyper_core.proto.h2._ping import Pinger
from hyper_core.proto.h2._write_marks import DATA, END, WriteMarks
from hyper_core.rt import IO, Timer, send_all

if TYPE_CHECKING:
    from hyper_core.proto.h2._client import ClientConfig

__all__ = ["RequestNotProcessedError", "Stream", "StreamSending", "_StreamGone"]


class RequestNotProcessedError(CanceledError):
    """The server did not process the request: it is safe to send it again.

    Raised for the requests a GOAWAY left out (stream ids above its last
    stream id) and for a stream refused with REFUSED_STREAM, which RFC 9113
    section 8.7 guarantees were not processed; also for requests still
    waiting for a stream slot when the connection closed.

    Attributes:
        retryable: Always ``True``: retry on another connection.
        error_code: The HTTP/2 error code of the GOAWAY or RST_STREAM, if any.
    """

    retryable: Final = True

    def __init__(self, message: str, *, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class _StreamGone(Exception):
    """Internal: the stream was reset or closed while its body was being sent."""


@final
class Stream:
    """One request/response exchange: what its tasks wait on and how far it got."""

    __slots__ = (
        "body_read",
        "callback",
        "consumed_cb",
        "done",
        "error",
        "head",
        "id",
        "is_connect",
        "local_closed",
        "pump_data",
        "pump_scope",
        "release_cb",
        "remote_closed",
        "report",
        "response",
        "sender",
        "window",
    )

    def __init__(
        self,
        stream_id: int,
        is_connect: bool,
        on_consumed: Callable[[Stream, int], None],
        on_released: Callable[[Stream], None],
    ) -> None:
        self.id = stream_id
        self.is_connect = is_connect
        self.head = anyio.Event()  # set once ``response`` or ``error`` is known
        self.response: Response[Incoming] | None = None
        self.error: HyperError | None = None
        self.sender: IncomingSender | None = None
        self.local_closed = False  # we sent END_STREAM
        self.remote_closed = False  # the server sent END_STREAM
        self.done = False  # closed or reset: forgotten by the connection
        self.window: anyio.Event | None = None  # set when the send window may have grown
        self.pump_scope: anyio.CancelScope | None = None
        self.pump_data: bytes | None = None
        self.body_read = False  # the request body was read (it cannot be sent again)
        self.callback: Callable[[InformationalResponse], None] | None = None
        self.report: WriteReport | None = None  # ext.on_write's hook on the request
        self.consumed_cb = functools.partial(on_consumed, self)
        self.release_cb = functools.partial(on_released, self)

    def fail(self, error: HyperError) -> None:
        """Fail the waiting ``send_request``, or else the response body being read."""
        if self.report is not None:
            self.report.fail(error)  # nothing once the request was written whole
        if not self.head.is_set():
            self.error = error
            self.head.set()
        elif self.sender is not None:
            self.sender.abort(error)  # does nothing once the body has ended


class StreamSending:
    """Per-stream sending and writing; the state is declared for ``ClientConnection``."""

    io: IO
    _config: ClientConfig
    _timer: Timer
    _h2: H2ClientConnection
    _streams: dict[int, Stream]
    _active: int  # streams holding a concurrency slot
    _max_send: int
    _slot_waiters: deque[anyio.Event]
    _outbox: list[bytes]
    _flush_event: anyio.Event
    _flush_pending: bool
    _unflushed: int  # DATA bytes handed to h2 and not yet written
    _marks: WriteMarks  # ext.on_write reports waiting for the writer
    _flushed_waiters: list[anyio.Event]
    _closed: bool  # no new requests (GOAWAY, failure, sender closed)
    _close_error: HyperError | None
    _sender_closed: bool
    _goaway_received: bool
    _finishing: bool
    _finished: anyio.Event  # _finish() ran: the connection is ending
    _done: anyio.Event  # ...and the writer has flushed the last bytes
    _tg: anyio.abc.TaskGroup | None
    _pending_pumps: list[tuple[Stream, Body]]
    _pinger: Pinger
    connect_protocol_enabled: bool
    _settings_received: anyio.Event

    # ------------------------------------------------------------ sending

    def _try_send_inline(self, stream: Stream, data: bytes) -> bool:
        h2c = self._h2
        if len(data) > h2c.local_flow_control_window(stream.id):
            return False
        if self._unflushed + len(data) > self._config.max_send_buf_size:
            return False
        frame_size = h2c.max_outbound_frame_size
        for offset in range(0, len(data), frame_size):
            chunk = data[offset : offset + frame_size]
            h2c.send_data(stream.id, chunk, end_stream=offset + frame_size >= len(data))
        self._unflushed += len(data)
        stream.local_closed = True
        return True

    def _spawn_pump(self, stream: Stream, body: Body, data: bytes | None) -> None:
        if self._config.executor is not None:
            self._config.executor.spawn(self._pump, stream, body, data)
        elif self._tg is not None:
            self._tg.start_soon(self._pump, stream, body, data)
        else:
            stream.pump_data = data
            self._pending_pumps.append((stream, body))

    async def _pump(self, stream: Stream, body: Body, data: bytes | None) -> None:
        """Send a request body within the peer's windows; on failure reset the stream."""
        with anyio.CancelScope() as scope:
            stream.pump_scope = scope
            try:
                if data is not None:
                    await self._send_data(stream, data, end=True)
                    return
                while not stream.done:
                    frame = await body.frame()
                    if frame is None:
                        self._end_local(stream)
                        return
                    chunk = frame.data_ref
                    if chunk is not None:
                        end = body.is_end_stream()
                        if chunk or end:
                            await self._send_data(stream, chunk, end=end)
                        if end:
                            return
                    elif frame.trailers_ref is not None:
                        self._send_fields(stream, encode_trailers(frame.trailers_ref))
                        return
            except _StreamGone:
                pass
            except Exception as exc:
                error = UserError("the request body failed")
                error.__cause__ = exc
                self._reset(stream, ErrorCodes.INTERNAL_ERROR, error)
            finally:
                stream.pump_scope = None
                with anyio.CancelScope(shield=True):
                    # The body is finished with either way; its failure to close
                    # must not hide how the exchange went.
                    with contextlib.suppress(Exception):
                        await body.aclose()

    # TunnelOwner (proto/h2/_stream_io.py): the CONNECT tunnel's sending half.

    async def tunnel_send(self, stream_id: int, data: bytes) -> None:
        """Send tunnel bytes within the windows; ``BrokenResourceError`` once gone."""
        stream = self._streams.get(stream_id)
        if stream is None:
            raise anyio.BrokenResourceError("the tunnel's stream is closed")
        try:
            await self._send_data(stream, data, end=False)
        except _StreamGone:
            raise anyio.BrokenResourceError("the tunnel's stream is closed") from stream.error

    def tunnel_send_eof(self, stream_id: int) -> None:
        """End our half of a tunnel (END_STREAM with no data)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._end_local(stream)

    def tunnel_close(self, stream_id: int) -> None:
        """Drop a tunnel: reset its stream with CANCEL unless both halves ended."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._reset(stream, ErrorCodes.CANCEL)

    async def _send_data(self, stream: Stream, data: bytes, *, end: bool) -> None:
        h2c = self._h2
        total = len(data)
        offset = 0
        while True:
            if stream.done or stream.local_closed:
                raise _StreamGone
            remaining = total - offset
            if remaining == 0:
                if end:
                    self._end_local(stream)
                return
            try:
                window = h2c.local_flow_control_window(stream.id)
            except h2.exceptions.H2Error:
                raise _StreamGone from None
            size = min(window, h2c.max_outbound_frame_size, remaining)
            if size <= 0:
                await self._wait_window(stream)
                continue
            if self._unflushed >= self._config.max_send_buf_size:
                await self._wait_flushed()
                continue
            chunk = data if size == total else data[offset : offset + size]
            offset += size
            last = end and offset == total
            try:
                h2c.send_data(stream.id, chunk, end_stream=last)
            except h2.exceptions.H2Error:
                raise _StreamGone from None
            if stream.report is not None:
                self._mark(stream, DATA, size)
                if last:
                    self._mark(stream, END, 0)
            self._unflushed += size
            self._flush_soon()
            if last:
                stream.local_closed = True
                self._maybe_done(stream)
                return

    def _send_fields(self, stream: Stream, fields: list[tuple[bytes, bytes]]) -> None:
        if stream.done or stream.local_closed:
            return
        try:
            self._h2.send_headers(stream.id, fields, end_stream=True)
        except h2.exceptions.H2Error:
            return
        if stream.report is not None:
            self._mark(stream, END, 0)
        stream.local_closed = True
        self._flush_soon()
        self._maybe_done(stream)

    def _end_local(self, stream: Stream) -> None:
        if stream.done or stream.local_closed:
            return
        try:
            self._h2.end_stream(stream.id)
        except h2.exceptions.H2Error:
            return
        if stream.report is not None:
            self._mark(stream, END, 0)
        stream.local_closed = True
        self._flush_soon()
        self._maybe_done(stream)

    def _mark(self, stream: Stream, kind: int, size: int) -> None:
        assert stream.report is not None
        outside = sum(map(len, self._outbox))
        self._marks.add(self._h2, outside, stream.report, kind, size)

    async def _wait_window(self, stream: Stream) -> None:
        event = anyio.Event()
        stream.window = event
        try:
            await event.wait()
        finally:
            stream.window = None

    async def _wait_flushed(self) -> None:
        event = anyio.Event()
        self._flushed_waiters.append(event)
        await event.wait()

    def _wake_windows(self) -> None:
        for stream in self._streams.values():
            if stream.window is not None:
                stream.window.set()

    # ------------------------------------------------------ slots & streams

    async def _acquire_slot(self) -> None:
        if not self._slot_waiters and self._active < self._max_send:
            self._active += 1
            return
        event = anyio.Event()
        self._slot_waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._release_slot()  # handed a slot we will not use: pass it on
            else:
                self._slot_waiters.remove(event)
            raise
        if self._closed:
            self._release_slot()
            raise RequestNotProcessedError("connection closed before the request was sent") from (
                self._close_error
            )

    def _release_slot(self) -> None:
        if self._slot_waiters and (self._closed or self._active <= self._max_send):
            self._slot_waiters.popleft().set()  # the slot goes straight to the next in line
            return
        self._active -= 1
        if self._active == 0 and (self._sender_closed or self._goaway_received):
            # Nothing left to wait for: the connection ends (saying GOAWAY
            # itself only when it is the one closing).
            self._finish(None, send_goaway=self._sender_closed)

    def _grant_slots(self) -> None:
        while self._slot_waiters and self._active < self._max_send:
            self._active += 1
            self._slot_waiters.popleft().set()

    def _maybe_done(self, stream: Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self._forget(stream)

    def _forget(self, stream: Stream) -> None:
        if stream.done:
            return
        stream.done = True
        if stream.window is not None:
            stream.window.set()
        self._streams.pop(stream.id, None)
        self._release_slot()

    def _reset(self, stream: Stream, code: ErrorCodes, error: HyperError | None = None) -> None:
        """Reset ``stream`` locally; fail whoever waits on it with ``error``."""
        if stream.done:
            return
        h2c = self._h2
        try:
            h2c.reset_stream(stream.id, code)
        except h2.exceptions.H2Error:
            pass
        else:
            self._flush_soon()
            # Its frames still in flight are ignored for a while (RFC 9113 5.1).
            assert h2c.resets is not None
            h2c.resets.remember(stream.id)
        failure = error or CanceledError("the request was canceled")
        stream.fail(failure)
        if stream.pump_scope is not None:
            stream.pump_scope.cancel()
        self._forget(stream)

    def _on_consumed(self, stream: Stream, size: int) -> None:
        h2c = self._h2
        h2c.acknowledge_received_data(size, stream.id)
        if h2c._data_to_send:
            self._flush_soon()

    def _on_released(self, stream: Stream) -> None:
        # The application closed the response body before its end: RST_STREAM
        # CANCEL, as hyper does when a body is dropped.
        if not stream.remote_closed:
            self._reset(stream, ErrorCodes.CANCEL)

    # ------------------------------------------------------------- writing

    def _flush_soon(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self._flush_event.set()

    async def _writer(self) -> None:
        h2c = self._h2
        while True:
            await self._flush_event.wait()
            self._flush_event = anyio.Event()
            self._flush_pending = False
            data = h2c.data_to_send()
            chunks = self._outbox
            if data:
                chunks.append(data)
            self._outbox = []
            written = self._unflushed
            if chunks:
                self._marks.taken += sum(map(len, chunks))
                try:
                    await send_all(self.io, chunks)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    error = ClosedError("connection error while writing")
                    error.__cause__ = exc
                    self._marks.fail_all(error)
                    self._finish(error, send_goaway=False)
                    self._done.set()
                    return
            self._unflushed -= written
            if self._marks.due:
                self._marks.settle()
            if self._flushed_waiters:
                waiters, self._flushed_waiters = self._flushed_waiters, []
                for event in waiters:
                    event.set()
            if self._finishing and not self._flush_pending:
                self._done.set()
                return

    # ------------------------------------------------------------- closing

    def _mark_closed(self, error: HyperError | None) -> None:
        if not self._closed:
            self._closed = True
            self._close_error = error
        waiters, self._slot_waiters = self._slot_waiters, deque()
        for event in waiters:
            self._active += 1
            event.set()  # each fails at once with RequestNotProcessedError

    def _finish(self, error: HyperError | None, *, send_goaway: bool) -> None:
        """End the connection: fail what is open, optionally say GOAWAY, stop the tasks."""
        if self._finishing:
            return
        self._finishing = True
        self._finished.set()
        self._settings_received.set()
        self._mark_closed(error)
        if error is not None and self._close_error is None:
            self._close_error = error
        if send_goaway and self._h2.state_machine.state != h2.connection.ConnectionState.CLOSED:
            with contextlib.suppress(h2.exceptions.H2Error):
                self._h2.close_connection()
        failure = error or CanceledError("connection closed")
        for stream in list(self._streams.values()):
            stream.fail(failure)
            if stream.pump_scope is not None:
                stream.pump_scope.cancel()
            stream.done = True
            if stream.window is not None:
                stream.window.set()
        self._streams.clear()
        for event in self._flushed_waiters:
            event.set()
        # Through _flush_soon, so a writer busy in a send when this runs
        # writes once more (the GOAWAY just queued) before it stops.
        self._flush_soon()
