"""The HTTP/2 server dispatcher: one connection, many concurrent streams.

What belongs here: :class:`ServerConnection`, the connection-level half
of the HTTP/2 server: its lifecycle, the reader task, h2 events, limits,
graceful shutdown and keep-alive. The per-stream half (responses, the
writer task, tunnels) is its base class in ``_server_stream.py``. The public
face is :mod:`hyper_core.server.conn.http2`; the h2 adapters are in
``_common``.

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
* Limits answered with GOAWAY(ENHANCE_YOUR_CALM): peer resets of streams
  still being served (``max_pending_accept_reset_streams``, rapid reset),
  resets we had to send for the peer's errors
  (``max_local_error_reset_streams``), floods of SETTINGS, PING and empty
  DATA frames (per-second budgets below), a header block spread over
  CONTINUATION frames beyond the header list limit. h2 itself enforces the
  decoded header list size (HPACK bomb, ENHANCE_YOUR_CALM), frame sizes and
  flow-control violations.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import anyio
import h2.events
import h2.exceptions
from h2.connection import ConnectionState
from h2.settings import SettingCodes

from hyper_core._exchange import Exchange
from hyper_core.body import Incoming, SizeHint
from hyper_core.error import (
    ClosedError,
    HyperError,
    ProtocolError,
    TimeoutError,
)
from hyper_core.http import Extensions, Headers, Method, Request, Uri, Version
from hyper_core.rt import IO, Executor, TaskGroupExecutor, receive_or_eof
from hyper_core.upgrade import _attach_pending

from ._common import (
    SPEC_INITIAL_WINDOW,
    ErrorCode,
    H2Protocol,
    check_request_fields,
    check_trailer_fields,
    goaway_frame,
    initiate,
    new_h2_connection,
    translate_h2_error,
)
from ._fast_server import H2ServerConnection
from ._ping import Pinger
from ._server_stream import ServerConfig, StreamServing, _IdleWorker, _Stream

if TYPE_CHECKING:
    from hyper_core.service import Service

__all__ = ["ServerConfig", "ServerConnection"]

#: Bytes asked of the IO per read (anyio's default receive size).
READ_SIZE: Final = 65536
#: Flood budgets, in frames per second of the connection's clock: more than
#: this many SETTINGS, PING or empty non-final DATA frames within one second
#: is a flood (CVE-2019-9515, CVE-2019-9512, CVE-2019-9518). Legitimate peers
#: send a handful; nginx and Go close at similar orders of magnitude.
MAX_SETTINGS_PER_SECOND: Final = 100
MAX_PINGS_PER_SECOND: Final = 100
MAX_EMPTY_DATA_PER_SECOND: Final = 1000
#: Seconds the graceful shutdown waits for its PING ACK before the final
#: GOAWAY (Go's http2 server waits 1 s too). h2-based clients drop the ACK
#: when the PING and the GOAWAY arrive together, so this is the usual case.
SHUTDOWN_PING_WAIT: Final = 1.0
_MAX_STREAM_ID: Final = 2**31 - 1
_SHUTDOWN_PING: Final = b"hyperGA\x01"
_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
_HTTP_2: Final = Version.HTTP_2


class ServerConnection(StreamServing):
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
        self._raw_out = bytearray()  # frames written around h2 (graceful GOAWAY)
        self._write_wake: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._buffered_data = 0  # DATA bytes queued in h2 and not yet written
        self._window_waiters: set[_Stream] = set()
        self._read_scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._finishing = False
        self._writer_done = anyio.Event()
        # anyio.Event() looks the running library up (sniffio) on every call;
        # the backend's own class constructs directly, and a connection never
        # changes event loops. Workers and the writer make one per wake-up.
        self._new_event = type(self._writer_done)
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
        self._dispatch: dict[type[h2.events.Event], Callable[[Any], None]] = {
            h2.events.RequestReceived: self._on_request,
            h2.events.DataReceived: self._on_data,
            h2.events.StreamEnded: self._on_stream_ended,
            h2.events.TrailersReceived: self._on_trailers,
            h2.events.StreamReset: self._on_reset,
            h2.events.WindowUpdated: self._on_window_updated,
            h2.events.RemoteSettingsChanged: self._on_settings,
            h2.events.PingReceived: self._on_ping,
            h2.events.PingAckReceived: self._on_ping_ack,
            h2.events.ConnectionTerminated: self._on_goaway,
        }

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
                tg.start_soon(self._write_loop)
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
                self._want_write()
                with self._timer.deadline(self._stall_deadline()):
                    await self._writer_done.wait()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None  # a late graceful_shutdown() has nothing left to do
            self._cancel_all_streams()
        if self._error is not None:
            raise self._error

    # -- reading --------------------------------------------------------------

    async def _read_loop(self) -> None:
        h2c = self._h2
        io = self._io
        dispatch = self._dispatch
        limit = 2 * self._config.max_send_buf_size
        while not self._dead:
            # Everything waiting to be written counts, not only DATA: a
            # client opening stream after stream without reading makes
            # mostly HEADERS frames (h2's own buffer, read as _fast_server does).
            pending = self._buffered_data + len(self._raw_out) + len(h2c._data_to_send)
            if pending > limit:
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

    def _start_flood_window(self) -> None:
        now = self._pinger.last_read = self._timer.now()
        if now - self._flood_epoch >= 1.0:
            self._flood_epoch = now
            self._settings_count = self._ping_count = self._empty_data_count = 0

    def _check_header_block(self) -> None:
        # h2 caps a header block at 64 CONTINUATION frames but not their bytes;
        # bound what an unfinished block may buffer (CVE-2024-27316).
        pending = self._h2.incoming_buffer._headers_buffer
        if pending:
            size = sum(len(frame.data) for frame in pending)
            if size > self._config.max_header_list_size + self._config.max_frame_size:
                self._calm("header block larger than max_header_list_size")

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

    # -- events -----------------------------------------------------------------

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        config = self._config
        if self._last_stream_id is not None and sid > self._last_stream_id:
            self._reset(sid, ErrorCode.REFUSED_STREAM)
            return
        limit = config.max_concurrent_streams
        if limit is not None and len(self._streams) >= limit:
            self._local_error_reset(sid, ErrorCode.REFUSED_STREAM)
            return
        received = event.headers or []
        problem = check_request_fields(received)
        if problem is not None:
            self._local_error_reset(sid, ErrorCode.PROTOCOL_ERROR)
            return
        method = scheme = authority = path = protocol = None
        fields: list[tuple[bytes, bytes]] = []
        content_length: bytes | None = None
        for name, value in received:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                elif name == b":scheme":
                    scheme = value
                elif name == b":protocol":
                    protocol = value
            else:
                if name == b"content-length":
                    content_length = value
                elif name == b"host" and authority is None:
                    authority = value
                fields.append((name, value))
        try:
            request = self._build_request(method, scheme, authority, path, protocol, fields)
            hint = None
            if content_length is not None:
                if not content_length.isdigit():
                    raise ValueError("invalid content-length")
                hint = SizeHint.with_exact(int(content_length))
        except (HyperError, ValueError):
            self._local_error_reset(sid, ErrorCode.PROTOCOL_ERROR)
            return
        stream = _Stream(sid)
        exchange = stream.exchange = Exchange(partial(self._write_informational, stream))
        request.extensions.insert(exchange)
        if event.stream_ended is None:
            stream.sender, request.body = Incoming.from_channel(
                max_buffer=1 << 30,  # never waited on: flow control bounds it
                size_hint=hint,
                on_consumed=partial(self._consumed, stream),
                on_release=partial(self._released, stream),
            )
            stream.request_open = True
        if request.method == "CONNECT":
            stream.pending = _attach_pending(request)
        self._streams[sid] = stream
        self._to_spawn.append((stream, request))

    def _build_request(
        self,
        method: bytes | None,
        scheme: bytes | None,
        authority: bytes | None,
        path: bytes | None,
        protocol: bytes | None,
        fields: list[tuple[bytes, bytes]],
    ) -> Request[Incoming]:
        if method is None:
            raise ValueError("no :method")
        extensions = None
        if protocol is not None:
            if not self._config.enable_connect_protocol:
                raise ValueError(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL")
            extensions = Extensions()
            extensions.insert(H2Protocol(protocol))
        if method == b"CONNECT" and protocol is None:
            if authority is None:
                raise ValueError("CONNECT without :authority")
            uri = Uri(authority)
        else:
            if path is None or scheme is None or authority is None:
                raise ValueError("missing :scheme, :path or :authority")
            uri = self._absolute_uri(scheme, authority, path)
        request: Request[Incoming] = Request.from_parts(
            Method.from_bytes(method),
            uri,
            _HTTP_2,
            Headers._from_trusted(fields),
            Incoming.empty(),
            extensions,
        )
        return request

    def _absolute_uri(self, scheme: bytes, authority: bytes, path: bytes) -> Uri:
        # A connection sees a handful of (scheme, authority) pairs: parse each
        # once and graft the path on, checked but split lazily (the codec
        # fast path of Uri), instead of parsing every request's URI in full.
        template = self._uri_templates.get((scheme, authority))
        if template is None:
            template = Uri(b"%s://%s/" % (scheme, authority))
            if len(self._uri_templates) < 16:
                self._uri_templates[scheme, authority] = template
        if path[:1] != b"/":
            return Uri(b"%s://%s%s" % (scheme, authority, path if path != b"*" else b""))
        uri = Uri._from_origin_trusted(path)
        uri._form = template._form
        uri._scheme = template._scheme
        uri._authority = template._authority
        uri._host = template._host
        uri._port = template._port
        return uri

    def _on_data(self, event: h2.events.DataReceived) -> None:
        sid = event.stream_id
        data = event.data or b""
        flow = event.flow_controlled_length or 0
        stream = self._streams.get(sid)
        sender = None if stream is None else stream.sender
        unused = flow - len(data)  # padding never reaches the application
        if self._adaptive:
            self._pinger.record_data(flow)
        if not data and event.stream_ended is None:
            self._empty_data_count += 1
            if self._empty_data_count > MAX_EMPTY_DATA_PER_SECOND:
                self._calm("empty DATA frame flood")
                return
        if sender is not None and data:
            try:
                sender.send_data_nowait(data)
            except ClosedError:
                unused = flow
        else:
            unused = flow
        if unused:
            self._ack(sid, unused)

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream.request_open = False
            if stream.sender is not None:
                stream.sender.finish()

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        stream = self._streams.get(event.stream_id)
        # A malformed trailer section makes the request malformed: a stream
        # error, and the service's body read fails instead of seeing it.
        problem = check_trailer_fields(list(event.headers or ()))
        if problem is not None:
            if stream is not None:
                self._close_stream(stream, ProtocolError(problem, error_code=1))
            self._local_error_reset(event.stream_id or 0, ErrorCode.PROTOCOL_ERROR)
            return
        if stream is not None and stream.sender is not None:
            with contextlib.suppress(ClosedError):
                stream.sender.send_trailers(Headers._from_trusted(list(event.headers or ())))

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.closed:
            return
        code = int(event.error_code or 0)
        self._close_stream(
            stream, ProtocolError(f"stream reset by the client ({code})", error_code=code)
        )
        if not stream.response_done or stream.tunnel_open:
            limit = self._config.max_pending_accept_reset_streams
            stream.reset_counted = True
            self._pending_resets += 1
            if limit is not None and self._pending_resets > limit:
                self._calm("too many streams reset by the client (rapid reset)")

    def _on_window_updated(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id == 0:
            self._wake_all_windows()
        else:
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None and stream.window_event is not None:
                stream.window_event.set()

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        self._settings_count += 1
        if self._settings_count > MAX_SETTINGS_PER_SECOND:
            self._calm("SETTINGS flood")
            return
        changed = event.changed_settings
        if SettingCodes.INITIAL_WINDOW_SIZE in changed or SettingCodes.MAX_FRAME_SIZE in changed:
            self._wake_all_windows()

    def _on_ping(self, event: h2.events.PingReceived) -> None:
        self._ping_count += 1
        if self._ping_count > MAX_PINGS_PER_SECOND:
            self._calm("PING flood")

    @property
    def stream_window(self) -> int:
        """The receive window each new stream gets, in bytes (grows when adaptive)."""
        return self._pinger.stream_window

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        if event.ping_data == _SHUTDOWN_PING:
            self._shutdown_ack.set()
        elif not self._dead:  # a window grown now would never be used
            self._pinger.on_ack(event.ping_data)

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        code = int(event.error_code or 0)
        if code != 0:
            self._dead = True
            self._error = ProtocolError(f"the client sent GOAWAY ({code})", error_code=code)
            return
        # h2 stays open (see _common): RFC 9113 section 6.8 lets streams at
        # or below last_stream_id finish, so their responses are still written.
        self._last_stream_id = self._h2.highest_inbound_stream_id
        self._shutdown_requested = True

    # -- flow control and stream bookkeeping ------------------------------------

    def _consumed(self, stream: _Stream, size: int) -> None:
        if not stream.detached:
            self._ack(stream.id, size)

    def _released(self, stream: _Stream) -> None:
        stream.sender = None  # later DATA is acknowledged and dropped

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

    def _start_shutdown(self) -> None:
        if self._dead or self._tg is None:
            return
        # Step one of RFC 9113 section 6.8: announce the shutdown without a
        # limit, with a PING; streams opened before the PING ACK comes back
        # were in flight and are still served. The PING goes first because
        # h2-based clients (httpx) fail on any frame but GOAWAY after one.
        self._h2.ping(_SHUTDOWN_PING)
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
