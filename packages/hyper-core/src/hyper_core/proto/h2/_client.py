"""HTTP/2 client protocol: h2 glue, stream table, flow-controlled sending.

What belongs here: the machinery behind ``hyper_core.client.conn.http2``:
the options record, the :class:`ClientConnection` that owns one
``h2.connection.H2Connection`` and its IO, the per-stream record, the IO a
CONNECT tunnel hands out, and the client-only errors and extension values.
The public handles (``SendRequest``, ``Connection``, ``Builder``) are thin
wrappers in ``client/conn/http2.py``.

Strategy:

* h2 is a synchronous state machine; every task that talks HTTP/2 (a
  request being sent, a body pump, the reader) changes it directly between
  awaits, which needs no lock because nothing awaits in the middle of a
  change. Bytes h2 produces are written by one writer task, woken by
  :meth:`ClientConnection._flush_soon`, so the frames of many streams leave
  in one ``send`` (many requests, one system call).
* One reader task feeds received bytes to h2 and dispatches the events:
  response heads wake the waiting ``send_request``; DATA is pushed into the
  stream's :class:`~hyper_core.body.IncomingSender` without waiting, and
  the flow-control window is returned only when the application reads it
  (``on_consumed``), so an unread body never holds more than its window.
* Request bodies are pulled by a pump task per stream (spawned through the
  executor), which sends only within the peer's windows and waits on
  WINDOW_UPDATE / SETTINGS; a ``Full`` body that fits the window is written
  inline with no task at all. The bytes queued but not yet written are
  bounded by ``max_send_buf_size``.
* Concurrency: a request takes a slot before it gets a stream id; slots are
  bounded by the peer's SETTINGS_MAX_CONCURRENT_STREAMS (until the peer's
  first SETTINGS: ``initial_max_send_streams``) and handed over first come,
  first served.
* Errors never escape as h2 exceptions: a connection error fails every
  stream, a stream error fails only its stream, and :meth:`run` itself
  never raises (it ends, and ``ready()`` reports why).

GOAWAY: h2 on its own closes its state machine when a GOAWAY arrives and
then rejects every later frame, even the rest of the same read, although
RFC 9113 section 6.8 lets the streams at or below the last stream id
finish. The connection from ``_common.new_h2_connection`` stays open instead
(see ``_common``); this class refuses new streams after a GOAWAY, fails
those above the last stream id with :class:`RequestNotProcessedError`, and
lets the others complete.
"""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Callable
from typing import Any, Final, final

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from hyper_core import upgrade
from hyper_core.body import Body, Full, Incoming, IncomingSender, SizeHint
from hyper_core.error import (
    CanceledError,
    ClosedError,
    HyperError,
    IncompleteMessageError,
    ProtocolError,
    TimeoutError,
    UserError,
)
from hyper_core.ext import InformationalResponse, _get_on_informational
from hyper_core.http import Headers, Request, Response, StatusCode, Version
from hyper_core.http._status import _BY_CODE
from hyper_core.proto.h2._client_resets import (
    DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
    DEFAULT_RESET_STREAM_DURATION,
    ResetRecord,
)
from hyper_core.proto.h2._common import CONNECTION_HEADERS, H2Protocol, new_h2_connection
from hyper_core.proto.h2._fast_client import H2ClientConnection
from hyper_core.proto.h2._ping import Pinger
from hyper_core.proto.h2._stream_io import H2StreamIO
from hyper_core.rt import IO, Executor, Timer, default_timer, receive_or_eof, send_all

__all__ = [
    "ClientConfig",
    "ClientConnection",
    "RequestNotProcessedError",
    "Stream",
]

_SETTINGS = h2.settings.SettingCodes
# The initial windows adaptive_window starts from (RFC 9113 default, bytes).
_DEFAULT_WINDOW: Final = 65_535
# Bytes asked from the IO per read.
_READ_SIZE: Final = 65_536
# Seconds the final flush (GOAWAY), and then closing the IO, may take before
# the connection gives up on them (a peer that stopped reading).
_CLOSE_FLUSH_TIMEOUT: Final = 5.0


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


