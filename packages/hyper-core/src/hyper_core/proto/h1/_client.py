"""The HTTP/1 client dispatcher: one connection, one request at a time.

What belongs here: :class:`ClientDispatcher`, the sender's side of the
HTTP/1 client: ``send`` (``ready``, ``close_sender``), writing the request
and its body, and reading the response head into a ``Response``. Its base
class :class:`~._client_io.ClientIO` holds the connection's state, the
reads and the connection task; :class:`~._client_body.ResponseBodySource`
is the source behind the ``Incoming`` body of a response, and
:class:`~._client_config.ClientConfig` the checked options. These are the
only code of the HTTP/1 client that awaits I/O. The public face
(``handshake``, ``SendRequest``, ``Connection``) is
:mod:`hyper_core.client.conn.http1`; all protocol rules (framing,
keep-alive, upgrades) are the codec's.

Strategy:

* No task and no channel per request. ``send_request`` writes the request
  head in the caller's task (with a ``Full`` or empty body: one codec call,
  one ``send``), then reads the response head in the same task.
* Reads are done by whichever task needs bytes, one at a time, through the
  IO's receive-watch capability (the IO's own or a ``ReceiveWatcher``),
  whose callback watches the idle connection: one read path, see
  ``_client_io.py``.
* A response body that arrived whole with its head (the usual small
  response) is taken from the codec before ``send_request`` returns: the
  exchange is then over and the connection ready for the next request
  while the application still reads the body from memory, as hyper's
  dispatcher does once it has read a body off the wire. A body still on
  the wire is pulled by its reader.
* A streamed request body is written by a task in the connection's task
  group, so the response can arrive and be read while the body is still
  going out (early answers, full-duplex streams). Each write is awaited:
  backpressure reaches the body's producer.
* An error goes to whoever waits for the exchange: ``send_request`` before
  the response head, the reader of the body after it. Every error, and every
  cancellation of ``send_request``, closes the connection: an HTTP/1 byte
  stream cannot be trusted after one. The connection task itself never
  raises them; it ends, and ``ready()`` then says why.
* One object, two classes (a base class, not a helper object): a call or a
  slot read on the request path costs the same whichever module defines it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final, final

import anyio

from hyper_core._caused import caused
from hyper_core._write_report import WriteReport, report_of
from hyper_core.body import Body, Frame, Full, Incoming
from hyper_core.error import (
    BodyWriteAbortedError,
    CanceledError,
    ClosedError,
    HyperError,
    IncompleteMessageError,
    ParseError,
    UserError,
)
from hyper_core.ext import (
    HeaderCaseMap,
    InformationalResponse,
    ReasonPhrase,
    _get_on_informational,
)
from hyper_core.http import Extensions, Headers, Request, Response, StatusCode, Version
from hyper_core.http._status import _BY_CODE
from hyper_core.upgrade import _attach_pending

from ._client_body import ResponseBodySource
from ._client_io import _CLOSED, _IDLE, _IO_ERRORS, _UPGRADED, ClientIO, _Exchange
from ._codec import CodecState
from ._events import NEED_DATA, ConnectionClosed, Data, EndOfMessage, RequestHead, ResponseHead

__all__ = ["ClientDispatcher"]

_SWITCHED: Final = CodecState.SWITCHED_PROTOCOL
_HTTP_10: Final = Version.HTTP_10
_HTTP_11: Final = Version.HTTP_11
_VERSIONS: Final = {b"1.0": _HTTP_10, b"0.9": Version.HTTP_09}
_reasons: dict[int, bytes] = {}
_METHOD_BYTES: Final = {
    method: method.encode("ascii")
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
}


def _canonical_reason(status: int) -> bytes:
    reason = _reasons.get(status)
    if reason is None:
        reason = _reasons[status] = StatusCode(status).reason.encode("latin-1")
    return reason


def _not_written_whole() -> ClosedError:
    """What a request body's report fails with when its writing stopped early."""
    return ClosedError("the request body was not written whole")


