"""The HTTP/3 client connection: requests out on new streams, responses back.

What belongs here: :class:`ClientConfig` and :class:`H3ClientConnection`:
sending a request on its own bidirectional stream, reading the response
head, handing the body back as an :class:`~hyper_core.body.Incoming`,
GOAWAY from the server, and the sender's graceful close. The public face
is :mod:`hyper_core.client.conn.http3`.

Strategy: a request waits for QUIC stream credit in ``open_stream`` (the
server's MAX_STREAMS is the concurrency limit, as SETTINGS_MAX_CONCURRENT_STREAMS
is in HTTP/2). A ``Full`` or empty body leaves with the head in one
``send``; a streamed body is sent by a task of the connection while the
response is awaited, so a server may answer before the upload ends.
"""

from __future__ import annotations

from typing import Any, Final

import anyio
import anyio.abc

from hyper_core.body import Body, Empty, Full, Incoming
from hyper_core.error import (
    CanceledError,
    HyperError,
    ProtocolError,
    UserError,
)
from hyper_core.ext import InformationalResponse, _get_on_informational
from hyper_core.http import Headers, Request, Response, StatusCode, Version
from hyper_core.proto.h2._client_stream import RequestNotProcessedError
from hyper_core.proto.h2._common import H2Protocol, request_headers_to_h2
from hyper_core.rt import Executor
from hyper_core.rt._quic import (
    QuicConnection,
    QuicConnectionClosed,
    QuicStream,
    QuicStreamReset,
    is_unidirectional,
)
from hyper_core.upgrade import _attach_pending

from ._body import BodySource, TunnelIO, head_frame, send_message
from ._conn import H3Core
from ._frames import RESERVED_FRAME_TYPES, FrameReader, FrameType, H3Error, H3ErrorCode
from ._qpack import decode_field_section, field_section_size

__all__ = ["ClientConfig", "H3ClientConnection"]

_HTTP_3: Final = Version.HTTP_3
_TRANSPORT_ERRORS: Final = (QuicStreamReset, QuicConnectionClosed, anyio.ClosedResourceError)


class ClientConfig:
    """The options of :class:`hyper_core.client.conn.http3.Builder`, checked."""

    __slots__ = ("executor", "max_field_section_size")

    def __init__(self, *, max_field_section_size: int, executor: Executor | None) -> None:
        self.max_field_section_size = max_field_section_size
        self.executor = executor


