"""The HTTP/1 client dispatcher: one connection, one request at a time.

What belongs here: :class:`ClientDispatcher`, the only code of the HTTP/1
client that awaits I/O, and :class:`ResponseBodySource`, the source behind
the ``Incoming`` body of a response. The public face (``handshake``,
``SendRequest``, ``Connection``) is :mod:`hyper_core.client.conn.http1`; all
protocol rules (framing, keep-alive, upgrades) are the codec's.

Strategy:

* No task and no channel per request. ``send_request`` writes the request
  head in the caller's task (with a ``Full`` or empty body: one codec call,
  one ``send``), then reads the response head in the same task.
* Reads are done by whichever task needs bytes: the caller waiting for the
  response head, the application reading the response body, or, while no
  request is in flight, the connection task, which is how it notices that
  the server closed or sent bytes nobody asked for. A flag serializes the
  reads; a task that finds another one reading waits until that read is fed
  to the codec and looks again. ``IO.receive`` loses nothing when cancelled
  (the :class:`~hyper_core.rt.IO` contract), so a reader that times out
  leaves the connection intact. The body is therefore pulled from the socket
  by its reader: an unread body holds at most one read in memory.
* Over an IO with the three optional capabilities ``notify_receivable``,
  ``receive_nowait`` and ``interrupt_receive`` (hyper-util's asyncio fast
  path has them: see ``AsyncioSocketStream``), "watch mode": while the
  connection is idle, a one-shot callback watches it instead of the
  connection task, and when the server closes, fails or sends bytes nobody
  asked for, it closes the connection there and then; the connection task
  sleeps from start to end, with no wake-up per request. Only the tasks of
  the exchange read, and a close interrupts a read in progress with
  ``interrupt_receive`` instead of a cancel scope per request. Over any
  other IO the connection task reads while the connection is idle, as
  described above.
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
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from typing import Any, Final, final

import anyio
import anyio.abc

from hyper_core._write_report import WriteReport, report_of
from hyper_core.body import Body, Frame, Full, Incoming, SizeHint
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
from hyper_core.http import Extensions, Headers, Request, Response, StatusCode, Uri, Version
from hyper_core.http._status import _BY_CODE
from hyper_core.rt import IO
from hyper_core.upgrade import _attach_pending, _Pending

from ._codec import CodecState, Role, new_codec
from ._events import NEED_DATA, ConnectionClosed, Data, EndOfMessage, RequestHead, ResponseHead
from ._parse import DEFAULT_LIMITS, HeadLimits
from ._writev import chunk_sender

__all__ = ["ClientConfig", "ClientDispatcher", "ResponseBodySource"]

#: First read size, in bytes, of the adaptive read strategy (hyper's
#: ``INIT_BUFFER_SIZE``). It doubles after a read that filled it, up to
#: ``max_buf_size``, and halves after two reads that used less than half.
INIT_READ_SIZE: Final = 8192

_SEND_BODY: Final = CodecState.SEND_BODY
_DONE: Final = CodecState.DONE
_SWITCHED: Final = CodecState.SWITCHED_PROTOCOL
_HTTP_10: Final = Version.HTTP_10
_HTTP_11: Final = Version.HTTP_11
_VERSIONS: Final = {b"1.0": _HTTP_10, b"0.9": Version.HTTP_09}
_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
_UNKNOWN_SIZE: Final = SizeHint()
_ZERO_SIZE: Final = SizeHint.with_exact(0)
_reasons: dict[int, bytes] = {}
_METHOD_BYTES: Final = {
    method: method.encode("ascii")
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
}


_HTTP2_ONLY: Final = (
    "the server speaks HTTP/2 only: it sent an HTTP/2 frame where an HTTP/1.1 "
    "response belongs (talk to it with HTTP/2 prior knowledge)"
)


def _looks_like_http2(first: bytes) -> bool:
    """Whether a connection's first bytes are an HTTP/2 frame rather than HTTP/1.

    An HTTP/2 server starts with a SETTINGS frame (RFC 9113 section 3.4)
    and may answer an HTTP/1 request with GOAWAY: a 9-byte frame header of
    type 0x4 or 0x7 on stream 0, whose length starts with a zero byte. An
    HTTP/1 response starts with ``HTTP/``.
    """
    if first[0] != 0:
        return False
    return len(first) < 9 or (first[3] in (0x4, 0x7) and first[5:9] == b"\x00\x00\x00\x00")


def _canonical_reason(status: int) -> bytes:
    reason = _reasons.get(status)
    if reason is None:
        reason = _reasons[status] = StatusCode(status).reason.encode("latin-1")
    return reason


class _State(enum.Enum):
    """Where the connection is, from the sender's point of view."""

    IDLE = "idle"  # ready for a request
    BUSY = "busy"  # a request is being written or its response read
    CLOSED = "closed"  # finished; ``_close_error`` says why (None: normally)
    UPGRADED = "upgraded"  # the IO belongs to the upgrade now