@final
class ClientConfig:
    """The options of an HTTP/2 client connection (documented on ``http2.Builder``)."""

    __slots__ = (
        "adaptive_window",
        "executor",
        "header_table_size",
        "initial_connection_window_size",
        "initial_max_send_streams",
        "initial_stream_window_size",
        "keep_alive_interval",
        "keep_alive_timeout",
        "keep_alive_while_idle",
        "max_concurrent_reset_streams",
        "max_concurrent_streams",
        "max_frame_size",
        "max_header_list_size",
        "max_local_error_reset_streams",
        "max_send_buf_size",
        "reset_stream_duration",
        "timer",
    )

    def __init__(
        self,
        *,
        initial_stream_window_size: int,
        initial_connection_window_size: int,
        initial_max_send_streams: int,
        max_frame_size: int,
        max_header_list_size: int,
        header_table_size: int | None,
        max_send_buf_size: int,
        keep_alive_interval: float | None,
        keep_alive_timeout: float,
        keep_alive_while_idle: bool,
        adaptive_window: bool,
        max_concurrent_reset_streams: int,
        executor: Executor | None,
        timer: Timer | None,
        max_concurrent_streams: int | None = None,
        max_local_error_reset_streams: int | None = DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
        reset_stream_duration: float = DEFAULT_RESET_STREAM_DURATION,
    ) -> None:
        self.initial_stream_window_size = initial_stream_window_size
        self.initial_connection_window_size = initial_connection_window_size
        self.initial_max_send_streams = initial_max_send_streams
        self.max_frame_size = max_frame_size
        self.max_header_list_size = max_header_list_size
        self.header_table_size = header_table_size
        self.max_send_buf_size = max_send_buf_size
        self.keep_alive_interval = keep_alive_interval
        self.keep_alive_timeout = keep_alive_timeout
        self.keep_alive_while_idle = keep_alive_while_idle
        self.adaptive_window = adaptive_window
        self.max_concurrent_reset_streams = max_concurrent_reset_streams
        self.max_concurrent_streams = max_concurrent_streams
        self.max_local_error_reset_streams = max_local_error_reset_streams
        self.reset_stream_duration = reset_stream_duration
        self.executor = executor
        self.timer = timer


def _new_h2(config: ClientConfig) -> H2ClientConnection:
    stream_window = _DEFAULT_WINDOW if config.adaptive_window else config.initial_stream_window_size
    conn = new_h2_connection(
        client_side=True,
        initial_stream_window_size=stream_window,
        max_frame_size=config.max_frame_size,
        max_header_list_size=config.max_header_list_size,
        max_concurrent_streams=config.max_concurrent_streams,
        header_table_size=config.header_table_size,
    )
    assert isinstance(conn, H2ClientConnection)
    # The frame reader's own limit (h2 copies it only when SETTINGS are acked,
    # and staged initial values never are).
    conn.incoming_buffer.max_frame_size = config.max_frame_size
    return conn