class H3ClientConnection:
    """One HTTP/3 client connection (see the module docstring)."""

    def __init__(self, quic: QuicConnection, config: ClientConfig) -> None:
        self._quic = quic
        self._config = config
        self._core = H3Core(quic, max_field_section_size=config.max_field_section_size)
        self._core.on_goaway = self._on_goaway
        self._active = 0
        self._sender_closed = False
        self._closed: QuicConnectionClosed | None = None
        self._close_error: HyperError | None = None
        self._changed: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._running = False
        self._streams: dict[int, QuicStream] = {}
        self._rejected: dict[int, HyperError] = {}  # streams a GOAWAY left out

    # -- state ------------------------------------------------------------------

    def is_closed(self) -> bool:
        """No new request can be sent: closed, failed, GOAWAY received, or sender closed."""
        return (
            self._closed is not None
            or self._sender_closed
            or self._core.goaway_received is not None
            or self._core.error is not None
        )

    @property
    def close_error(self) -> HyperError | None:
        """Why the connection closed, if it failed."""
        return self._core.error or self._close_error

    @property
    def active_streams(self) -> int:
        """Requests in flight."""
        return self._active

    @property
    def connect_protocol_enabled(self) -> bool:
        """Whether the server's SETTINGS allow extended CONNECT (RFC 9220)."""
        return self._core.peer_enables_connect_protocol

    @property
    def running(self) -> bool:
        """Whether :meth:`run` is driving the connection."""
        return self._running

    def close_sender(self) -> None:
        """No more requests: the connection ends once the open ones are done."""
        self._sender_closed = True
        self._wake()

    def _wake(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    def _on_goaway(self, identifier: int) -> None:
        # Streams at or above the id were not (and will not be) processed.
        error = RequestNotProcessedError(
            "the server sent GOAWAY before processing the request",
            error_code=H3ErrorCode.H3_NO_ERROR,
        )
        for sid, stream in list(self._streams.items()):
            if sid >= identifier:
                stream.stop_sending(H3ErrorCode.H3_REQUEST_CANCELLED)
                stream.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
                self._streams.pop(sid, None)
                self._rejected[sid] = error
        self._wake()

    # -- driving ------------------------------------------------------------------

    async def start(self) -> None:
        """Open our control stream (the handshake's part of HTTP/3)."""
        try:
            await self._core.start()
        except _TRANSPORT_ERRORS as exc:
            raise self._core.translate(exc) from exc

    async def run(self) -> None:
        """Drive the connection until it ends (never raises the connection's errors)."""
        if self._running:
            raise UserError("the connection is already being driven")
        self._running = True
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._accept_loop)
                tg.start_soon(self._watch_closed)
                while self._closed is None:
                    if (self._sender_closed or self._core.goaway_received is not None) and (
                        self._active == 0
                    ):
                        if self._sender_closed and self._core.goaway_received is None:
                            await self._core.send_goaway(0)
                        with anyio.move_on_after(1.0):
                            await self._quic.drain()  # the GOAWAY, and any unread STOP_SENDING
                        self._core.close_gracefully()
                        break
                    self._changed = changed = anyio.Event()
                    await changed.wait()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            self._sender_closed = True
            self._quic.close(H3ErrorCode.H3_NO_ERROR, "")

    async def _watch_closed(self) -> None:
        closed = await self._quic.wait_closed()
        self._closed = closed
        self._core.settings_received.set()  # no SETTINGS will come: release the waiters
        if self._close_error is None and not self._core.closing:
            self._close_error = self._core.closed_error(closed)
        self._wake()

    async def _accept_loop(self) -> None:
        tg = self._tg
        assert tg is not None
        while True:
            try:
                stream = await self._quic.accept_stream()
            except QuicConnectionClosed:
                return
            if not is_unidirectional(stream.stream_id):
                self._core.fail(
                    H3ErrorCode.H3_STREAM_CREATION_ERROR, "server-initiated bidi stream"
                )
                return
            tg.start_soon(self._core.serve_unidirectional, stream)

    # -- sending ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.is_closed():
            cause = self.close_error
            if self._core.goaway_received is not None and cause is None:
                raise RequestNotProcessedError("the server sent GOAWAY")
            raise CanceledError("the connection is closed") from cause

    async def send(
        self, request: Request[Any], started: list[QuicStream] | None = None
    ) -> Response[Incoming]:
        """Send ``request`` on a new stream; return the response once its head arrived."""
        self._check_open()
        if self._core.peer_settings is None and H2Protocol in request.extensions:
            # RFC 9220 section 3: extended CONNECT only once the server's
            # SETTINGS said it is allowed (they may still be on their way).
            await self._core.settings_received.wait()
            self._check_open()
        fields = self._request_fields(request)
        body: Body = request.body
        if request.method == "CONNECT" and type(body) is not Empty:
            raise UserError("a CONNECT request has no body")
        try:
            stream = await self._quic.open_stream()
        except QuicConnectionClosed as exc:
            raise RequestNotProcessedError(
                "the connection closed before the request was sent"
            ) from exc
        self._check_open()
        if started is not None:
            started.append(stream)
        sid = stream.stream_id
        self._streams[sid] = stream
        self._active += 1
        try:
            return await self._exchange(stream, request, fields, body)
        except BaseException:
            self._finish(sid)
            raise

    def _finish(self, sid: int) -> None:
        if self._streams.pop(sid, None) is not None or sid in self._rejected:
            self._rejected.pop(sid, None)
        self._active -= 1
        self._wake()

    def _request_fields(self, request: Request[Any]) -> list[tuple[bytes, bytes]]:
        uri = request.uri
        headers = request.headers
        method = request.method.encode("ascii")
        authority = uri.authority
        authority_bytes = (
            authority.rpartition("@")[2].encode("ascii")  # userinfo never goes on the wire
            if authority is not None
            else headers.get_raw(b"host")
        )
        protocol = request.extensions.get(H2Protocol)
        if method == b"CONNECT" and protocol is None:
            if authority_bytes is None:
                raise UserError("a CONNECT request needs an authority")
            pseudo = [(b":method", method), (b":authority", authority_bytes)]
        else:
            if authority_bytes is None:
                raise UserError("an HTTP/3 request needs an authority (an absolute URI)")
            scheme = (uri.scheme or "https").encode("ascii")
            pseudo = [
                (b":method", method),
                (b":scheme", scheme),
                (b":authority", authority_bytes),
                (b":path", uri.path_and_query.encode("ascii") or b"/"),
            ]
            if protocol is not None:
                if method != b"CONNECT":
                    raise UserError("a :protocol extension needs the CONNECT method")
                if not self._core.peer_enables_connect_protocol:
                    raise UserError("the server did not enable extended CONNECT")
                pseudo.append((b":protocol", protocol.as_bytes()))
        fields = request_headers_to_h2(pseudo, headers)
        body = request.body
        exact = body.size_hint().exact
        if (
            exact is not None
            and headers.get_raw(b"content-length") is None
            and not (exact == 0 and method in (b"GET", b"HEAD", b"DELETE", b"CONNECT"))
        ):
            fields.append((b"content-length", str(exact).encode("ascii")))
        limit = self._core.peer_max_field_section_size
        if limit is not None and field_section_size(fields) > limit:
            raise UserError("the request's header section exceeds the server's limit")
        return fields

    async def _exchange(
        self,
        stream: QuicStream,
        request: Request[Any],
        fields: list[tuple[bytes, bytes]],
        body: Body,
    ) -> Response[Incoming]:
        head = head_frame(fields)
        sid = stream.stream_id
        is_connect = request.method == "CONNECT"
        kind = type(body)
        tg = self._tg
        try:
            if is_connect:
                await stream.send(head)
            elif kind is Empty or kind is Full or tg is None:
                await send_message(stream, head, body)
            else:
                await stream.send(head)
                tg.start_soon(self._send_body, stream, body)
            return await self._read_response(stream, request, is_connect)
        except _TRANSPORT_ERRORS as exc:
            raise self._stream_error(sid, exc) from exc
        except H3Error as exc:
            if exc.stream:
                stream.stop_sending(exc.code)
                stream.reset(exc.code)
            else:
                self._core.fail(exc.code, str(exc))
            raise ProtocolError(str(exc), error_code=int(exc.code)) from None
        except BaseException:
            # Cancelled, or the body failed: abandon the stream.
            stream.stop_sending(H3ErrorCode.H3_REQUEST_CANCELLED)
            stream.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
            raise

    def _stream_error(self, sid: int, exc: BaseException) -> HyperError:
        rejected = self._rejected.get(sid)
        if rejected is not None:
            return rejected
        if isinstance(exc, QuicStreamReset) and exc.error_code == H3ErrorCode.H3_REQUEST_REJECTED:
            return RequestNotProcessedError(
                "the server rejected the request unprocessed", error_code=exc.error_code
            )
        return self._core.translate(exc)

    async def _send_body(self, stream: QuicStream, body: Body) -> None:
        try:
            await send_message_body(stream, body)
        except _TRANSPORT_ERRORS:
            pass  # the response side sees the reset or the closed connection
        except Exception:
            stream.reset(H3ErrorCode.H3_REQUEST_CANCELLED)

    async def _read_response(
        self, stream: QuicStream, request: Request[Any], is_connect: bool
    ) -> Response[Incoming]:
        reader = FrameReader(stream)
        limit = self._config.max_field_section_size
        callback = _get_on_informational(request)
        while True:
            header = await reader.next_header()
            if header is None:
                raise H3Error(H3ErrorCode.H3_REQUEST_INCOMPLETE, "no response", stream=True)
            frame_type, length = header
            if frame_type != FrameType.HEADERS:
                if frame_type == FrameType.DATA or frame_type in RESERVED_FRAME_TYPES:
                    raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "DATA before the response head")
                if frame_type == FrameType.PUSH_PROMISE:
                    raise H3Error(H3ErrorCode.H3_ID_ERROR, "PUSH_PROMISE without MAX_PUSH_ID")
                await reader.skip()
                continue
            if length > limit:
                raise H3Error(H3ErrorCode.H3_EXCESSIVE_LOAD, "response head too large", stream=True)
            fields = decode_field_section(await reader.read_payload(), limit)
            status, headers, content_length = _parse_response(fields)
            if 100 <= status < 200:
                if callback is not None:  # else skipped, as the HTTP/2 client does
                    try:
                        callback(InformationalResponse(status, _HTTP_3, headers))
                    except Exception as exc:
                        raise UserError("the on_informational callback failed") from exc
                continue
            break
        sid = stream.stream_id
        response: Response[Incoming] = Response(
            StatusCode(status), headers=headers, version=_HTTP_3, body=Incoming.empty()
        )
        if is_connect and 200 <= status < 300:
            pending = _attach_pending(response)
            pending.fulfil(TunnelIO(stream, reader, lambda: self._finish(sid)), b"")
            return response
        if (
            request.method == "HEAD"
            or status in (204, 304)
            or (reader.at_eof() and content_length in (None, 0))
        ):
            if not reader.at_eof():
                stream.stop_sending(H3ErrorCode.H3_NO_ERROR)
            self._finish(sid)
            return response
        core = self._core
        source = BodySource(
            stream,
            reader,
            content_length=content_length,
            max_field_section_size=limit,
            translate=lambda exc: self._stream_error(sid, exc),
            on_connection_error=lambda exc: core.fail(exc.code, str(exc)),
            on_done=lambda complete: self._body_done(stream, complete),
        )
        response.body = Incoming(source)
        return response

    def _body_done(self, stream: QuicStream, complete: bool) -> None:
        if not complete:
            stream.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
        self._finish(stream.stream_id)


