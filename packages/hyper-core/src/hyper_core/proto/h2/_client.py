"""HTTP/2 client protocol: the connection, its handshake, its requests and its tasks.

What belongs here: the machinery behind ``hyper_core.client.conn.http2``:
the options record :class:`ClientConfig` and :class:`ClientConnection`,
which owns one ``h2.connection.H2Connection`` and its IO: its handshake,
its state, ``send`` (a request's slot, stream and head) and ``run`` (the
tasks, keep-alive, the end). The connection is one object in three
classes, split by concern: its bases are :class:`ClientReader`
(``_client_reader.py``: the reader task and the h2 events) over
:class:`StreamSending` (``_client_stream.py``: request bodies and tunnels
within windows, slots, the writer task, the connection's end; also the
per-stream record and :class:`RequestNotProcessedError`). Header lists are
built in ``_client_encode.py``; the IO a CONNECT tunnel hands out is
``_stream_io.py``. The public handles (``SendRequest``, ``Connection``,
``Builder``) are thin wrappers in ``client/conn/http2.py``.

Strategy:

* h2 is a synchronous state machine; every task that talks HTTP/2 (a
  request being sent, a body pump, the reader) changes it directly between
  awaits, which needs no lock because nothing awaits in the middle of a
  change. Bytes h2 produces are written by one writer task, woken by
  :meth:`StreamSending._flush_soon`, so the frames of many streams leave
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
(see ``_common``); the connection refuses new streams after a GOAWAY, fails
those above the last stream id with :class:`RequestNotProcessedError`, and
lets the others complete.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any, Final, final

import anyio
import anyio.abc
import h2.exceptions
from h2.errors import ErrorCodes

from hyper_core._write_report import WriteReport
from hyper_core.body import Body, Full, Incoming
from hyper_core.error import CanceledError, HyperError, TimeoutError, UserError
from hyper_core.ext import _get_on_informational
from hyper_core.http import Request, Response
from hyper_core.proto.h2._client_encode import encode_request
from hyper_core.proto.h2._client_reader import ClientReader
from hyper_core.proto.h2._client_resets import (
    DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
    DEFAULT_RESET_STREAM_DURATION,
    ResetRecord,
)
from hyper_core.proto.h2._client_stream import RequestNotProcessedError, Stream
from hyper_core.proto.h2._common import H2Protocol, new_h2_connection
from hyper_core.proto.h2._fast_client import H2ClientConnection
from hyper_core.proto.h2._ping import Pinger
from hyper_core.proto.h2._write_marks import END, HEAD, WriteMarks
from hyper_core.rt import IO, Executor, Timer, default_timer

__all__ = [
    "ClientConfig",
    "ClientConnection",
]

# The initial windows adaptive_window starts from (RFC 9113 default, bytes).
_DEFAULT_WINDOW: Final = 65_535
# Seconds the final flush (GOAWAY), and then closing the IO, may take before
# the connection gives up on them (a peer that stopped reading).
_CLOSE_FLUSH_TIMEOUT: Final = 5.0


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
class ClientConnection(ClientReader):
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
        self._marks = WriteMarks()  # ext.on_write reports waiting for the writer
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
        before = len(h2c._data_to_send)
        try:
            h2c.send_request_headers(stream_id, fields, end_stream)
        except h2.exceptions.H2Error as exc:
            self._release_slot()
            raise CanceledError("could not open a stream") from exc
        stream = Stream(stream_id, is_connect, self._on_consumed, self._on_released)
        if request._extensions is not None:
            stream.report = report = request._extensions.get(WriteReport)
            if report is not None:  # ext.on_write: its body goes through _pump, marked
                self._mark(stream, HEAD, len(h2c._data_to_send) - before)
                if end_stream:
                    self._mark(stream, END, 0)
        stream.local_closed = end_stream
        stream.callback = _get_on_informational(request)
        self._streams[stream_id] = stream
        if started is not None:
            started.append(stream)
        self._flush_soon()
        try:
            if full_data:
                if stream.report is not None or not self._try_send_inline(stream, full_data):
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