@final
class ClientConnection:
    """One HTTP/2 client connection: the h2 state, the stream table, the tasks."""

    def __init__(self, io: IO, config: ClientConfig) -> None:
        self.io = io
        self._config = config
        self._timer = config.timer if config.timer is not None else default_timer()
        self._h2 = _new_h2(config)
        self._h2.use_reset_record(
            ResetRecord(
                max_reset_streams=config.max_concurrent_reset_streams,
                duration=config.reset_stream_duration,
                max_local_error_resets=config.max_local_error_reset_streams,
                clock=self._timer.now,
            )
        )
        self._streams: dict[int, Stream] = {}
        self._active = 0  # streams holding a concurrency slot
        self._max_send = config.initial_max_send_streams
        self._slot_waiters: deque[anyio.Event] = deque()
        self._outbox: list[bytes] = []
        self._flush_event = anyio.Event()
        self._flush_pending = False
        self._unflushed = 0  # DATA bytes handed to h2 and not yet written
        self._flushed_waiters: list[anyio.Event] = []
        self._closed = False  # no new requests (GOAWAY, failure, sender closed)
        self._close_error: HyperError | None = None
        self._sender_closed = False
        self._goaway_received = False
        self._finishing = False
        self._finished = anyio.Event()  # _finish() ran: the connection is ending
        self._done = anyio.Event()  # ...and the writer has flushed the last bytes
        self.running = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._pending_pumps: list[tuple[Stream, Body]] = []
        # Keep-alive and the BDP estimate (adaptive_window starts small).
        self._pinger = Pinger(
            self._h2,
            self._timer,
            _DEFAULT_WINDOW if config.adaptive_window else config.initial_stream_window_size,
            _DEFAULT_WINDOW if config.adaptive_window else config.initial_connection_window_size,
        )
        self.connect_protocol_enabled = False
        # The server's first SETTINGS arrived (or the connection ended first):
        # extended CONNECT may be decided only then (RFC 8441 section 3).
        self._settings_received = anyio.Event()

    # ----------------------------------------------------------- public state

    async def start(self) -> None:
        """Write the connection preface and our SETTINGS (the handshake)."""
        h2c = self._h2
        h2c.initiate_connection()
        config = self._config
        conn_window = (
            _DEFAULT_WINDOW if config.adaptive_window else config.initial_connection_window_size
        )
        if conn_window > _DEFAULT_WINDOW:
            h2c.increment_flow_control_window(conn_window - _DEFAULT_WINDOW)
        self._pinger.last_read = self._timer.now()
        await self.io.send(h2c.data_to_send())

    def is_closed(self) -> bool:
        """Whether no new request can be sent on this connection."""
        return self._closed

    @property
    def close_error(self) -> HyperError | None:
        """Why the connection closed (``None``: not closed, or closed normally)."""
        return self._close_error

    @property
    def active_streams(self) -> int:
        """Streams open (or waiting to close) that hold a concurrency slot."""
        return self._active

    @property
    def max_send_streams(self) -> int:
        """The peer's limit on concurrent streams we open (capped for display)."""
        return self._max_send

    @property
    def max_recv_streams(self) -> int:
        """Our SETTINGS_MAX_CONCURRENT_STREAMS (push is disabled, so unused)."""
        return self._h2.local_settings.max_concurrent_streams

    def close_sender(self) -> None:
        """No more requests: end the connection once the open streams are done."""
        self._sender_closed = True
        self._mark_closed(None)
        if self._active == 0:
            self._finish(None, send_goaway=True)

    # ------------------------------------------------------------ sending

    async def send(
        self, request: Request[Any], started: list[Stream] | None = None
    ) -> Response[Incoming]:
        """Send ``request``; return the response once its head arrives (see ``SendRequest``)."""
        if self._closed:
            # Never sent, so safe to retry on another connection.
            raise RequestNotProcessedError("connection closed before the request was sent") from (
                self._close_error
            )
        body: Body = request.body
        protocol = request.extensions.get(H2Protocol)
        fields, is_connect = encode_request(request, body, protocol)
        if protocol is not None and not self.connect_protocol_enabled:
            if not self._settings_received.is_set():
                # Right after the handshake the server has not spoken yet; its
                # SETTINGS are its first frame, one round trip away.
                await self._settings_received.wait()
                if self._closed:
                    raise RequestNotProcessedError(
                        "connection closed before the server's SETTINGS"
                    ) from self._close_error
            if not self.connect_protocol_enabled:
                raise UserError("the server did not enable extended CONNECT (RFC 8441)")
        await self._acquire_slot()
        h2c = self._h2
        stream_id = h2c.get_next_available_stream_id()
        full_data: bytes | None = None
        end_stream = False
        if is_connect:
            pass
        elif type(body) is Full:
            # The fast path: a body known up front is written from its bytes,
            # without reading it (so try_send_request can give it back).
            full_data = b"" if body.is_end_stream() else body.data
            end_stream = not full_data
        elif body.is_end_stream():
            end_stream = True
        try:
            h2c.send_request_headers(stream_id, fields, end_stream)
        except h2.exceptions.H2Error as exc:
            self._release_slot()
            raise CanceledError("could not open a stream") from exc
        stream = Stream(stream_id, is_connect, self._on_consumed, self._on_released)
        stream.local_closed = end_stream
        stream.callback = _get_on_informational(request)
        self._streams[stream_id] = stream
        if started is not None:
            started.append(stream)
        self._flush_soon()
        try:
            if full_data:
                if not self._try_send_inline(stream, full_data):
                    self._spawn_pump(stream, body, full_data)
            elif not end_stream and not is_connect:
                stream.body_read = True
                self._spawn_pump(stream, body, None)
            await stream.head.wait()
        except BaseException:
            # Cancelled while waiting (or a failure above): this stream alone
            # is reset with CANCEL; the other streams go on.
            if stream.response is None:
                self._reset(stream, ErrorCodes.CANCEL)
            raise
        if stream.error is not None:
            raise stream.error
        response = stream.response
        assert response is not None
        return response

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
        stream.local_closed = True
        self._flush_soon()
        self._maybe_done(stream)

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
                try:
                    await send_all(self.io, chunks)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                    error = ClosedError("connection error while writing")
                    error.__cause__ = exc
                    self._finish(error, send_goaway=False)
                    self._done.set()
                    return
            self._unflushed -= written
            if self._flushed_waiters:
                waiters, self._flushed_waiters = self._flushed_waiters, []
                for event in waiters:
                    event.set()
            if self._finishing and not self._flush_pending:
                self._done.set()
                return

    # ------------------------------------------------------------- reading

    async def _reader(self) -> None:
        h2c = self._h2
        io = self.io
        timer = self._timer
        pinger = self._pinger
        while True:
            try:
                data = await receive_or_eof(io, _READ_SIZE)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                error = ClosedError("connection error while reading")
                error.__cause__ = exc
                self._finish(error, send_goaway=False)
                return
            if not data:
                self._finish(
                    IncompleteMessageError("connection closed before message completed"),
                    send_goaway=False,
                )
                return
            pinger.last_read = timer.now()
            pending = h2c.data_to_send()
            if pending:
                self._outbox.append(pending)
            try:
                events = h2c.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                code = getattr(exc, "error_code", ErrorCodes.PROTOCOL_ERROR)
                broken = ProtocolError("the server broke the HTTP/2 protocol", error_code=int(code))
                broken.__cause__ = exc
                with contextlib.suppress(h2.exceptions.H2Error):
                    h2c.close_connection(code)
                self._finish(broken, send_goaway=True)
                return
            self._dispatch(events)
            # Only when there is something to write (a SETTINGS or PING ACK,
            # a WINDOW_UPDATE): a plain response wakes no writer.
            if self._outbox or h2c._data_to_send:
                self._flush_soon()
            if self._finishing:
                return

    def _dispatch(self, events: list[h2.events.Event]) -> None:
        streams = self._streams
        ev: Any
        for ev in events:
            kind = type(ev)
            if kind is h2.events.DataReceived:
                stream = streams.get(ev.stream_id)
                size = ev.flow_controlled_length
                data = ev.data
                sender = None if stream is None else stream.sender
                if sender is None or sender.is_released:
                    self._h2.acknowledge_received_data(size, ev.stream_id)
                else:
                    if size > len(data):  # padding: never reaches the reader
                        self._h2.acknowledge_received_data(size - len(data), ev.stream_id)
                    if data:
                        sender.send_data_nowait(data)
                if self._config.adaptive_window:
                    self._pinger.record_data(size)
            elif kind is h2.events.ResponseReceived:
                self._on_response(ev)
            elif kind is h2.events.StreamEnded:
                stream = streams.get(ev.stream_id)
                if stream is not None:
                    stream.remote_closed = True
                    if stream.sender is not None:
                        stream.sender.finish()
                    self._maybe_done(stream)
            elif kind is h2.events.WindowUpdated:
                if ev.stream_id == 0:
                    self._wake_windows()
                else:
                    stream = streams.get(ev.stream_id)
                    if stream is not None and stream.window is not None:
                        stream.window.set()
            elif kind is h2.events.StreamReset:
                self._on_stream_reset(ev)
            elif kind is h2.events.TrailersReceived:
                stream = streams.get(ev.stream_id)
                if stream is not None and stream.sender is not None:
                    trailers = Headers._from_trusted([(n, v) for n, v in ev.headers])
                    if not stream.sender.is_released:
                        stream.sender.send_trailers(trailers)
            elif kind is h2.events.RemoteSettingsChanged:
                self._on_settings(ev)
            elif kind is h2.events.PingAckReceived:
                self._pinger.on_ack(ev.ping_data)
            elif kind is h2.events.ConnectionTerminated:
                self._on_goaway(ev)
            elif kind is h2.events.InformationalResponseReceived:
                stream = streams.get(ev.stream_id)
                if stream is not None and stream.callback is not None:
                    status, fields = _split_head(ev.headers)
                    info = InformationalResponse(
                        status, Version.HTTP_2, Headers._from_trusted(fields)
                    )
                    stream.callback(info)
            # Other events (PING received: h2 answers it; SETTINGS ACK,
            # PRIORITY, ALTSVC, unknown frames) need nothing from us.

    def _on_response(self, ev: h2.events.ResponseReceived) -> None:
        stream = self._streams.get(ev.stream_id)
        if stream is None or stream.response is not None:
            return
        status, fields = _split_head(ev.headers)
        headers = Headers._from_trusted(fields)
        ended = ev.stream_ended is not None
        code = _BY_CODE.get(status) or StatusCode(status)
        body: Incoming
        upgraded: Incoming | None = None
        if ended:
            body = Incoming.empty()
        else:
            hint: SizeHint | None = None
            length = headers.get_raw(b"content-length")
            if length is not None and length.isdigit():
                hint = SizeHint.with_exact(int(length))
            sender, incoming = Incoming.from_channel(
                size_hint=hint, on_consumed=stream.consumed_cb, on_release=stream.release_cb
            )
            stream.sender = sender
            if stream.is_connect and 200 <= status < 300:
                upgraded, body = incoming, Incoming.empty()
            else:
                body = incoming
        response = Response.from_parts(code, Version.HTTP_2, headers, body)
        if upgraded is not None:
            pending = upgrade._attach_pending(response)
            pending.fulfil(H2StreamIO(self, stream.id, upgraded), b"")
        elif stream.is_connect and not stream.local_closed:
            self._end_local(stream)  # a refused tunnel: our half ends here
        stream.response = response
        stream.head.set()

    def _on_stream_reset(self, ev: h2.events.StreamReset) -> None:
        stream = self._streams.get(ev.stream_id)
        if stream is None:
            return
        code = ev.error_code
        error: HyperError
        if code == ErrorCodes.REFUSED_STREAM and stream.response is None:
            error = RequestNotProcessedError(
                "the server refused the stream (REFUSED_STREAM); safe to retry",
                error_code=int(code),
            )
        elif code == ErrorCodes.NO_ERROR and stream.remote_closed:
            # The server answered in full and does not want the rest of the
            # request body (RFC 9113 section 8.1): not an error.
            error = CanceledError("the server ended the stream")
        else:
            name = code.name if isinstance(code, ErrorCodes) else str(code)
            error = ProtocolError(f"stream reset by the server ({name})", error_code=int(code))
        stream.fail(error)
        if stream.pump_scope is not None:
            stream.pump_scope.cancel()
        self._forget(stream)

    def _on_settings(self, ev: h2.events.RemoteSettingsChanged) -> None:
        changed = ev.changed_settings
        remote = self._h2.remote_settings
        # The peer's first SETTINGS (or a later change) sets the stream limit;
        # without the setting the limit is "none" (RFC 9113 section 6.5.2).
        self._max_send = min(remote.max_concurrent_streams, 2**31 - 1)
        self.connect_protocol_enabled = bool(remote.enable_connect_protocol)
        self._settings_received.set()
        self._grant_slots()
        if _SETTINGS.INITIAL_WINDOW_SIZE in changed or _SETTINGS.MAX_FRAME_SIZE in changed:
            self._wake_windows()

    # ------------------------------------------------------- GOAWAY & close

    def _on_goaway(self, ev: h2.events.ConnectionTerminated) -> None:
        last = ev.last_stream_id if ev.last_stream_id is not None else 0
        code = ev.error_code if ev.error_code is not None else 0
        name = code.name if isinstance(code, ErrorCodes) else str(code)
        # h2 stays open (see _common): streams up to ``last`` may still
        # finish (RFC 9113 section 6.8). New streams are refused here.
        reason = ProtocolError(f"the server sent GOAWAY ({name})", error_code=int(code))
        self._goaway_received = True
        self._mark_closed(reason)
        for stream in [s for s in self._streams.values() if s.id > last]:
            error = RequestNotProcessedError(
                f"the server did not process the request (GOAWAY {name}, last stream "
                f"{last}); safe to retry",
                error_code=int(code),
            )
            error.__cause__ = reason
            stream.fail(error)
            if stream.pump_scope is not None:
                stream.pump_scope.cancel()
            self._forget(stream)
        if not self._streams:
            self._finish(None if code == 0 else reason, send_goaway=False)

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

    # ----------------------------------------------------------- keep-alive

    async def _keep_alive(self, interval: float) -> None:
        config = self._config
        timed_out = await self._pinger.keep_alive(
            interval,
            config.keep_alive_timeout,
            config.keep_alive_while_idle,
            lambda: self._active == 0,
            self._send_ping,
        )
        if timed_out:
            self._finish(TimeoutError("HTTP/2 keep-alive ping timed out"), send_goaway=True)

    def _send_ping(self, payload: bytes) -> bool:
        if self._finishing:
            return False
        self._h2.ping(payload)
        self._flush_soon()
        return True

    # ----------------------------------------------------------------- run

    async def run(self) -> None:
        """Drive the connection until it ends; never raises its errors."""
        if self.running:
            raise UserError("the connection is already being driven")
        self.running = True
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._writer)
                tg.start_soon(self._reader)
                interval = self._config.keep_alive_interval
                if interval is not None:
                    tg.start_soon(self._keep_alive, interval)
                pending, self._pending_pumps = self._pending_pumps, []
                for stream, body in pending:
                    self._spawn_pump(stream, body, stream.pump_data)
                if self._sender_closed and self._active == 0:
                    self._finish(None, send_goaway=True)
                await self._finished.wait()
                # The writer flushes what is left (a GOAWAY); a server that
                # stopped reading gets a bounded wait, not a hung task.
                timer = self._timer
                with timer.deadline(timer.now() + _CLOSE_FLUSH_TIMEOUT):
                    await self._done.wait()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            if not self._finishing:
                self._finish(CanceledError("the connection task was cancelled"), send_goaway=False)
            with anyio.CancelScope(shield=True):
                await self._aclose_io()

    async def _aclose_io(self) -> None:
        timer = self._timer
        # Closing a broken IO may fail; it is closed all the same.
        with timer.deadline(timer.now() + _CLOSE_FLUSH_TIMEOUT), contextlib.suppress(Exception):
            await self.io.aclose()


