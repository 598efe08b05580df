"""The HTTP/2 server connection's h2 event handlers and the limits on them.

What belongs here: :class:`ServerEvents`, what the reader does with each h2
event of a read (a new request becomes a stream and its ``Request``, DATA
and trailers go to its ``Incoming`` body, resets, WINDOW_UPDATE, SETTINGS,
PING and GOAWAY), and the limits checked on the way, answered with
GOAWAY(ENHANCE_YOUR_CALM): peer resets of streams still being served
(``max_pending_accept_reset_streams``, rapid reset), resets we had to send
for the peer's errors (``max_local_error_reset_streams``), floods of
SETTINGS, PING and empty DATA frames (per-second budgets below), and a
header block spread over CONTINUATION frames beyond the header list limit.
h2 itself enforces the decoded header list size (HPACK bomb), frame sizes
and flow-control violations. The read loop that calls these, and the
connection's lifecycle, are in ``_server.py``; the stream tasks in
``_server_stream.py``.

Why a mixin of ``ServerConnection`` and not an object of its own: each
event reads and writes connection state that changes as the connection
runs (``_last_stream_id``, ``_dead``, ``_error``, ``_shutdown_requested``)
and calls the stream serving's bookkeeping; as an object of its own every
event would pay one more attribute hop (``self._conn._dead``). The reader
looks each handler up in the table :meth:`ServerEvents._handlers` builds
once per connection.

Strategy: a handler never awaits. A new stream is only recorded here and
dispatched to a worker at the end of the read that opened it (``_to_spawn``),
so one reset within the same read (rapid reset) costs no task. DATA is
pushed into the stream's ``Incoming`` without waiting (h2 flow control
bounds it to the window we granted), and window is given back only when
the application takes the data (``_consumed``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import anyio
import h2.events
import h2.exceptions
from h2.settings import SettingCodes

from hyper_core._exchange import Exchange
from hyper_core.body import Incoming, SizeHint
from hyper_core.error import CanceledError, ClosedError, HyperError, ProtocolError
from hyper_core.http import Extensions, Headers, Method, Request, Uri, Version
from hyper_core.rt import Timer
from hyper_core.upgrade import _attach_pending

from ._common import (
    ErrorCode,
    H2Protocol,
    absolute_uri,
    check_request_fields,
    check_trailer_fields,
)
from ._fast_server import H2ServerConnection
from ._ping import Pinger
from ._stream_record import _Stream

if TYPE_CHECKING:
    from ._server_config import ServerConfig

__all__ = [
    "MAX_EMPTY_DATA_PER_SECOND",
    "MAX_PINGS_PER_SECOND",
    "MAX_SETTINGS_PER_SECOND",
    "SHUTDOWN_PING",
    "ServerEvents",
]

#: Flood budgets, in frames per second of the connection's clock: more than
#: this many SETTINGS, PING or empty non-final DATA frames within one second
#: is a flood (CVE-2019-9515, CVE-2019-9512, CVE-2019-9518). Legitimate peers
#: send a handful; nginx and Go close at similar orders of magnitude.
MAX_SETTINGS_PER_SECOND: Final = 100
MAX_PINGS_PER_SECOND: Final = 100
MAX_EMPTY_DATA_PER_SECOND: Final = 1000
#: The payload of the graceful shutdown's PING (its ACK ends the first step).
SHUTDOWN_PING: Final = b"hyperGA\x01"
_HTTP_2: Final = Version.HTTP_2


class ServerEvents:
    """The h2 event handlers of ``ServerConnection``; the state they use is declared here."""

    _config: ServerConfig
    _timer: Timer
    _h2: H2ServerConnection
    _pinger: Pinger
    _adaptive: bool
    _streams: dict[int, _Stream]
    _to_spawn: list[tuple[_Stream, Request[Incoming]]]
    _uri_templates: dict[tuple[bytes, bytes], Uri]
    _error: HyperError | None
    _dead: bool
    _last_stream_id: int | None
    _shutdown_requested: bool
    _shutdown_ack: anyio.Event
    _pending_resets: int
    _local_resets: int
    _flood_epoch: float
    _settings_count: int
    _ping_count: int
    _empty_data_count: int
    # Defined by StreamServing (_server_stream.py) and ServerConnection.
    _ack: Callable[[int, int], None]
    _reset: Callable[[int, ErrorCode], None]
    _wake_all_windows: Callable[[], None]
    _write_informational: Callable[..., Any]
    _fail: Callable[[HyperError], None]

    def _handlers(self) -> dict[type[h2.events.Event], Callable[[Any], None]]:
        """The handler of each h2 event the server acts on, for the read loop."""
        return {
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

    # -- events ------------------------------------------------------------------

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
            uri = absolute_uri(self._uri_templates, scheme, authority, path)
        request: Request[Incoming] = Request.from_parts(
            Method.from_bytes(method),
            uri,
            _HTTP_2,
            Headers._from_trusted(fields),
            Incoming.empty(),
            extensions,
        )
        return request

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

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        if event.ping_data == SHUTDOWN_PING:
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

    # -- stream bookkeeping ------------------------------------------------------

    def _consumed(self, stream: _Stream, size: int) -> None:
        if not stream.detached:
            self._ack(stream.id, size)

    def _released(self, stream: _Stream) -> None:
        stream.sender = None  # later DATA is acknowledged and dropped

    def _close_stream(self, stream: _Stream, error: HyperError) -> None:
        stream.closed = True
        if stream.report is not None:
            stream.report.fail(error)
        if stream.exchange is not None and not stream.response_done:
            stream.exchange.client_gone()
        if stream.sender is not None:
            stream.sender.abort(error)
        if stream.pending is not None:
            stream.pending.fail(CanceledError("the stream was reset before the upgrade"))
        if stream.scope is not None:
            stream.scope.cancel()
        if stream.window_event is not None:
            stream.window_event.set()

    # -- limits ------------------------------------------------------------------

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

    def _local_error_reset(self, sid: int, code: ErrorCode) -> None:
        self._reset(sid, code)
        self._local_resets += 1
        limit = self._config.max_local_error_reset_streams
        if limit is not None and self._local_resets > limit:
            self._calm("too many streams reset for client errors")

    def _calm(self, why: str) -> None:
        """Close the connection with GOAWAY(ENHANCE_YOUR_CALM): an abusive peer."""
        if self._dead:
            return
        with contextlib.suppress(h2.exceptions.H2Error):
            self._h2.close_connection(ErrorCode.ENHANCE_YOUR_CALM, why.encode("ascii"))
        self._fail(ProtocolError(why, error_code=int(ErrorCode.ENHANCE_YOUR_CALM)))
