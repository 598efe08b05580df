"""The HTTP/3 server connection: requests from request streams, to a service.

What belongs here: :class:`ServerConfig` and :class:`H3ServerConnection`:
accepting the client's streams, reading each request's head, calling the
service, writing the response, limits, idle timeout and graceful shutdown
(GOAWAY). The public face is :mod:`hyper_core.server.conn.http3`.

Strategy: QUIC already multiplexes and flow-controls each stream, so each
request stream is simply served by its own task, end to end: read the
HEADERS frame (bounded by ``header_read_timeout`` and
``max_field_section_size``), call the service, write the response frames.
The request body is an :class:`~hyper_core.body.Incoming` reading the same
stream on demand (see ``_body``). Graceful shutdown sends GOAWAY with the
first stream id not yet accepted; later streams are rejected with
H3_REQUEST_REJECTED (the client may retry them elsewhere), earlier ones
finish, then the connection closes with H3_NO_ERROR.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING, Any, Final, cast

import anyio
import anyio.abc

from hyper_core._exchange import Exchange
from hyper_core.body import Empty, Incoming
from hyper_core.error import CanceledError, HyperError, ProtocolError, TimeoutError, UserError
from hyper_core.http import Extensions, Headers, Method, Request, Response, Uri, Version
from hyper_core.proto._date import http_date
from hyper_core.proto.h2._common import (
    H2Protocol,
    absolute_uri,
    check_request_fields,
    response_headers_to_h2,
)
from hyper_core.rt import Executor, Timer
from hyper_core.rt._quic import (
    QuicConnection,
    QuicConnectionClosed,
    QuicStream,
    QuicStreamReset,
    is_unidirectional,
)
from hyper_core.upgrade import _attach_pending, _Pending

from ._body import BodySource, TunnelIO, head_frame, send_message
from ._conn import H3Core
from ._frames import RESERVED_FRAME_TYPES, FrameReader, FrameType, H3Error, H3ErrorCode
from ._qpack import decode_field_section

if TYPE_CHECKING:
    from hyper_core.service import Service

__all__ = ["H3ServerConnection", "ServerConfig"]

_HTTP_3: Final = Version.HTTP_3
_NO_BODY_STATUS: Final = frozenset({204, 304})
#: Seconds a graceful close waits for the client to acknowledge the last responses.
DRAIN_TIMEOUT: Final = 10.0
_TRANSPORT_ERRORS: Final = (QuicStreamReset, QuicConnectionClosed, anyio.ClosedResourceError)


class ServerConfig:
    """The options of :class:`hyper_core.server.conn.http3.Builder`, checked."""

    __slots__ = (
        "auto_date_header",
        "enable_connect_protocol",
        "executor",
        "header_read_timeout",
        "idle_timeout",
        "max_concurrent_streams",
        "max_field_section_size",
        "timer",
    )

    timer: Timer
    executor: Executor | None
    max_concurrent_streams: int | None
    max_field_section_size: int
    idle_timeout: float | None
    header_read_timeout: float | None
    enable_connect_protocol: bool
    auto_date_header: bool

    def __init__(self, **options: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, options[name])


class _Reject(Exception):
    """Internal: answer the request with ``status`` and stop reading it."""

    def __init__(self, status: int) -> None:
        self.status = status


class H3ServerConnection:
    """Serves one HTTP/3 connection (see the module docstring)."""

    def __init__(self, quic: QuicConnection, service: Service[Any], config: ServerConfig) -> None:
        self._quic = quic
        self._service = service
        self._config = config
        self._timer = config.timer
        self._core = H3Core(
            quic,
            max_field_section_size=config.max_field_section_size,
            enable_connect_protocol=config.enable_connect_protocol,
        )
        self._active = 0  # request streams (and tunnels) being served
        self._next_stream_id = 0  # the first client stream id not yet accepted
        self._goaway_id: int | None = None
        self._shutdown_requested = False
        self._changed: anyio.Event | None = None
        self._closed: QuicConnectionClosed | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._uri_templates: dict[tuple[bytes, bytes], Uri] = {}

    # -- public surface -----------------------------------------------------------

    def graceful_shutdown(self) -> None:
        """Send GOAWAY; finish the requests accepted so far, then close."""
        if not self._shutdown_requested:
            self._shutdown_requested = True
            self._wake()

    async def run(self) -> None:
        """Serve until the connection ends; raise a HyperError if it ended abnormally."""
        try:
            started = True
            try:
                await self._core.start()
            except _TRANSPORT_ERRORS:
                started = False  # closed before our SETTINGS could be sent
            if started:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    tg.start_soon(self._accept_loop)
                    tg.start_soon(self._watch_closed)
                    await self._supervise()
                    tg.cancel_scope.cancel()
            else:
                self._closed = await self._quic.wait_closed()
        finally:
            self._tg = None
            self._quic.close(H3ErrorCode.H3_NO_ERROR, "")  # never waits
        error = self._core.error
        closed = self._closed
        if error is None and closed is not None and not self._core.closing:
            if closed.timed_out:
                error = TimeoutError("the QUIC connection timed out")
            elif closed.by_peer and closed.error_code not in (0, H3ErrorCode.H3_NO_ERROR):
                error = ProtocolError(
                    f"the client closed the connection (error code 0x{closed.error_code:x})",
                    error_code=closed.error_code,
                )
        if error is not None:
            raise error

    # -- lifecycle ------------------------------------------------------------------

    def _wake(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    async def _watch_closed(self) -> None:
        self._closed = await self._quic.wait_closed()
        self._wake()

    async def _supervise(self) -> None:
        """Wait for the end: closed, shut down and drained, or idle too long."""
        timer = self._timer
        idle = self._config.idle_timeout
        while self._closed is None:
            if self._shutdown_requested and self._goaway_id is None:
                self._goaway_id = self._next_stream_id
                await self._core.send_goaway(self._goaway_id)
            if self._goaway_id is not None and self._active == 0:
                # Responses may still be in flight: closing would drop them.
                with anyio.move_on_after(DRAIN_TIMEOUT):
                    await self._quic.drain()
                self._core.close_gracefully()
                return
            self._changed = changed = anyio.Event()
            if idle is None or self._active:
                await changed.wait()
                continue
            with timer.deadline(timer.now() + idle) as deadline:
                await changed.wait()
            if deadline.expired and self._active == 0:
                # Idle: say goodbye with GOAWAY as RFC 9114 section 5.2 asks.
                self._shutdown_requested = True

    async def _accept_loop(self) -> None:
        quic = self._quic
        tg = self._tg
        assert tg is not None
        limit = self._config.max_concurrent_streams
        while True:
            try:
                stream = await quic.accept_stream()
            except QuicConnectionClosed:
                return
            sid = stream.stream_id
            if is_unidirectional(sid):
                tg.start_soon(self._core.serve_unidirectional, stream)
                continue
            stream = cast("QuicStream", stream)
            if sid % 4 != 0:
                self._core.fail(
                    H3ErrorCode.H3_STREAM_CREATION_ERROR, "server-initiated bidi stream"
                )
                return
            if (self._goaway_id is not None and sid >= self._goaway_id) or (
                limit is not None and self._active >= limit
            ):
                # Not processed: the client may retry it (RFC 9114 section 4.1.1).
                stream.stop_sending(H3ErrorCode.H3_REQUEST_REJECTED)
                stream.reset(H3ErrorCode.H3_REQUEST_REJECTED)
                continue
            self._next_stream_id = max(self._next_stream_id, sid + 4)
            self._active += 1
            executor = self._config.executor
            if executor is None:
                tg.start_soon(self._serve_stream, stream)
            else:
                executor.spawn(self._serve_stream, stream)

    def _stream_done(self) -> None:
        self._active -= 1
        self._wake()

    # -- one request ----------------------------------------------------------------

    async def _serve_stream(self, stream: QuicStream) -> None:
        tunnel = False
        try:
            tunnel = await self._serve_request(stream)
        finally:
            if not tunnel:
                self._stream_done()

    async def _serve_request(self, stream: QuicStream) -> bool:
        """Serve one request stream; return True when it became a tunnel (still open)."""
        reader = FrameReader(stream)
        try:
            request = await self._read_head(stream, reader)
        except H3Error as exc:
            self._stream_error(stream, exc)
            return False
        except _Reject as reject:
            await self._reject(stream, reject.status)
            return False
        except _TRANSPORT_ERRORS:
            return False
        if request is None:
            return False
        pending = _attach_pending(request) if request.method == "CONNECT" else None
        state = _ExchangeState()
        exchange = Exchange(partial(self._write_informational, stream, state))
        request.extensions.insert(exchange)
        notify_abort = getattr(stream, "notify_abort", None)
        tunnel = False
        try:
            with anyio.CancelScope() as scope:
                if notify_abort is not None:
                    # The client abandoned the request (as HTTP/2's RST_STREAM):
                    # the service hears of it and is cancelled.
                    notify_abort(partial(_abandoned, exchange, scope))
                tunnel = await self._respond(stream, reader, request, pending, state)
            if scope.cancelled_caught:
                stream.stop_sending(H3ErrorCode.H3_REQUEST_CANCELLED)
                stream.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
            return tunnel
        finally:
            if notify_abort is not None:
                notify_abort(None)
            exchange.finish()
            if pending is not None and not pending.resolved:
                pending.fail(CanceledError("the response was not an upgrade"))

    async def _respond(
        self,
        stream: QuicStream,
        reader: FrameReader,
        request: Request[Incoming],
        pending: _Pending | None,
        state: _ExchangeState,
    ) -> bool:
        """Call the service and write its response; True when it became a tunnel."""
        try:
            response = await self._service(request)
        except Exception as exc:
            state.head_started = True
            await self._service_failed(stream, exc, headers_sent=False)
            return False
        status = int(response.status)
        state.head_started = True
        try:
            if status < 200:
                raise UserError(f"a service cannot return an informational status ({status})")
            head = head_frame(self._response_fields(request, response))
            if pending is not None and 200 <= status < 300:
                await stream.send(head)
                pending.fulfil(TunnelIO(stream, reader, self._stream_done), b"")
                return True
            body = response.body
            if request.method == "HEAD" or status in _NO_BODY_STATUS:
                await body.aclose()
                body = Empty()
            await send_message(stream, head, body)
        except _TRANSPORT_ERRORS:
            return False
        except Exception as exc:
            await self._service_failed(stream, exc, headers_sent=True)
            return False
        if not reader.at_eof():
            # RFC 9114 section 4.1: the response is complete; the rest of the
            # request body is not wanted.
            stream.stop_sending(H3ErrorCode.H3_NO_ERROR)
        return False

    async def _read_head(self, stream: QuicStream, reader: FrameReader) -> Request[Incoming] | None:
        timeout = self._config.header_read_timeout
        if timeout is None:
            fields = await self._read_fields(reader)
        else:
            timer = self._timer
            with timer.deadline(timer.now() + timeout) as deadline:
                fields = await self._read_fields(reader)
            if deadline.expired:
                raise H3Error(H3ErrorCode.H3_REQUEST_INCOMPLETE, "header read timeout", stream=True)
        if fields is None:
            return None
        problem = check_request_fields(fields)
        if problem is not None:
            raise H3Error(H3ErrorCode.H3_MESSAGE_ERROR, problem, stream=True)
        return self._build_request(stream, reader, fields)

    async def _read_fields(self, reader: FrameReader) -> list[tuple[bytes, bytes]] | None:
        limit = self._config.max_field_section_size
        while True:
            header = await reader.next_header()
            if header is None:
                return None  # the client gave up before its request: nothing to answer
            frame_type, length = header
            if frame_type == FrameType.HEADERS:
                if length > limit:
                    await reader.skip()
                    raise _Reject(431)
                try:
                    return decode_field_section(await reader.read_payload(), limit)
                except H3Error as exc:
                    if exc.code == H3ErrorCode.H3_EXCESSIVE_LOAD:
                        raise _Reject(431) from None
                    raise
            if (
                frame_type == FrameType.DATA
                or frame_type in RESERVED_FRAME_TYPES
                or frame_type
                in (
                    FrameType.SETTINGS,
                    FrameType.GOAWAY,
                    FrameType.MAX_PUSH_ID,
                    FrameType.CANCEL_PUSH,
                    FrameType.PUSH_PROMISE,
                )
            ):
                raise H3Error(
                    H3ErrorCode.H3_FRAME_UNEXPECTED, f"frame 0x{frame_type:x} before HEADERS"
                )
            await reader.skip()

    def _build_request(
        self, stream: QuicStream, reader: FrameReader, received: list[tuple[bytes, bytes]]
    ) -> Request[Incoming]:
        method = scheme = authority = path = protocol = None
        fields: list[tuple[bytes, bytes]] = []
        content_length: int | None = None
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
                else:
                    protocol = value
                continue
            if name == b"content-length":
                if not value.isdigit() or (
                    content_length is not None and int(value) != content_length
                ):
                    raise H3Error(
                        H3ErrorCode.H3_MESSAGE_ERROR, "invalid content-length", stream=True
                    )
                content_length = int(value)
            elif name == b"host" and authority is None:
                authority = value
            fields.append((name, value))
        assert method is not None  # check_request_fields
        extensions = None
        if protocol is not None:
            if not self._config.enable_connect_protocol:
                raise H3Error(H3ErrorCode.H3_MESSAGE_ERROR, ":protocol not enabled", stream=True)
            extensions = Extensions()
            extensions.insert(H2Protocol(protocol))
        try:
            if method == b"CONNECT" and protocol is None:
                assert authority is not None
                uri = Uri(authority)
            else:
                assert scheme is not None
                assert authority is not None
                assert path is not None
                uri = absolute_uri(self._uri_templates, scheme, authority, path)
            method_value = Method.from_bytes(method)
        except (HyperError, ValueError) as exc:
            raise H3Error(
                H3ErrorCode.H3_MESSAGE_ERROR, f"bad request target: {exc}", stream=True
            ) from None
        request: Request[Incoming] = Request.from_parts(
            method_value, uri, _HTTP_3, Headers._from_trusted(fields), Incoming.empty(), extensions
        )
        if not (reader.at_eof() and content_length in (None, 0)):
            core = self._core
            source = BodySource(
                stream,
                reader,
                content_length=content_length,
                max_field_section_size=self._config.max_field_section_size,
                translate=core.translate,
                on_connection_error=lambda exc: core.fail(exc.code, str(exc)),
                on_done=_ignore,
            )
            request.body = Incoming(source)
        return request

    def _response_fields(
        self, request: Request[Incoming], response: Response[Any]
    ) -> list[tuple[bytes, bytes]]:
        status = int(response.status)
        headers = response.headers
        fields = response_headers_to_h2(status, headers)
        if self._config.auto_date_header and headers.get_raw(b"date") is None:
            fields.append((b"date", http_date()))
        exact = response.body.size_hint().exact
        if (
            exact is not None
            and status not in _NO_BODY_STATUS
            and headers.get_raw(b"content-length") is None
            and not (exact == 0 and request.method == "HEAD")
        ):
            fields.append((b"content-length", str(exact).encode("ascii")))
        return fields

    async def _write_informational(
        self,
        stream: QuicStream,
        state: _ExchangeState,
        status: int,
        fields: list[tuple[bytes, bytes]],
    ) -> None:
        # Called by the service (ext.send_informational) while it runs: a
        # HEADERS frame with a 1xx status before the final one (RFC 9114 section 4.1).
        if state.head_started:
            raise UserError("the final response has started")
        frame = head_frame(response_headers_to_h2(status, Headers._from_trusted(fields)))
        try:
            await stream.send(frame)
        except _TRANSPORT_ERRORS as exc:
            raise UserError(f"cannot send an informational response: {exc}") from exc

    # -- failures -------------------------------------------------------------------

    def _stream_error(self, stream: QuicStream, exc: H3Error) -> None:
        if exc.stream:
            stream.stop_sending(exc.code)
            stream.reset(exc.code)
        else:
            self._core.fail(exc.code, str(exc))

    async def _reject(self, stream: QuicStream, status: int) -> None:
        fields = response_headers_to_h2(status, Headers._from_trusted([]))
        with contextlib.suppress(*_TRANSPORT_ERRORS):
            await stream.send(head_frame(fields))
            await stream.send_eof()
        stream.stop_sending(H3ErrorCode.H3_NO_ERROR)

    async def _service_failed(
        self, stream: QuicStream, exc: Exception, *, headers_sent: bool
    ) -> None:
        code = H3ErrorCode.H3_INTERNAL_ERROR
        if isinstance(exc, ProtocolError) and exc.error_code is not None:
            with contextlib.suppress(ValueError):
                code = H3ErrorCode(exc.error_code)
        if code is H3ErrorCode.H3_INTERNAL_ERROR and not headers_sent:
            await self._reject(stream, 500)  # as hyper: a plain 500 when nothing was sent
            return
        stream.stop_sending(code)
        stream.reset(code)


def _ignore(_complete: bool) -> None:
    pass


class _ExchangeState:
    """Per request: whether the final response head has started (1xx are too late then)."""

    __slots__ = ("head_started",)

    def __init__(self) -> None:
        self.head_started = False


def _abandoned(exchange: Exchange, scope: anyio.CancelScope) -> None:
    exchange.client_gone()
    scope.cancel()