class _StreamGone(Exception):
    """Internal: the stream was reset or closed while its body was being sent."""


def _split_head(headers: list[Any]) -> tuple[int, list[tuple[bytes, bytes]]]:
    status = 0
    fields: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name[0] == 58:  # b":"
            if name == b":status":
                status = int(value)
        else:
            fields.append((name, value))
    return status, fields


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
        self.consumed_cb = functools.partial(on_consumed, self)
        self.release_cb = functools.partial(on_released, self)

    def fail(self, error: HyperError) -> None:
        """Fail the waiting ``send_request``, or else the response body being read."""
        if not self.head.is_set():
            self.error = error
            self.head.set()
        elif self.sender is not None:
            self.sender.abort(error)  # does nothing once the body has ended


# Connection-specific fields (RFC 9113 section 8.2.2), stripped as hyper does;
# ``host`` moves into ``:authority`` (section 8.3.1); ``te`` survives only as
# "trailers".
_STRIPPED: Final = CONNECTION_HEADERS | {b"host", b"te"}
# Methods whose request body has no defined meaning: an empty body of known
# length gets no ``content-length: 0`` (hyper's method_has_defined_payload_semantics).
_NO_PAYLOAD_SEMANTICS: Final = frozenset({"GET", "HEAD", "DELETE", "CONNECT"})
_METHOD_BYTES: Final = {
    m: m.encode() for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
}