@final
class ClientDispatcher(ClientIO):
    """Drives one HTTP/1 client connection (see the module docstring)."""

    __slots__ = ()

    # -- the sender's side ----------------------------------------------------

    def is_ready(self) -> bool:
        """Whether a request can be sent now."""
        return self._state is _IDLE and not self._sender_closed

    def is_closed(self) -> bool:
        """Whether the connection can never send another request."""
        state = self._state
        return state is _CLOSED or state is _UPGRADED or self._sender_closed

    async def ready(self) -> None:
        """Wait until a request can be sent.

        Raises:
            ClosedError: the connection is closed (``__cause__`` says why).
        """
        while True:
            state = self._state
            if self._sender_closed or state is _CLOSED or state is _UPGRADED:
                raise self._closed_error()
            if state is _IDLE:
                return
            await self._wait_changed()

    def close_sender(self) -> None:
        """No more requests: close once the one in flight is done."""
        if self._sender_closed:
            return
        self._sender_closed = True
        self._wake_driver()
        self._notify()

    async def send(
        self, request: Request[Any], started: list[_Exchange] | None = None
    ) -> Response[Incoming]:
        """Write ``request`` and return its response once the head is read.

        Args:
            request: The request.
            started: If given, the exchange is appended to it once the
                request is accepted, so a caller can tell afterwards whether
                writing had started (``try_send_request``).

        Raises:
            CanceledError: the connection was not ready (nothing written).
            HyperError: the exchange failed; the connection is closed.
        """
        if not self._started:
            await self._serving.wait()
        if self._state is not _IDLE or self._sender_closed:
            raise caused(
                CanceledError("connection was not ready"), self._close_error
            ) from self._close_error
        exchange = _Exchange()
        if started is not None:
            started.append(exchange)
        self._begin(exchange)
        report = report_of(request)
        try:
            await self._write_request(exchange, request, report)
            # A close interrupts the read itself (see ClientIO._close): no scope.
            return await self._read_head(exchange, request)
        except BaseException as exc:
            if report is not None:  # ext.on_write: a no-op once the request was written
                report.fail(exc)
            # Part of the exchange may be on the wire: the stream is lost.
            if self._exchange is exchange:
                if isinstance(exc, HyperError):
                    self._close(exc)
                elif isinstance(exc, Exception):  # raised by the request's body
                    failure = UserError("sending the request failed")
                    failure.__cause__ = exc
                    self._close(failure)
                else:  # cancelled
                    self._close(CanceledError("the request was cancelled"))
            raise

    # -- writing --------------------------------------------------------------

    def _request_head(self, request: Request[Any]) -> RequestHead:
        fields = request.headers.raw()
        if self._config.preserve_header_case:
            case_map = request.extensions.get(HeaderCaseMap)
            if case_map is not None:
                fields = case_map.apply(fields)
        # HTTP/2 and later requests are written as HTTP/1.1 (hyper does the same).
        version = b"1.0" if request.version is _HTTP_10 else b"1.1"
        uri = request.uri
        if uri is self._last_uri:
            # A pooled client sends the same Uri object again and again.
            target = self._last_target
        else:
            target = str(uri).encode("ascii")
            self._last_uri = uri
            self._last_target = target
        method = request.method
        return RequestHead(
            _METHOD_BYTES.get(method) or method.encode("ascii"), target, version, fields
        )

    async def _write_request(
        self, exchange: _Exchange, request: Request[Any], report: WriteReport | None
    ) -> None:
        codec = self._codec
        head = self._request_head(request)
        body: Body = request.body
        if report is None and (type(body) is Full or body.is_end_stream()):
            data = codec.send_message(head, body.data if type(body) is Full else b"")
            exchange.written = True
            await self._send_bytes(data)
            exchange.request_done = True
            if type(body) is not Full:
                await body.aclose()
            return
        head_bytes = codec.send_head(head, body.size_hint().exact)
        exchange.written = True
        await self._send_bytes(head_bytes)
        if report is not None:  # ext.on_write: a reported request is always written so
            report.head(len(head_bytes))
        if not codec.our_body_allowed:
            # GET, HEAD, CONNECT and HTTP/1.0 requests of unknown length
            # carry no body (hyper's rule); the body is dropped unread.
            codec.send_end()
            exchange.request_done = True
            await body.aclose()
            if report is not None:
                report.finish()
            return
        tg = self._tg
        if tg is None or self._exchange is not exchange:
            raise exchange.error or self._closed_error()
        self._children = True
        tg.start_soon(self._write_body, exchange, body, report)

    async def _send_bytes(self, data: bytes) -> None:
        try:
            await self._io.send(data)
        except _IO_ERRORS as exc:
            self._codec.send_failed()
            raise caused(ClosedError("connection closed while writing the request"), exc) from exc

    async def _write_body(
        self, exchange: _Exchange, body: Body, report: WriteReport | None = None
    ) -> None:
        """Stream a request body (a task of the connection's task group)."""
        # The cleanup awaits, so it runs in an except block and after the
        # try, not in a finally: compiled, an await in a finally that an
        # exception runs through can re-raise another task's error
        # (mypyc/mypyc#1114).
        try:
            failure = await self._write_frames(exchange, body, report)
        except BaseException as exc:
            await self._body_written(body, report, _not_written_whole())
            raise exc
        await self._body_written(body, report, failure)

    async def _write_frames(
        self, exchange: _Exchange, body: Body, report: WriteReport | None
    ) -> BaseException:
        """Write ``body``'s frames; return what a report that did not finish fails with."""
        codec = self._codec
        send_chunks = self._send_chunks
        failure: BaseException = _not_written_whole()
        try:
            while True:
                try:
                    frame = await body.frame()
                except Exception as exc:
                    raise caused(UserError("the request body failed"), exc) from exc
                if frame is None:
                    await self._end_body(None)
                    if report is not None:
                        report.finish()
                    break
                data = frame.data_ref
                if data is not None:
                    chunks = codec.send_data(data)
                    if body.is_end_stream():
                        chunks.append(self._end_bytes(None))
                        await send_chunks(chunks)
                        if report is not None:
                            report.data(len(data))
                            report.finish()
                        break
                    if chunks:
                        await send_chunks(chunks)
                        if report is not None:
                            report.data(len(data))
                    continue
                trailers = frame.trailers_ref
                if trailers is not None:
                    await self._end_body(trailers.raw())
                    if report is not None:
                        report.finish()
                    break
                # Frames of kinds HTTP/1 has no use for are skipped.
        except _IO_ERRORS as exc:
            # The server closed or reset: it may still have answered (an
            # early 413, say), so the response is read on; the connection is
            # not reused.
            codec.send_failed()
            failure.__cause__ = exc
        except HyperError as exc:
            codec.send_failed()
            self._close(exc)
            return exc
        except Exception as exc:  # the body's is_end_stream() or a frame was bad
            codec.send_failed()
            failure = UserError("the request body failed")
            failure.__cause__ = exc
            self._close(failure)
            return failure
        if self._exchange is exchange:
            exchange.request_done = True
            self._maybe_finish(exchange)
        return failure

    @staticmethod
    async def _body_written(body: Body, report: WriteReport | None, failure: BaseException) -> None:
        if report is not None:
            report.fail(failure)  # a no-op once finished
        # A body that fails to close must not take the connection task (and
        # the caller's task group) down with it.
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await body.aclose()

    def _end_bytes(self, trailers: list[tuple[bytes, bytes]] | None) -> bytes:
        try:
            return self._codec.send_end(trailers)
        except UserError as exc:
            raise caused(
                BodyWriteAbortedError("the request body ended before its Content-Length"), exc
            ) from exc

    async def _end_body(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        end = self._end_bytes(trailers)
        if end:
            await self._io.send(end)

    # -- the response ---------------------------------------------------------

    async def _read_head(self, exchange: _Exchange, request: Request[Any]) -> Response[Incoming]:
        codec = self._codec
        informational = 0
        while True:
            event = codec.next_event()
            if event is NEED_DATA:
                try:
                    await self._read_more()
                except ClosedError:
                    raise exchange.error or self._closed_error()  # noqa: B904 (keep its own cause)
                continue
            if type(event) is ResponseHead:
                if event.status < 200 and codec.their_state is not _SWITCHED:
                    informational += 1
                    limit = self._config.max_informational
                    if limit is not None and informational > limit:
                        raise ParseError(
                            f"more than {limit} informational (1xx) responses before the "
                            "final response (max_informational_responses)",
                            status_hint=None,
                        )
                    self._informational(request, event)
                    continue
                return self._response(exchange, event)
            if type(event) is ConnectionClosed:
                raise IncompleteMessageError("connection closed before the response head")
            raise ParseError(f"unexpected {event!r} before the response head", status_hint=None)

    def _informational(self, request: Request[Any], head: ResponseHead) -> None:
        callback = _get_on_informational(request)
        if callback is None:
            return
        version = _HTTP_10 if head.version == b"1.0" else _HTTP_11
        try:
            callback(
                InformationalResponse(head.status, version, Headers._from_trusted(head.headers))
            )
        except Exception as exc:
            raise caused(UserError("the on_informational callback failed"), exc) from exc

    def _response(self, exchange: _Exchange, head: ResponseHead) -> Response[Incoming]:
        codec = self._codec
        status = head.status
        extensions: Extensions | None = None
        if head.reason != _canonical_reason(status):
            extensions = Extensions()
            extensions.insert(ReasonPhrase._from_trusted(head.reason))
        if self._config.preserve_header_case:
            if extensions is None:
                extensions = Extensions()
            extensions.insert(HeaderCaseMap.from_fields(head.headers))
        version = _HTTP_11 if head.version == b"1.1" else _VERSIONS[head.version]
        headers = Headers._from_trusted(head.headers)
        code = _BY_CODE.get(status) or StatusCode(status)
        exchange.head_delivered = True
        if codec.their_state is _SWITCHED:
            response = Response.from_parts(code, version, headers, Incoming.empty(), extensions)
            self._pending_upgrade = _attach_pending(response)
            exchange.response_done = True
            self._exchange = None
            self._state = _UPGRADED
            self._watch(None)
            self._wake_driver()
            self._notify()
            return response
        if codec.their_body_length == 0:
            # No body (HEAD, 204, 304, Content-Length: 0): finish now, so the
            # connection is ready again before send_request returns.
            codec.next_event()  # the EndOfMessage
            body = Incoming.empty()
            response = Response.from_parts(code, version, headers, body, extensions)
            self._response_finished(exchange)
            return response
        body = Incoming(self._body_source(exchange))
        return Response.from_parts(code, version, headers, body, extensions)

    def _body_source(self, exchange: _Exchange) -> ResponseBodySource:
        """The body's source, holding the part of the body already buffered.

        Every frame the codec can produce without reading is taken now; when
        that reaches the end, the exchange is finished before the response
        is returned. A parse error is kept for the reader, who would have
        met it at this point of the body.
        """
        codec = self._codec
        length_known = codec.their_body_length is not None
        frames: list[Frame] = []
        error: HyperError | None = None
        done = False
        try:
            while True:
                event = codec.next_event()
                if type(event) is Data:
                    frames.append(Frame.data(event.data))
                    continue
                if type(event) is EndOfMessage:
                    if event.trailers:
                        frames.append(Frame.trailers(Headers._from_trusted(event.trailers)))
                    done = True
                elif event is not NEED_DATA:
                    raise ParseError(f"unexpected {event!r} in a response body", status_hint=None)
                break
        except HyperError as exc:
            error = exc
        source = ResponseBodySource(self, exchange, frames, done, error, length_known)
        if done:
            self._response_finished(exchange)
        return source
