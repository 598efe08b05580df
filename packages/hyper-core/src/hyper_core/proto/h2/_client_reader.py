"""The HTTP/2 client's reading half: the reader task and the h2 events.

What belongs here: :class:`ClientReader`, which feeds every received byte
to h2 and acts on the events of a read: response heads (and 1xx) for the
waiting ``send``, DATA and trailers into the response bodies, the end of a
stream, WINDOW_UPDATE and SETTINGS waking the senders, RST_STREAM and
GOAWAY failing the streams they name, PING ACKs for the pinger. It
subclasses :class:`~hyper_core.proto.h2._client_stream.StreamSending` (the
per-stream sending half) and is subclassed by
:class:`~hyper_core.proto.h2._client.ClientConnection`.

Strategy: one reader task, no lock (h2 is changed only between awaits).
DATA is pushed into the stream's ``IncomingSender`` without waiting, and
its window is given back only when the application reads it; the events
of one read are dispatched by their exact type, most frequent first, and
the writer is woken only when h2 has something to answer.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

import anyio
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from hyper_core import upgrade
from hyper_core.body import Incoming, SizeHint
from hyper_core.error import (
    CanceledError,
    ClosedError,
    HyperError,
    IncompleteMessageError,
    ProtocolError,
)
from hyper_core.ext import InformationalResponse
from hyper_core.http import Headers, Response, StatusCode, Version
from hyper_core.http._status import _BY_CODE
from hyper_core.proto.h2._client_encode import _split_head
from hyper_core.proto.h2._client_stream import RequestNotProcessedError, StreamSending
from hyper_core.proto.h2._stream_io import H2StreamIO
from hyper_core.rt import receive_or_eof

__all__ = ["ClientReader"]

_SETTINGS = h2.settings.SettingCodes
# Bytes asked from the IO per read.
_READ_SIZE: Final = 65_536


class ClientReader(StreamSending):
    """The reader task and the h2 events it dispatches (see the module docstring)."""

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

    # ----------------------------------------------------------------- GOAWAY

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