def encode_request(
    request: Request[Any], body: Body, protocol: H2Protocol | None
) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Return the HEADERS fields of ``request`` and whether it is a CONNECT.

    Raises:
        UserError: a CONNECT without authority or with a body, or a
            ``Protocol`` on a method other than CONNECT.
    """
    method = request.method
    method_bytes = _METHOD_BYTES.get(method) or method.encode("ascii")
    uri = request.uri
    headers = request.headers
    authority = uri.authority
    if authority is not None:
        authority = authority.rpartition("@")[2]  # userinfo never goes on the wire
        authority_bytes: bytes | None = authority.encode("ascii")
    else:
        authority_bytes = headers.get_raw(b"host")
    is_connect = method == "CONNECT"
    fields: list[tuple[bytes, bytes]] = [(b":method", method_bytes)]
    if is_connect and protocol is None:
        if authority_bytes is None:
            raise UserError("a CONNECT request needs an authority (host:port)")
        fields.append((b":authority", authority_bytes))
    else:
        if protocol is not None and not is_connect:
            raise UserError("a :protocol (extended CONNECT) needs the CONNECT method")
        scheme = uri.scheme or "http"
        fields.append((b":scheme", scheme.encode("ascii")))
        if authority_bytes is not None:
            fields.append((b":authority", authority_bytes))
        fields.append((b":path", (uri.path_and_query or "/").encode("ascii")))
        if protocol is not None:
            fields.append((b":protocol", protocol.as_bytes()))
    listed: frozenset[bytes] = frozenset()
    connection = headers.get_all_raw(b"connection")
    if connection:
        listed = frozenset(
            token.strip().lower() for value in connection for token in value.split(b",")
        )
    has_length = False
    for name, value in headers.raw():
        lower = name.lower()
        if lower in _STRIPPED or lower in listed:
            if lower == b"te" and value.strip().lower() == b"trailers":
                fields.append((b"te", b"trailers"))
            continue
        if lower == b"content-length":
            has_length = True
            if is_connect and value.strip() != b"0":
                raise UserError("a CONNECT request cannot have a body")
        fields.append((lower, value))
    if not has_length:
        exact = body.size_hint().exact
        if exact is not None:
            if is_connect and exact:
                raise UserError("a CONNECT request cannot have a body")
            if exact or method not in _NO_PAYLOAD_SEMANTICS:
                fields.append((b"content-length", str(exact).encode("ascii")))
    return fields, is_connect


def encode_trailers(trailers: Headers) -> list[tuple[bytes, bytes]]:
    """Return trailer fields for HEADERS: lower-case, connection-specific ones dropped."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in trailers.raw():
        lower = name.lower()
        if lower not in _STRIPPED:
            out.append((lower, value))
    return out