async def send_message_body(stream: QuicStream, body: Body) -> None:
    """The body part of :func:`send_message` (the head was sent already)."""
    await send_message(stream, b"", body)


def _parse_response(
    fields: list[tuple[bytes, bytes]],
) -> tuple[int, Headers, int | None]:
    status: int | None = None
    regular: list[tuple[bytes, bytes]] = []
    content_length: int | None = None
    for name, value in fields:
        if name[:1] == b":":
            if name != b":status" or status is not None or regular:
                raise H3Error(
                    H3ErrorCode.H3_MESSAGE_ERROR, "bad response pseudo-field", stream=True
                )
            if len(value) != 3 or not value.isdigit():
                raise H3Error(H3ErrorCode.H3_MESSAGE_ERROR, "bad :status", stream=True)
            status = int(value)
            continue
        if name == b"content-length":
            if not value.isdigit():
                raise H3Error(H3ErrorCode.H3_MESSAGE_ERROR, "bad content-length", stream=True)
            content_length = int(value)
        regular.append((name, value))
    if status is None:
        raise H3Error(H3ErrorCode.H3_MESSAGE_ERROR, "no :status", stream=True)
    if status == 101:
        raise H3Error(H3ErrorCode.H3_MESSAGE_ERROR, "101 is not allowed in HTTP/3", stream=True)
    return status, Headers._from_trusted(regular), content_length