_IDLE: Final = _State.IDLE
_BUSY: Final = _State.BUSY
_CLOSED: Final = _State.CLOSED
_UPGRADED: Final = _State.UPGRADED


@final
class ClientConfig:
    """The options of :class:`hyper_core.client.conn.http1.Builder`, checked."""

    __slots__ = (
        "allow_obs_fold",
        "allow_space_before_colon",
        "http09_responses",
        "ignore_invalid_headers",
        "limits",
        "max_buf_size",
        "max_headers",
        "max_informational",
        "preserve_header_case",
        "read_buf_exact_size",
        "title_case_headers",
        "writev",
    )

    def __init__(
        self,
        *,
        title_case_headers: bool,
        preserve_header_case: bool,
        max_buf_size: int,
        max_headers: int,
        allow_obs_fold: bool,
        read_buf_exact_size: int | None,
        max_informational: int | None = None,
        limits: HeadLimits = DEFAULT_LIMITS,
        http09_responses: bool = False,
        allow_space_before_colon: bool = False,
        ignore_invalid_headers: bool = False,
        writev: bool | None = None,
    ) -> None:
        self.http09_responses = http09_responses
        self.allow_space_before_colon = allow_space_before_colon
        self.ignore_invalid_headers = ignore_invalid_headers
        self.writev = writev
        self.limits = limits
        self.title_case_headers = title_case_headers
        self.preserve_header_case = preserve_header_case
        self.max_buf_size = max_buf_size
        self.max_headers = max_headers
        self.max_informational = max_informational
        self.allow_obs_fold = allow_obs_fold
        self.read_buf_exact_size = read_buf_exact_size


