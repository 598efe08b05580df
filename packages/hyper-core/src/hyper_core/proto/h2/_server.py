"""The HTTP/2 server connection: its lifecycle and the reader task.

What belongs here: :class:`ServerConnection`, one HTTP/2 server
connection: the state every part shares (made in ``__init__``), the public
surface (``run``, ``graceful_shutdown``, ``begin_upgraded``), the reader
task, handing new streams to workers, connection-level failure, graceful
shutdown and keep-alive. The public face is
:mod:`hyper_core.server.conn.http2`; the h2 adapters are in ``_common``.

The connection is made of four units, split by concern:

* the reader and lifecycle (here);
* the h2 event handlers and the limits on them (``_server_events.py``,
  :class:`ServerEvents`, a mixin);
* stream serving: workers, responses, flow-control waits, tunnels
  (``_server_stream.py``, :class:`StreamServing`, a mixin);
* the writer: output queue, writer task, drain waits, write marks
  (``_writer.py``, :class:`_Writer`, an object of its own).

The writer is composed: its state is its own, and the connection stores its
bound methods once (``self._want_write = writer.want_write``), so queueing a
frame costs the method call it always cost. The two mixins read and write
connection state that changes per event and per request (``_dead``,
``_streams``, ``_last_stream_id``); as objects of their own each of those
reads would be one more attribute hop, so they stay mixins (their opening
blocks say the same).

Strategy (speed, fairness, bounded resources):

* One reader task feeds every received byte to h2 and handles the events of
  a whole read before anything is written; one writer task sends whatever h2
  has produced with one ``send`` per wake-up, so the responses of all streams
  answered in one scheduling round leave in one write.
* Each stream is served concurrently: by one task per stream spawned
  through a user-given executor, or, by default, by reused worker tasks
  (in ``_server_stream``): a stream goes to an idle worker with one event,
  not a task spawn and a cancel scope (~50 us, a quarter of a small
  request), and to a new worker when none is idle, so a slow service never
  holds up another. Streams are dispatched at the end of the read that
  opened them, so one reset within the same read (rapid reset) costs no task.
* Request bodies: DATA is pushed into the stream's ``Incoming`` without
  waiting (h2 flow control bounds it to the window we granted) and window is
  given back only when the application takes the data (``on_consumed``).
* Response bodies: sent frame by frame within the peer's stream and
  connection windows; a stream with no window waits for a WINDOW_UPDATE (or a
  SETTINGS change), at most ``send_stall_timeout``. Writers also wait while
  more than ``max_send_buf_size`` bytes of DATA are queued and not written
  (a peer that does not read its socket); the reader stops reading while
  twice that is pending, frames of any kind (a peer flooding us with frames
  that need answers, or requests whose answers it does not read).
* Abusive peers (rapid reset, floods, CONTINUATION) are answered with
  GOAWAY(ENHANCE_YOUR_CALM): the limits are listed in ``_server_events``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import anyio
import h2.events
import h2.exceptions
from h2.connection import ConnectionState

from hyper_core.body import Incoming
from hyper_core.error import ClosedError, HyperError, TimeoutError
from hyper_core.http import Request, Uri
from hyper_core.rt import IO, Executor, TaskGroupExecutor, receive_or_eof

from ._common import (
    SPEC_INITIAL_WINDOW,
    goaway_frame,
    initiate,
    new_h2_connection,
    translate_h2_error,
)
from ._fast_server import H2ServerConnection
from ._ping import Pinger
from ._server_config import ServerConfig
from ._server_events import SHUTDOWN_PING, ServerEvents
from ._server_stream import StreamServing, _IdleWorker
from ._stream_record import _Stream
from ._writer import _Writer

if TYPE_CHECKING:
    from hyper_core.service import Service

__all__ = ["ServerConfig", "ServerConnection"]

#: Bytes asked of the IO per read (anyio's default receive size).
READ_SIZE: Final = 65536
#: Seconds the graceful shutdown waits for its PING ACK before the final
#: GOAWAY (Go's http2 server waits 1 s too). h2-based clients drop the ACK
#: when the PING and the GOAWAY arrive together, so this is the usual case.
SHUTDOWN_PING_WAIT: Final = 1.0
_MAX_STREAM_ID: Final = 2**31 - 1
_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class ServerConnection(ServerEvents, StreamServing):
    """Drives one HTTP/2 server connection (see the module docstring)."""

    def __init__(self, io: IO, service: Service[Any], config: ServerConfig) -> None:
        self._io = io
        self._service = service
        self._config = config
        self._timer = config.timer
        # Adaptive flow control starts from the RFC windows and grows them by
        # bandwidth-delay product estimates (as hyper does).
        self._adaptive = config.adaptive_window
        stream_window = SPEC_INITIAL_WINDOW if self._adaptive else config.initial_stream_window_size
        h2c = new_h2_connection(
            client_side=False,
            initial_stream_window_size=stream_window,
            max_frame_size=config.max_frame_size,
            max_header_list_size=config.max_header_list_size,
            max_concurrent_streams=config.max_concurrent_streams,
            header_table_size=config.header_table_size,
            enable_connect_protocol=config.enable_connect_protocol,
            validate_inbound_headers=False,  # check_request_fields, per stream
        )
        assert isinstance(h2c, H2ServerConnection)
        self._h2 = h2c
        self._pinger = Pinger(
            h2c,
            self._timer,
            stream_window,
            SPEC_INITIAL_WINDOW if self._adaptive else config.initial_connection_window_size,
        )
        self._initiated = False  # the preface is queued (done early by an h2c upgrade)
        self._streams: dict[int, _Stream] = {}
        self._to_spawn: list[tuple[_Stream, Request[Incoming]]] = []
        self._executor: Executor | None = config.executor
        self._spawn_direct: Callable[..., object] | None = None
        self._uri_templates: dict[tuple[bytes, bytes], Uri] = {}
        self._idle_workers: list[_IdleWorker] = []
        self._window_waiters: set[_Stream] = set()
        self._read_scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._finishing = False
        self._idle: anyio.Event | None = None
        self._error: HyperError | None = None
        self._dead = False  # h2 can send nothing more (GOAWAY with error, EOF)
        self._shutdown_requested = False
        self._shutdown_ack = anyio.Event()
        self._last_stream_id: int | None = None  # set by the final graceful GOAWAY
        self._pending_resets = 0
        self._local_resets = 0
        self._flood_epoch = -math.inf
        self._settings_count = self._ping_count = self._empty_data_count = 0
        self._dispatch = self._handlers()
        writer = self._writer = _Writer(
            io,
            h2c,
            self._timer,
            max_send_buf_size=config.max_send_buf_size,
            send_stall_timeout=config.send_stall_timeout,
            lost=self._io_lost,
            fail=self._fail,
            error=lambda: self._error,
        )
        # The writer's methods the stream tasks and the reader call, bound
        # once: a call costs what a call of the connection's own method costs.
        self._want_write = writer.want_write
        self._data_queued = writer.data_queued
        self._queue_raw = writer.queue_raw
        self._wait_drained = writer.wait_drained
        self._mark = writer.mark
        self._stall_deadline = writer.stall_deadline
        # The backend's own Event class, constructed directly (see _Writer):
        # workers make one per wake-up.
        self._new_event = type(writer.done)

    # -- public surface -------------------------------------------------------

    @property
    def dead(self) -> bool:
        """True once nothing more can be sent (EOF, I/O error, GOAWAY with an error)."""
        return self._dead

    def graceful_shutdown(self) -> None:
        """Begin the two-step GOAWAY; the connection ends once open streams finish."""
        if self._shutdown_requested:
            return
        self._shutdown_requested = True
        if self._tg is not None:
            self._start_shutdown()

    def begin_upgraded(self, settings: bytes, request: Request[Incoming]) -> None:
        """Start as an h2c upgrade: apply the client's ``settings``, serve ``request`` as stream 1.

        Call before :meth:`run`. ``settings`` is the padded ``HTTP2-Settings``
        value; ``request`` is complete (stream 1 is half-closed by the client).

        Raises:
            ValueError: ``settings`` holds an invalid value.
        """
        try:
            initiate(self._h2, settings)
        except h2.exceptions.ProtocolError as exc:
            raise ValueError(f"invalid HTTP2-Settings: {exc}") from None
        self._initiated = True
        stream = _Stream(1)
        self._streams[1] = stream
        self._to_spawn.append((stream, request))

    async def run(self) -> None:
        """Serve until the connection ends; raise a HyperError if it ended abnormally."""
        h2c = self._h2
        if not self._initiated:
            initiate(h2c)
        extra = self._pinger.conn_window - SPEC_INITIAL_WINDOW
        if extra > 0:
            h2c.increment_flow_control_window(extra)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self._executor is None:
                    self._executor = TaskGroupExecutor(tg)
                    # The executor's wrapper and task naming cost as much as
                    # the rest of a small request: spawn into our group directly.
                    self._spawn_direct = tg.start_soon
                tg.start_soon(self._writer.run)
                if self._config.keep_alive_interval is not None:
                    tg.start_soon(self._keep_alive_loop)
                with anyio.CancelScope() as self._read_scope:
                    if self._shutdown_requested:
                        self._start_shutdown()
                    self._want_write()
                    self._spawn_new_streams()  # stream 1 of an h2c upgrade
                    await self._read_loop()
                if self._dead or self._error is not None:
                    self._cancel_all_streams()
                await self._wait_streams_idle()
                self._finishing = True
                self._writer.finish()
                with self._timer.deadline(self._stall_deadline()):
                    await self._writer.done.wait()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None  # a late graceful_shutdown() has nothing left to do
            self._cancel_all_streams()
        if self._error is not None:
            raise self._error

    @property
    def stream_window(self) -> int:
        """The receive window each new stream gets, in bytes (grows when adaptive)."""
        return self._pinger.stream_window

    # -- reading --------------------------------------------------------------

    async def _read_loop(self) -> None:
        h2c = self._h2
        io = self._io
        dispatch = self._dispatch
        backlog = self._writer.backlog
        limit = 2 * self._config.max_send_buf_size
        while not self._dead:
            # Everything waiting to be written counts, not only DATA: a
            # client opening stream after stream without reading makes
            # mostly HEADERS frames.
            if backlog() > limit:
                await self._wait_drained()
            try:
                data = await receive_or_eof(io, READ_SIZE)
            except _IO_ERRORS:
                data = b""
            if not data:
                self._dead = True
                return
            try:
                events = h2c.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                # h2 has queued GOAWAY with the matching code, except for a bad
                # preface, which it rejects before its state machine runs.
                if h2c.state_machine.state is not ConnectionState.CLOSED:
                    h2c.close_connection(exc.error_code)
                self._fail(translate_h2_error(exc, "the client broke HTTP/2"))
                return
            self._start_flood_window()
            for event in events:
                handler = dispatch.get(type(event))
                if handler is not None:
                    handler(event)
                if self.dead:
                    break
            if not self.dead:
                self._check_header_block()
                self._spawn_new_streams()
            self._want_write()
            if self._last_stream_id is not None and not self._streams:
                return

    def _spawn_new_streams(self) -> None:
        if not self._to_spawn:
            return
        batch = self._to_spawn
        self._to_spawn = []
        executor = self._executor
        spawn_direct = self._spawn_direct
        assert executor is not None
        idle = self._idle_workers
        for stream, request in batch:
            if stream.closed:
                # Reset before it was ever served: it cost no task (and
                # _forget takes it off the pending-reset count).
                self._forget(stream)
                continue
            stream.task_running = True
            if spawn_direct is None:
                executor.spawn(self._serve_stream, stream, request)
            elif idle:
                worker = idle.pop()
                worker.job = (stream, request)
                worker.wake.set()
            else:
                spawn_direct(self._worker, stream, request)

    def _cancel_all_streams(self) -> None:
        for stream in list(self._streams.values()):
            if not stream.closed:
                self._close_stream(stream, ClosedError("the connection closed"))
            stream.tunnel_open = False
            self._forget(stream)

    async def _wait_streams_idle(self) -> None:
        while self._streams:
            self._idle = self._new_event()
            await self._idle.wait()

    # -- connection-level errors and shutdown -----------------------------------

    def _fail(self, error: HyperError) -> None:
        if self._error is None:
            self._error = error
        self._dead = True
        if self._read_scope is not None:
            self._read_scope.cancel()
        self._want_write()

    def _io_lost(self) -> None:
        # The writer's IO broke: nothing more can be sent or is worth reading.
        self._dead = True
        if self._read_scope is not None:
            self._read_scope.cancel()

    def _start_shutdown(self) -> None:
        if self._dead or self._tg is None:
            return
        # Step one of RFC 9113 section 6.8: announce the shutdown without a
        # limit, with a PING; streams opened before the PING ACK comes back
        # were in flight and are still served. The PING goes first because
        # h2-based clients (httpx) fail on any frame but GOAWAY after one.
        self._h2.ping(SHUTDOWN_PING)
        self._queue_raw(goaway_frame(_MAX_STREAM_ID))
        self._tg.start_soon(self._shutdown_timeout)

    async def _shutdown_timeout(self) -> None:
        wait = min(self._config.keep_alive_timeout, SHUTDOWN_PING_WAIT)
        with self._timer.deadline(self._timer.now() + wait):
            await self._shutdown_ack.wait()
        if self._last_stream_id is None:
            self._final_goaway()

    def _final_goaway(self) -> None:
        if self._dead or self._last_stream_id is not None:
            return
        self._last_stream_id = last = self._h2.highest_inbound_stream_id
        self._queue_raw(goaway_frame(last))
        if not self._streams and self._read_scope is not None:
            self._read_scope.cancel()

    async def _keep_alive_loop(self) -> None:
        config = self._config
        interval = config.keep_alive_interval
        assert interval is not None
        # hyper's server pings while idle too: an idle connection that died
        # is what keep-alive is for.
        timed_out = await self._pinger.keep_alive(
            interval, config.keep_alive_timeout, True, lambda: False, self._send_ping
        )
        if timed_out:
            self._fail(TimeoutError("the client did not answer a keep-alive PING in time"))

    def _send_ping(self, payload: bytes) -> bool:
        if self.dead:
            return False
        self._h2.ping(payload)
        self._want_write()
        return True
