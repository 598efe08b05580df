"""Serving HTTP/2 streams: workers, responses, flow-control waits, tunnels.

What belongs here: :class:`StreamServing`, what runs in the per-stream
tasks of a server connection: the worker tasks and their reuse, calling the
service, writing its response within the peer's windows, settling the
stream afterwards, carrying a CONNECT tunnel (``_stream_io.TunnelOwner``), and the
stream bookkeeping the h2 event handlers share (``_ack``, ``_reset``,
``_forget``, waking window waiters). The per-stream record is in
``_stream_record.py``, the output queue and writer task in ``_writer.py``,
the reader and lifecycle in ``_server.py``, the h2 event handlers in
``_server_events.py``.

Why a mixin of ``ServerConnection`` and not an object of its own: serving
one small request reads connection state that changes under it (``_dead``,
``_streams``, ``_error``, ``_last_stream_id``, ``_finishing``) several
times; as an object of its own each read would be one more attribute hop
(``self._conn._dead``), or the state would be kept twice. The writer's
methods it calls (``_want_write``, ``_data_queued``, ``_wait_drained``,
``_mark``, ``_stall_deadline``) are the writer's bound methods, stored on
the connection once, so a call costs what a method call costs.

Strategy: h2 is only touched between awaits, so tasks share it without a
lock; whoever queues frames calls ``_want_write`` and the single writer task
sends everything h2 has produced in one ``send``. A stream waits on its own
event for window (woken by WINDOW_UPDATE or SETTINGS), bounded by
``send_stall_timeout``; every writer waits while more than
``max_send_buf_size`` DATA bytes are queued for the socket.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import anyio
import h2.events
import h2.exceptions

from hyper_core._write_report import WriteReport
from hyper_core.body import Empty, Full, Incoming
from hyper_core.error import (
    BodyWriteAbortedError,
    CanceledError,
    ClosedError,
    HyperError,
    ProtocolError,
    UserError,
)
from hyper_core.http import Headers, Request, Response
from hyper_core.proto._date import http_date
from hyper_core.proto._log import body_aborted, client_fault, service_failed
from hyper_core.rt import IO, Timer

from ._common import (
    ErrorCode,
    response_headers_to_h2,
    trailers_to_h2,
)
from ._fast_server import H2ServerConnection
from ._stream_io import H2StreamIO
from ._stream_record import _Stream, _StreamGone
from ._write_marks import DATA, END, HEAD

if TYPE_CHECKING:
    from hyper_core.service import Service

    from ._server_config import ServerConfig

__all__ = ["MAX_IDLE_WORKERS", "StreamServing", "_IdleWorker"]

_NO_BODY_STATUS: Final = frozenset({204, 304})


#: Idle worker tasks a connection keeps for its next streams. Enough for a
#: browser's burst of requests or a load tester's ``-m``; a worker beyond it
#: ends after its stream (a new one costs a task spawn, ~50 us).
MAX_IDLE_WORKERS: Final = 32
_MISSING: Final = object()


class _IdleWorker:
    """A worker task waiting for its next stream (``job``, set before ``wake``)."""

    __slots__ = ("job", "wake")

    def __init__(self, wake: anyio.Event) -> None:
        self.job: tuple[_Stream, Request[Incoming]] | None = None
        self.wake = wake


def _same_context(base: dict[contextvars.ContextVar[Any], Any]) -> bool:
    """Whether the current context holds exactly the variables and values of ``base``."""
    current = contextvars.copy_context()
    if len(current) != len(base):
        return False
    get = base.get
    return all(get(var, _MISSING) is value for var, value in current.items())


class StreamServing:
    """The stream tasks of ``ServerConnection``; the state they share is declared here."""

    _io: IO
    _service: Service[Any]
    _config: ServerConfig
    _timer: Timer
    _h2: H2ServerConnection
    _streams: dict[int, _Stream]
    _window_waiters: set[_Stream]
    _read_scope: anyio.CancelScope | None
    _finishing: bool
    _new_event: type[anyio.Event]
    _idle: anyio.Event | None
    _error: HyperError | None
    _dead: bool
    _last_stream_id: int | None
    _pending_resets: int
    _idle_workers: list[_IdleWorker]
    # The writer's bound methods (_writer.py), stored by the connection.
    _want_write: Callable[[], None]
    _data_queued: Callable[[int], bool]
    _wait_drained: Callable[[], Awaitable[None]]
    _mark: Callable[[WriteReport, int, int], None]
    _stall_deadline: Callable[[], float]

    def _ack(self, sid: int, size: int) -> None:
        if not self._dead:
            self._h2.acknowledge_received_data(size, sid)
            self._want_write()

    def _reset(self, sid: int, code: ErrorCode) -> None:
        if self._dead:
            return
        with contextlib.suppress(h2.exceptions.H2Error):
            self._h2.reset_stream(sid, code)
        self._want_write()

    def _forget(self, stream: _Stream) -> None:
        if stream.task_running or stream.tunnel_open:
            return
        if self._streams.pop(stream.id, None) is None:
            return
        if stream.reset_counted:
            self._pending_resets -= 1
            stream.reset_counted = False
        if not self._streams:
            if self._idle is not None:
                self._idle.set()
            if self._last_stream_id is not None and self._read_scope is not None:
                self._read_scope.cancel()

    def _wake_all_windows(self) -> None:
        for stream in self._window_waiters:
            if stream.window_event is not None:
                stream.window_event.set()

    async def _serve_stream(self, stream: _Stream, request: Request[Incoming]) -> None:
        """Serve one stream in a task of its own (a user-given executor)."""
        with anyio.CancelScope() as scope:
            await self._serve_in_scope(stream, request, scope)

    async def _worker(self, stream: _Stream, request: Request[Incoming]) -> None:
        """Serve ``stream``, then, while idle workers are wanted, the streams handed over.

        One cancel scope serves every stream of the worker: cancelling it
        (the stream was reset) ends the worker after that stream. At most
        ``MAX_IDLE_WORKERS`` wait for more. A worker is reused only if the
        service left its context variables as they were, so each stream
        starts from the same context as with a task of its own.
        """
        base = contextvars.copy_context()
        base_items = dict(base.items())
        with anyio.CancelScope() as scope:
            while True:
                await self._serve_in_scope(stream, request, scope)
                if (
                    scope.cancel_called
                    or self._finishing
                    or len(self._idle_workers) >= MAX_IDLE_WORKERS
                    or not _same_context(base_items)
                ):
                    return
                worker = _IdleWorker(self._new_event())
                self._idle_workers.append(worker)
                await worker.wake.wait()
                job = worker.job
                if job is None:
                    return
                stream, request = job

    async def _serve_in_scope(
        self, stream: _Stream, request: Request[Incoming], scope: anyio.CancelScope
    ) -> None:
        try:
            if stream.closed:
                return  # reset before its service started: never call it
            stream.scope = scope
            try:
                response = await self._service(request)
            except Exception as exc:
                self._stream_failed(stream, exc, request)
                return
            if type(response) is Response and response._extensions is not None:
                stream.report = response._extensions.get(WriteReport)
            try:
                await self._send_response(stream, request, response)
            except _StreamGone:
                pass
            except Exception as exc:
                if stream.report is not None:
                    stream.report.fail(exc)
                self._stream_failed(stream, exc, request)
        finally:
            if stream.report is not None and not (stream.response_done or stream.tunnel_open):
                stream.report.fail(self._error or ClosedError("the stream closed first"))
            if stream.response_done and stream.exchange is not None:
                stream.exchange.finish()
            stream.task_running = False
            stream.scope = None
            if stream.pending is not None:
                stream.pending.fail(CanceledError("the response was not an upgrade"))
            if not stream.tunnel_open:
                self._finish_stream(stream)
            self._forget(stream)

    def _finish_stream(self, stream: _Stream) -> None:
        """The service task ended: settle the stream and the window its body holds."""
        if not stream.closed:
            if not stream.response_done:
                stream.closed = True
                self._reset(stream.id, ErrorCode.CANCEL)
            elif stream.request_open:
                # RFC 9113 section 8.1: a complete response ends the exchange;
                # tell the client to stop sending the rest of its body.
                stream.closed = True
                self._reset(stream.id, ErrorCode.NO_ERROR)
        sender = stream.sender
        if sender is None:
            return
        if stream.request_open:
            sender.abort(CanceledError("the stream is finished"))
        else:
            # The whole body arrived; whoever holds it may still read what is
            # queued, but it no longer holds back the client's window.
            stream.detached = True
            queued = sender.queued_bytes
            if queued:
                self._ack(stream.id, queued)

    def _stream_failed(self, stream: _Stream, exc: Exception, request: Request[Incoming]) -> None:
        """The service or the response failed: answer 500 or reset, and log whose fault it is.

        The application's fault (ERROR): an exception from the service or
        from its response body, or an invalid response. Not the
        application's (DEBUG): anything after the client reset the stream
        or the connection failed (the service only saw the consequence), a
        ``ProtocolError`` with an error code (a service resetting the
        stream on purpose), and h2 refusing a frame in a race with the peer.
        """
        if stream.closed or self._dead:
            client_fault(self._io, request, exc)
            return
        code = ErrorCode.INTERNAL_ERROR
        if isinstance(exc, ProtocolError) and exc.error_code is not None:
            with contextlib.suppress(ValueError):
                code = ErrorCode(exc.error_code)
        if isinstance(exc, BodyWriteAbortedError):
            body_aborted(self._io, request, exc)  # its producer reported why
        elif code is ErrorCode.INTERNAL_ERROR and not isinstance(exc, h2.exceptions.H2Error):
            service_failed(self._io, request, exc)
        else:
            client_fault(self._io, request, exc)
        if code is ErrorCode.INTERNAL_ERROR and not self._headers_sent(stream):
            # Nothing sent yet: the client gets a plain 500 (as hyper does).
            fields = response_headers_to_h2(500, Headers._from_trusted([]))
            with contextlib.suppress(h2.exceptions.H2Error):
                self._h2.send_headers(stream.id, fields, end_stream=True)
                stream.response_done = True
                self._want_write()
                return
        stream.closed = True
        self._reset(stream.id, code)

    async def _write_informational(
        self, stream: _Stream, status: int, fields: list[tuple[bytes, bytes]]
    ) -> None:
        # Called by the service (ext.send_informational) while it runs.
        if stream.closed or self._dead or stream.response_done or self._headers_sent(stream):
            raise UserError("the final response has started or the stream is closed")
        headers = response_headers_to_h2(status, Headers._from_trusted(fields))
        try:
            self._h2.send_headers(stream.id, headers, end_stream=False)
        except h2.exceptions.H2Error as exc:
            raise UserError(f"cannot send an informational response: {exc}") from exc
        self._want_write()

    def _headers_sent(self, stream: _Stream) -> bool:
        h2_stream = self._h2.streams.get(stream.id)
        return h2_stream is None or bool(h2_stream.state_machine.headers_sent)

    async def _send_response(
        self, stream: _Stream, request: Request[Incoming], response: Response[Any]
    ) -> None:
        if stream.closed or self._dead:
            raise _StreamGone
        status = int(response.status)
        if status < 200:
            raise UserError(f"a service cannot return an informational status ({status})")
        body = response.body
        headers = response.headers
        fields = response_headers_to_h2(status, headers)
        config = self._config
        if config.auto_date_header and headers.get_raw(b"date") is None:
            fields.append((b"date", http_date()))
        is_head = request.method == "HEAD"
        exact = body.size_hint().exact
        if exact and status not in _NO_BODY_STATUS and headers.get_raw(b"content-length") is None:
            fields.append((b"content-length", str(exact).encode("ascii")))
        h2c = self._h2
        sid = stream.id
        report = stream.report
        if stream.pending is not None and 200 <= status < 300:
            before = len(h2c._data_to_send)
            h2c.send_headers(sid, fields, end_stream=False)
            if report is not None:  # the response is its head; the tunnel is no body
                self._mark(report, HEAD, len(h2c._data_to_send) - before)
                self._mark(report, END, 0)
            self._want_write()
            self._open_tunnel(stream, request)
            return
        kind = type(body)
        try:
            if (
                is_head
                or status in _NO_BODY_STATUS
                or kind is Empty
                or (kind is Full and not body.data)
            ):
                self._send_head(stream, fields, True)
                stream.response_done = True
                self._want_write()
                return
            if kind is Full:
                data = body.data
                # The usual small response: HEADERS and its one DATA frame
                # at once, when the windows and the frame size allow.
                if report is None and h2c.send_response_fast(sid, fields, data):
                    self._data_queued(len(data))
                    stream.response_done = True
                    return
                self._send_head(stream, fields, False)
                await self._send_data(stream, data, True)
                stream.response_done = True
                return
            self._send_head(stream, fields, False)
            self._want_write()
            while True:
                frame = await body.frame()
                if frame is None:
                    self._end_stream(stream)
                    break
                data = frame.data_ref
                if data is not None:
                    if data:
                        await self._send_data(stream, data, False)
                    continue
                trailers = frame.trailers_ref
                if trailers is not None:
                    if stream.closed:
                        raise _StreamGone
                    h2c.send_headers(sid, trailers_to_h2(trailers), end_stream=True)
                    if report is not None:
                        self._mark(report, END, 0)
                    self._want_write()
                    break
            stream.response_done = True
        finally:
            if kind is Full or kind is Empty:
                await body.aclose()  # never waits: no shield needed (it costs a scope)
            else:
                with anyio.CancelScope(shield=True):
                    await body.aclose()

    def _end_stream(self, stream: _Stream) -> None:
        if stream.closed or self._dead:
            raise _StreamGone
        self._h2.end_stream(stream.id)
        if stream.report is not None:
            self._mark(stream.report, END, 0)
        self._want_write()

    def _send_head(self, stream: _Stream, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        """``send_final_headers``, marking the head (and the end) of an observed response."""
        h2c = self._h2
        report = stream.report
        if report is None:
            h2c.send_final_headers(stream.id, fields, end)
            return
        before = len(h2c._data_to_send)
        h2c.send_final_headers(stream.id, fields, end)
        self._mark(report, HEAD, len(h2c._data_to_send) - before)
        if end:
            self._mark(report, END, 0)

    async def _send_data(self, stream: _Stream, data: bytes, end: bool) -> None:
        """Send ``data`` within the peer's windows, waiting for WINDOW_UPDATE as needed."""
        h2c = self._h2
        sid = stream.id
        total = len(data)
        offset = 0
        while True:
            if stream.closed or self._dead:
                raise _StreamGone
            window = h2c.local_flow_control_window(sid)
            n = min(total - offset, window, h2c.max_outbound_frame_size)
            if n <= 0:
                await self._wait_window(stream)
                continue
            chunk = data if n == total else data[offset : offset + n]
            offset += n
            last = offset >= total
            h2c.send_data_fast(sid, chunk, end and last)
            if stream.report is not None:
                self._mark(stream.report, DATA, n)
                if end and last:
                    self._mark(stream.report, END, 0)
            drain = self._data_queued(n)
            if last:
                return
            if drain:
                await self._wait_drained()

    async def _wait_window(self, stream: _Stream) -> None:
        stream.window_event = event = self._new_event()
        self._window_waiters.add(stream)
        try:
            with self._timer.deadline(self._stall_deadline()) as deadline:
                await event.wait()
        finally:
            self._window_waiters.discard(stream)
            stream.window_event = None
        if deadline.expired and not stream.closed:
            # The client never opened its window: give up on this stream only.
            stream.closed = True
            self._reset(stream.id, ErrorCode.CANCEL)
            raise _StreamGone

    # -- CONNECT tunnels (TunnelOwner) ------------------------------------------

    def _open_tunnel(self, stream: _Stream, request: Request[Incoming]) -> None:
        pending = stream.pending
        assert pending is not None
        stream.pending = None
        stream.tunnel_open = True
        pending.fulfil(H2StreamIO(self, stream.id, request.body), b"")

    async def tunnel_send(self, stream_id: int, data: bytes) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or not stream.tunnel_open:
            raise anyio.ClosedResourceError
        try:
            await self._send_data(stream, data, False)
        except _StreamGone:
            raise anyio.BrokenResourceError("the stream was reset") from None
        except h2.exceptions.H2Error as exc:
            raise anyio.ClosedResourceError(str(exc)) from exc

    def tunnel_send_eof(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.closed and not stream.response_done:
            with contextlib.suppress(h2.exceptions.H2Error, _StreamGone):
                self._end_stream(stream)
            stream.response_done = True

    def tunnel_close(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or not stream.tunnel_open:
            return
        stream.tunnel_open = False
        if not stream.closed and (stream.request_open or not stream.response_done):
            stream.closed = True
            self._reset(stream_id, ErrorCode.CANCEL)
        if stream.window_event is not None:
            stream.window_event.set()  # a send blocked on the window ends now
        self._forget(stream)