@final
class _ReadStrategy:
    """How many bytes to ask of the IO per read (hyper's ``ReadStrategy``)."""

    __slots__ = ("_decrease_now", "_exact", "_max", "size")

    def __init__(self, exact: int | None, max_size: int) -> None:
        self._exact = exact is not None
        self.size = exact if exact is not None else INIT_READ_SIZE
        self._max = max_size
        self._decrease_now = False

    def record(self, n: int) -> None:
        if self._exact:
            return
        size = self.size
        if n >= size:
            self.size = min(size * 2, self._max)
            self._decrease_now = False
        elif n < size // 2:
            # Shrinking takes two small reads in a row: one small read in a
            # fast stream (the tail of a burst) says little.
            if self._decrease_now:
                self.size = max(size // 2, INIT_READ_SIZE)
            self._decrease_now = not self._decrease_now
        else:
            self._decrease_now = False


@final
class _Exchange:
    """One request and its response, while they are in flight."""

    __slots__ = (
        "error",
        "head_delivered",
        "head_scope",
        "request_done",
        "response_done",
        "written",
    )

    def __init__(self) -> None:
        self.written = False  # writing the request head has started
        self.request_done = False  # the request body ended (or failed to be written)
        self.response_done = False  # the response body ended
        self.head_delivered = False  # send_request returned the response
        self.head_scope: anyio.CancelScope | None = None  # the wait for the response head
        self.error: HyperError | None = None  # why the exchange failed, for send_request


@final
class ClientDispatcher:
    """Drives one HTTP/1 client connection (see the module docstring)."""

    __slots__ = (
        "_changed",
        "_close_error",
        "_codec",
        "_config",
        "_driver_event",
        "_exchange",
        "_heard",
        "_idle_scope",
        "_interrupt",
        "_io",
        "_last_target",
        "_last_uri",
        "_new_event",
        "_new_scope",
        "_nowait",
        "_pending_upgrade",
        "_read_done",
        "_reading",
        "_reads",
        "_running",
        "_send_chunks",
        "_sender_closed",
        "_serving",
        "_started",
        "_state",
        "_tg",
        "_watch",
    )

    def __init__(self, io: IO, config: ClientConfig) -> None:
        self._io = io
        self._config = config
        self._codec = new_codec(
            Role.CLIENT,
            max_buf_size=config.max_buf_size,
            max_headers=config.max_headers,
            limits=config.limits,
            title_case_headers=config.title_case_headers,
            allow_obs_fold=config.allow_obs_fold,
            http09_responses=config.http09_responses,
            allow_space_before_colon=config.allow_space_before_colon,
            ignore_invalid_headers=config.ignore_invalid_headers,
        )
        self._send_chunks = chunk_sender(io, config.writev)
        self._reads = _ReadStrategy(config.read_buf_exact_size, config.max_buf_size)
        self._state = _IDLE
        self._exchange: _Exchange | None = None
        self._close_error: HyperError | None = None
        self._sender_closed = False
        self._changed: anyio.Event | None = None
        self._reading = False
        self._read_done: anyio.Event | None = None
        self._idle_scope: anyio.CancelScope | None = None
        self._serving = anyio.Event()
        # ``anyio.Event()`` and ``anyio.CancelScope()`` look the running
        # library up (through sniffio) on every call; a request makes one of
        # each, and that look-up was a visible share of its cost. The
        # backend's own classes construct directly, and a connection never
        # moves to another event loop.
        self._new_event: type[anyio.Event] = type(self._serving)
        self._new_scope: type[anyio.CancelScope] = type(anyio.CancelScope())
        self._started = False  # run() has begun (``_serving`` is set)
        self._last_uri: Uri | None = None  # the last request's URI and its bytes
        self._last_target = b""
        self._running = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._pending_upgrade: _Pending | None = None
        # The optional IO capabilities of watch mode (see the module docstring): all or none.
        watch: Callable[[Callable[[], object] | None], bool] | None
        watch = getattr(io, "notify_receivable", None)
        nowait: Callable[[int], bytes] | None = getattr(io, "receive_nowait", None)
        interrupt: Callable[[BaseException], bool] | None
        interrupt = getattr(io, "interrupt_receive", None)
        if watch is None or nowait is None or interrupt is None:
            watch = nowait = interrupt = None
        self._watch = watch
        self._nowait = nowait
        self._interrupt = interrupt
        self._driver_event: anyio.Event | None = None  # the connection task sleeps (watch mode)
        self._heard = False  # any byte received yet (the first ones may be HTTP/2's)

    @property
    def io(self) -> IO:
        """The IO the connection runs over."""
        return self._io

    @property
    def running(self) -> bool:
        """Whether a task is driving the connection now."""
        return self._running

    def read_buf(self) -> bytes:
        """Bytes read from the IO and not parsed (read ahead of an upgrade)."""
        return self._codec.trailing_data[0]

    # -- state changes ------------------------------------------------------

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    async def _wait_changed(self) -> None:
        changed = self._changed
        if changed is None:
            changed = self._changed = self._new_event()
        await changed.wait()

    def _wake_driver(self) -> None:
        event = self._driver_event
        if event is not None:
            self._driver_event = None
            event.set()

    def _close(self, error: HyperError | None) -> None:
        """Mark the connection finished; the connection task closes the IO."""
        if self._state is _CLOSED or self._state is _UPGRADED:
            return
        self._state = _CLOSED
        self._close_error = error
        exchange = self._exchange
        self._exchange = None
        if exchange is not None and not exchange.head_delivered:
            if exchange.error is None:
                exchange.error = error or CanceledError("connection closed")
            if exchange.head_scope is not None:
                exchange.head_scope.cancel()
        if self._idle_scope is not None:
            self._idle_scope.cancel()
        if self._interrupt is not None and self._watch is not None:
            self._watch(None)
            # A task reading for the exchange gets the close as its error.
            self._interrupt(self._closed_error())
            self._wake_driver()
        self._notify()

    def _closed_error(self) -> ClosedError:
        error = ClosedError("connection is closed")
        error.__cause__ = self._close_error
        return error

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
        if self._state is _IDLE and self._idle_scope is not None:
            self._idle_scope.cancel()
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
            raise CanceledError("connection was not ready") from self._close_error
        exchange = _Exchange()
        if started is not None:
            started.append(exchange)
        self._exchange = exchange
        self._state = _BUSY
        report = report_of(request)
        try:
            await self._write_request(exchange, request, report)
            if self._watch is not None:
                # A close interrupts the read itself (see _close): no scope.
                return await self._read_head(exchange, request)
            return await self._read_response(exchange, request)
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
        tg.start_soon(self._write_body, exchange, body, report)

    async def _send_bytes(self, data: bytes) -> None:
        try:
            await self._io.send(data)
        except _IO_ERRORS as exc:
            self._codec.send_failed()
            raise ClosedError("connection closed while writing the request") from exc

    async def _write_body(
        self, exchange: _Exchange, body: Body, report: WriteReport | None = None
    ) -> None:
        """Stream a request body (a task of the connection's task group)."""
        codec = self._codec
        send_chunks = self._send_chunks
        failure: BaseException = ClosedError("the request body was not written whole")
        try:
            try:
                while True:
                    try:
                        frame = await body.frame()
                    except Exception as exc:
                        raise UserError("the request body failed") from exc
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
                # early 413, say), so the response is read on; the
                # connection is not reused.
                codec.send_failed()
                failure.__cause__ = exc
            except HyperError as exc:
                codec.send_failed()
                self._close(exc)
                failure = exc
                return
            except Exception as exc:  # the body's is_end_stream() or a frame was bad
                codec.send_failed()
                failure = UserError("the request body failed")
                failure.__cause__ = exc
                self._close(failure)
                return
            if self._exchange is exchange:
                exchange.request_done = True
                self._maybe_finish(exchange)
        finally:
            if report is not None:
                report.fail(failure)  # a no-op once finished
            # A body that fails to close must not take the connection task
            # (and the caller's task group) down with it.
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await body.aclose()

    def _end_bytes(self, trailers: list[tuple[bytes, bytes]] | None) -> bytes:
        try:
            return self._codec.send_end(trailers)
        except UserError as exc:
            raise BodyWriteAbortedError("the request body ended before its Content-Length") from exc

    async def _end_body(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        end = self._end_bytes(trailers)
        if end:
            await self._io.send(end)

    # -- reading --------------------------------------------------------------

    async def _read_more(self) -> None:
        """Get more bytes into the codec, or wait for the task getting them.

        Raises:
            ClosedError: the connection is closed.
            IncompleteMessageError: the IO failed.
        """
        if self._state is _CLOSED:
            raise self._closed_error()
        if self._reading:
            done = self._read_done
            if done is None:
                done = self._read_done = self._new_event()
            await done.wait()
            return
        await self._receive()

    def _on_receivable(self) -> None:
        """The IO's callback (watch mode): bytes, EOF or a failure can be received."""
        if self._state is not _IDLE:
            return  # registered while idle; the exchange's own reads take it
        # Idle: whatever it is ends the connection; find out what now, inside
        # the IO's callback, so that no request is sent on it meanwhile.
        try:
            self._receive_nowait()
        except HyperError as exc:
            self._close(exc)
        except Exception as exc:  # pragma: no cover (receive_nowait raises IO errors only)
            failure = IncompleteMessageError("connection failed while reading")
            failure.__cause__ = exc
            self._close(failure)

    def _receive_nowait(self) -> None:
        """Take what the IO holds (watch mode, idle); nothing if there is nothing."""
        assert self._nowait is not None
        try:
            data = self._nowait(self._reads.size)
        except anyio.WouldBlock:
            return
        except anyio.EndOfStream:
            data = b""
        except _IO_ERRORS as exc:
            raise IncompleteMessageError("connection failed while reading") from exc
        self._received(data)

    async def _receive(self) -> None:
        self._reading = True
        try:
            try:
                data = await self._io.receive(self._reads.size)
            except anyio.EndOfStream:
                data = b""
            except _IO_ERRORS as exc:
                if self._state is _CLOSED:  # closed by us: say why, not how the IO noticed
                    raise self._closed_error()  # noqa: B904 (its cause is the close reason)
                raise IncompleteMessageError("connection failed while reading") from exc
        finally:
            self._reading = False
            done = self._read_done
            if done is not None:
                self._read_done = None
                done.set()
        self._received(data)

    def _received(self, data: bytes) -> None:
        """Hand bytes read from the IO (``b""``: EOF) to the codec, or end an idle connection.

        Raises:
            ParseError: the first bytes of the connection are an HTTP/2 frame.
        """
        state = self._state
        if not self._heard and data:
            self._heard = True
            if _looks_like_http2(data):
                # Closed here, not only raised: the reader may be the
                # connection task, which drops errors once a request is in
                # flight; the exchange then gets this error from the close.
                error = ParseError(_HTTP2_ONLY, status_hint=None)
                self._close(error)
                if state is _IDLE:
                    return
                raise error
        if state is _IDLE:
            # Nobody asked for these bytes: an answer to no request must never
            # be taken for the answer to the next one.
            if data:
                self._close(
                    ParseError(
                        "unexpected bytes from the server on an idle connection", status_hint=None
                    )
                )
            else:
                self._close(None)  # the server closed an idle connection
            return
        if state is _CLOSED or state is _UPGRADED:
            return
        self._reads.record(len(data))
        self._codec.receive_data(data)

    async def _read_response(
        self, exchange: _Exchange, request: Request[Any]
    ) -> Response[Incoming]:
        response: Response[Incoming] | None = None
        with self._new_scope() as scope:
            exchange.head_scope = scope
            try:
                response = await self._read_head(exchange, request)
            finally:
                exchange.head_scope = None
        if response is None:
            # Only _close() cancels this scope, after setting the error.
            assert exchange.error is not None
            raise exchange.error
        return response

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
            raise UserError("the on_informational callback failed") from exc

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
            if self._watch is not None:
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

    def _response_finished(self, exchange: _Exchange) -> None:
        exchange.response_done = True
        self._maybe_finish(exchange)

    def _maybe_finish(self, exchange: _Exchange) -> None:
        """Both directions are done: back to IDLE, or close."""
        if not (exchange.request_done and exchange.response_done) or self._exchange is not exchange:
            return
        self._exchange = None
        codec = self._codec
        if self._sender_closed or codec.our_state is not _DONE or codec.their_state is not _DONE:
            self._close(None)
            return
        try:
            codec.start_next_cycle()
        except HyperError as exc:  # bytes after the response that no request asked for
            self._close(exc)
            return
        self._state = _IDLE
        self._notify()
        watch = self._watch
        if watch is not None and self._running and watch(self._on_receivable):
            self._on_receivable()  # already closed by the server, or bytes came

    def _release_body(self, exchange: _Exchange) -> None:
        """The application closed a response body before its end."""
        if self._exchange is not exchange:
            return
        codec = self._codec
        try:
            # The rest may already be buffered: then the connection is kept.
            while True:
                event = codec.next_event()
                if type(event) is EndOfMessage:
                    self._response_finished(exchange)
                    return
                if type(event) is not Data:
                    break
        except HyperError:
            pass
        # Reading the rest off the network could take any time: close instead
        # (as hyper does when a body is dropped).
        self._close(ClosedError("the response body was closed before its end"))

    # -- the connection task ---------------------------------------------------

    async def run(self, *, upgrades: bool, shutdown: bool) -> None:
        """Drive the connection until it closes or upgrades.

        Args:
            upgrades: Hand the IO to ``upgrade.on(response)`` after a 101 or a
                2xx to CONNECT; otherwise the upgrade fails with
                ``UserError`` and the IO stays here for ``into_parts()``.
            shutdown: Close the IO at the end (not after an upgrade).

        Raises:
            UserError: the connection is already being driven.
        """
        if self._running:
            raise UserError("the connection is already being driven by another task")
        self._running = True
        cancelled = True
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._started = True
                self._serving.set()
                try:
                    await self._drive()
                finally:
                    self._tg = None
                    tg.cancel_scope.cancel()  # a request body still being written
            cancelled = False
        finally:
            self._running = False
            self._close(CanceledError("the connection task was cancelled"))
            pending = self._pending_upgrade
            if self._state is _UPGRADED and pending is not None:
                if upgrades:
                    pending.fulfil(self._io, self.read_buf())
                else:
                    pending.fail(
                        UserError(
                            "upgrade expected but the connection does not allow upgrades "
                            "(use Connection.with_upgrades())"
                        )
                    )
            elif shutdown:
                with anyio.CancelScope(shield=True) as scope:
                    if cancelled:
                        scope.cancel()  # close at once, without a graceful goodbye
                    await self._io.aclose()

    async def _drive(self) -> None:
        watch = self._watch
        if watch is not None and self._state is _IDLE and watch(self._on_receivable):
            self._on_receivable()
        while True:
            state = self._state
            if state is _IDLE:
                if self._sender_closed:
                    self._close(None)
                    return
                if watch is None:
                    await self._watch_idle()
                    continue
            elif state is not _BUSY:
                return
            elif watch is None:
                await self._wait_changed()
                continue
            # Watch mode: the IO's callback watches an idle connection, so
            # this task only wakes for a close, an upgrade or the sender's end.
            event = self._driver_event
            if event is None:
                event = self._driver_event = self._new_event()
            await event.wait()

    async def _watch_idle(self) -> None:
        """Read while no request is in flight: notice EOF and unasked-for bytes."""
        with self._new_scope() as scope:
            self._idle_scope = scope
            try:
                await self._read_more()
            except HyperError as exc:
                if self._state is _IDLE:
                    self._close(exc)
            finally:
                self._idle_scope = None


@final
class ResponseBodySource:
    """The source of a response's ``Incoming`` body: pulls from the connection."""

    __slots__ = (
        "_dispatcher",
        "_done",
        "_error",
        "_exchange",
        "_failure",
        "_frames",
        "_length_known",
    )

    def __init__(
        self,
        dispatcher: ClientDispatcher,
        exchange: _Exchange,
        frames: list[Frame] | None = None,
        done: bool = False,
        failure: HyperError | None = None,
        length_known: bool = True,
    ) -> None:
        self._dispatcher = dispatcher
        self._exchange = exchange
        # Frames taken from the codec with the head (see _body_source), in
        # reverse order so that the next one is popped from the end.
        self._frames = frames[::-1] if frames else None
        self._done = done  # the codec reached the end (the exchange may be over)
        self._error: HyperError | None = None
        self._failure = failure  # a parse error met while taking those frames
        # Content-Length framing: the size stays exact (chunked and
        # close-delimited bodies say "unknown" until their end, as before).
        self._length_known = length_known

    async def next_frame(self) -> Frame | None:
        """Return the next frame of the body, or None at its end.

        Raises:
            IncompleteMessageError: the connection closed before the end.
            ParseError: the body's framing is invalid.

        Cancel safety: cancelled while waiting for bytes, nothing is lost.
        """
        if self._error is not None:
            raise self._error
        frames = self._frames
        if frames:
            return frames.pop()
        if self._done:
            return None
        if self._failure is not None:
            raise self._fail(self._failure)
        dispatcher = self._dispatcher
        codec = dispatcher._codec
        try:
            while True:
                event = codec.next_event()
                if event is not NEED_DATA:
                    break
                await dispatcher._read_more()
        except HyperError as exc:
            raise self._fail(exc)  # noqa: B904 (keeps the cause it already has)
        if type(event) is Data:
            return Frame.data(event.data)
        if type(event) is EndOfMessage:
            self._done = True
            dispatcher._response_finished(self._exchange)
            if event.trailers:
                return Frame.trailers(Headers._from_trusted(event.trailers))
            return None
        raise self._fail(ParseError(f"unexpected {event!r} in a response body", status_hint=None))

    def _fail(self, exc: HyperError) -> HyperError:
        error = exc
        if isinstance(exc, ClosedError):
            error = IncompleteMessageError(
                "connection closed before the response body was complete"
            )
            error.__cause__ = exc.__cause__
        self._error = error
        self._dispatcher._close(error)
        return error

    def is_end_stream(self) -> bool:
        """Whether the body is over (a Content-Length body fully read counts)."""
        if self._frames:
            return False
        if self._done or self._error is not None:
            return self._done
        if self._failure is not None:
            return False
        codec = self._dispatcher._codec
        return codec.their_state is _SEND_BODY and codec.their_body_length == 0

    def size_hint(self) -> SizeHint:
        """The bytes left: exact for a Content-Length body, unknown otherwise."""
        frames = self._frames
        if not frames and self._done:
            return _ZERO_SIZE
        if not self._length_known or self._failure is not None:
            return _UNKNOWN_SIZE
        held = 0
        if frames:
            for frame in frames:
                data = frame.data_ref
                if data is not None:
                    held += len(data)
        if self._done:
            return SizeHint.with_exact(held)
        remaining = self._dispatcher._codec.their_body_length
        return SizeHint.with_exact((remaining or 0) + held)

    def release(self) -> None:
        """The application closed the body: finish it if buffered, else close."""
        self._frames = None
        if not self._done and self._error is None:
            self._done = True
            self._dispatcher._release_body(self._exchange)
