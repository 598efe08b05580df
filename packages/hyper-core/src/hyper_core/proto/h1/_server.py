"""The HTTP/1 server dispatcher: one connection, requests served in order.

What belongs here: :class:`ServerDispatcher`, which with its base classes
is the only code of the HTTP/1 server that awaits I/O: the connection's
lifecycle (``run``, the ``async with`` around the request loop,
``graceful_shutdown``), the request loop (``_serve``)
that reads request heads through the codec, builds each ``Request`` and
calls the service, and the plain answer. Its base classes hold the rest,
each with the slots of the state it uses: ``_server_respond.py``
(``ServerResponses``: writing responses, the error answers, 1xx, draining
what the service left unread, the hand-over of the raw IO on an upgrade),
``_server_watch.py`` (``ServerWatch``: the reader task that watches for a
client that leaves) and ``_server_io.py`` (``ServerIO``: reads, bounded
writes, held answers, the timeout watchdog). Base classes rather than
helper objects, so the request path pays no extra attribute hop. The public
face is :mod:`hyper_core.server.conn.http1`.

Strategy (speed and bounded resources):

* One task per connection, and requests are served inline in it: no task,
  channel or event per request. HTTP/1 answers in request order anyway, so
  pipelined requests are simply served one after the other from the codec's
  buffer.
* A ``Full`` or ``Empty`` response body is encoded whole, head, body and
  end in one codec call, by one encoder (``_encode_whole``) whichever path
  answers, and written with one ``send``. Other bodies
  are written frame by frame, each write awaited (backpressure). A body
  over ``WRITE_CHUNK`` bytes, ``Full`` or not, goes out after its head in
  sends of at most that size (see ``_server_io``).
* The usual request (no upgrade, and no body or one the service read to its
  end) answered with a ``Full`` or ``Empty`` body by a service that does
  not suspend costs no coroutine of the dispatcher's own:
  the request loop takes the service's first step itself and encodes the
  answer in a plain method, so each request awaits only the IO's
  ``receive`` and ``send``. Everything else goes through ``_answer``.
  Measured with ``benchmarks/h1_server_loop.py`` under cachegrind
  (instructions per request, 112.0k here): the first step taken inline
  saves 2.4% against ``await run_inline(...)``, the plain answer 5%
  against ``_answer``. Each awaitable shape the stepping handles (a
  coroutine that answers at once or suspends, an awaitable that is not a
  coroutine, a service that raises at its first step) has its test in
  ``test_server_h1_fast_paths.py``, and the plain answer is tested to write
  what ``_answer`` writes.
* The request body is pulled from the socket by the service reading
  ``Incoming`` (see ``_request_body.py``).
* ``header_read_timeout`` and ``send_stall_timeout`` cost no timer and no
  clock read per request, and no task per connection: one watchdog task
  per event loop times every connection's idle periods and writes (see
  ``_server_io.py`` and ``_server_watchdog.py``).
* Graceful shutdown disables keep-alive; a connection waiting for the first
  byte of a request is cancelled at once.
* Each request carries an ``Exchange`` (``hyper_core._exchange``) in its
  extensions: the service can write 1xx heads through it and learn that
  the client left. The socket is watched for that while the service runs
  (see ``_service_suspended``) and, when a service asked, while a streamed
  response body is produced, by one reader task per connection (started
  by the first service that suspends, parked between watches, never
  cancelled mid-read: the next ``receive`` takes the bytes of a read it
  started; see ``SocketReader`` and ``_server_watch.py``).
* ``pipeline_flush`` (off by default; costs an empty-list test per request
  when off): the usual answer is held instead of written while more
  request bytes are already received, and the held answers go out in one
  write (``_hold_or_send`` in ``_server_io.py``). They are written before
  anything could wait: before a read, before the service of a request with
  a body runs, by a task of their own as soon as a service suspends, before
  any other kind of write, at the end of the connection, and when they
  reach ``max_buf_size`` or ``WRITE_CHUNK`` bytes, whichever is less.

``ServerDispatcher`` is a little over 400 lines: the request loop is one
method on purpose (the hot path, inlined), and the lifecycle sits beside
it as the ``async with`` that wraps it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType, TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio

from hyper_core._caused import caused
from hyper_core._exchange import Exchange
from hyper_core._write_report import WriteReport
from hyper_core.body import Incoming
from hyper_core.error import (
    BodyError,
    BodyWriteAbortedError,
    CanceledError,
    ClosedError,
    HyperError,
    ParseError,
    UserError,
)
from hyper_core.ext import HeaderCaseMap
from hyper_core.http import (
    Extensions,
    Headers,
    Method,
    Request,
    Response,
    Uri,
    Version,
)
from hyper_core.http._method import _BY_BYTES as _METHODS
from hyper_core.http._uri import _ORIGIN_CACHE
from hyper_core.proto._log import body_aborted, client_fault, service_failed
from hyper_core.rt import IO
from hyper_core.upgrade import _attach_pending, _Pending

from ._codec import CodecState, Role, new_codec
from ._events import NEED_DATA, ConnectionClosed, RequestHead
from ._inline import SocketReader, first_step, resume
from ._request_body import RequestBodySource
from ._server_config import ServerConfig
from ._server_io import _IO_ERRORS, READ_SIZE, WRITE_CHUNK
from ._server_respond import ServerResponses
from ._server_watchdog import Watch, watch
from ._writev import chunk_sender

if TYPE_CHECKING:
    from hyper_core.service import Service

__all__ = ["READ_SIZE", "WRITE_CHUNK", "ServerConfig", "ServerDispatcher"]


_SEND_BODY: Final = CodecState.SEND_BODY
_DONE: Final = CodecState.DONE
_SWITCHED: Final = CodecState.SWITCHED_PROTOCOL
# Our side's states once a whole response was written.
_MUST_CLOSE: Final = CodecState.MUST_CLOSE
_HTTP_11: Final = Version.HTTP_11
_HTTP_10: Final = Version.HTTP_10
#: Seconds a connection that has sent nothing yet keeps after a graceful
#: shutdown began, for the request most likely on its way.
FIRST_REQUEST_GRACE: Final = 0.25


def _in_chain(exc: BaseException, target: BaseException) -> bool:
    """Whether ``target`` is ``exc`` or in its cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if current is target:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class ServerDispatcher(ServerResponses):
    """Drives one HTTP/1 server connection (see the module docstring)."""

    __slots__ = (
        "_grace_armed",
        "_owns_io",
        "_service",
        "_shutdown",
        "_timed",
        "_waiting_first_byte",
        "finished",
    )

    def __init__(self, io: IO, service: Service[Any], config: ServerConfig) -> None:
        self._io = io
        self._service = service
        self._config = config
        self.codec = new_codec(
            Role.SERVER,
            max_buf_size=config.max_buf_size,
            max_headers=config.max_headers,
            limits=config.limits,
            title_case_headers=config.title_case_headers,
            auto_date_header=config.auto_date_header,
            ignore_invalid_headers=config.ignore_invalid_headers,
            allow_multiple_spaces_in_request_line=config.allow_multiple_spaces_in_request_line,
        )
        if not config.keep_alive:
            self.codec.disable_keep_alive()
        # hyper's writev (auto, True, False), decided once (see _writev.py).
        self._send_chunks = chunk_sender(io, config.writev)
        # Read on every request: one attribute instead of two.
        self._preserve_case = config.preserve_header_case
        self.upgrades = False
        self.upgraded = False
        self.finished = False
        self.read_ahead = b""
        self._body: RequestBodySource | None = None
        self._pending: _Pending | None = None
        self._scope: anyio.CancelScope | None = None
        self._timed: Watch | None = None
        self._owns_io = False
        self._shutdown = False
        self._grace_armed = False
        self._timed_out = False
        self._waiting_first_byte = True
        # Writes started plus writes finished: odd while one is in progress
        # (the watchdog times it; see the module docstring).
        self._send_mark = 0
        self._send_timed_out = False
        # Idle periods started so far, and whether one is running now (see
        # the module docstring: the watchdog times them).
        self._idle = True
        self._idle_mark = 0
        self._continue_writing: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._children = False
        # The reader task (started by the first service that suspends), and
        # it again while it watches for a client that leaves.
        self._reader: SocketReader | None = None
        self._watcher: SocketReader | None = None
        self._disconnected = False
        self._exchange: Exchange | None = None
        # pipeline_flush: answers held for one write, and a failure of the
        # write made of them while a service ran.
        self._held: list[bytes] = []
        self._held_size = 0
        self._flush_error: HyperError | None = None
        self._report: WriteReport | None = None

    # -- lifecycle ----------------------------------------------------------

    def run(self, *, close_io: bool = False) -> Coroutine[Any, Any, None]:
        """Serve requests until the connection ends; then close the IO if ``close_io``.

        The IO is never closed after an upgrade taken through
        ``hyper_core.upgrade.on`` (it belongs to the upgrade then).

        Returns the request loop's own coroutine (await it): the lifecycle
        is this dispatcher's ``async with`` around the loop
        (``__aenter__``/``__aexit__``), not a coroutine of its own, which
        every idle keep-alive connection would hold.

        Raises (when awaited):
            HyperError: what ended the connection abnormally (ParseError,
                HeaderTimeoutError, IncompleteMessageError, UserError for a
                service that raised, BodyError, ClosedError).
        """
        self._owns_io = close_io
        return self._serve()

    async def __aenter__(self) -> None:
        config = self._config
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._task_group = tg
        self._scope = tg.cancel_scope
        if config.header_read_timeout is not None or config.send_stall_timeout is not None:
            timed = self._timed = watch(self, config.timer.now(), tg)
            self._children = timed.private

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        # exc: what ended the request loop. An Exception is re-raised as
        # itself (False), not in an ExceptionGroup; a cancellation of the
        # connection's own scope (a timeout, a client that left, a shutdown)
        # is swallowed by the task group and the connection ends as below.
        try:
            swallowed = await self._end_task_group(exc_type, exc, tb)
            error = self._ending_error() if exc is None or swallowed else None
        except BaseException as failure:
            # Not ``finally``: compiled by mypyc, an ``await`` in a ``finally``
            # that an exception runs through can re-raise another task's
            # exception instead (docs/performance.md).
            if self._owns_io:
                await self._close_io()
            raise failure
        if self._owns_io:
            await self._close_io()
        if error is not None:
            raise error
        return swallowed

    async def _end_task_group(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tg = self._task_group
        assert tg is not None
        try:
            if self._children:  # only to stop the tasks started in it (see _spawn)
                tg.cancel_scope.cancel()
            if exc is None or isinstance(exc, Exception):
                await tg.__aexit__(None, None, None)
                return False
            return bool(await tg.__aexit__(exc_type, exc, tb))
        finally:
            if self._timed is not None:
                self._timed.close()
                self._timed = None
            self.finished = True
            self._scope = None
            self._task_group = None
            pending = self._pending
            if pending is not None and not self.upgraded:
                pending.fail(CanceledError("the connection closed before an upgrade"))
            if self._exchange is not None:
                # Closed before the response was complete (no-op if it was).
                self._exchange.client_gone()

    async def _close_io(self) -> None:
        if not (self.upgraded and self.upgrades):
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._io.aclose()

    def graceful_shutdown(self) -> None:
        """Finish the request in flight (with ``connection: close``), then stop."""
        if self.upgraded or self.finished:
            return
        self._shutdown = True
        self.codec.disable_keep_alive()
        # Waiting for a request that has not started: nothing to finish.
        if self._waiting_first_byte and self._scope is not None and not self.codec.trailing_data[0]:
            if self._idle_mark:
                self._scope.cancel()
            else:
                self._close_if_silent()

    def _close_if_silent(self) -> None:
        """Give a connection that has sent nothing yet ``FIRST_REQUEST_GRACE`` to start a request.

        Such a connection was most likely accepted a moment ago with its
        first request already on the way: closed now, with those bytes
        unread, the kernel would answer them with a reset, and the request
        would fail although the server is only being replaced (workers
        reloading). An idle keep-alive connection closes at once, as the
        client expects of keep-alive.
        """
        tg = self._task_group
        if tg is None or self._grace_armed:
            return
        self._grace_armed = True

        async def close_if_still_silent() -> None:
            await self._config.timer.sleep(FIRST_REQUEST_GRACE)
            if (
                self._waiting_first_byte
                and self._scope is not None
                and not self.codec.trailing_data[0]
            ):
                self._scope.cancel()

        self._spawn(tg, close_if_still_silent)

    # -- the request loop ---------------------------------------------------

    async def _serve(self) -> None:
        async with self:
            codec = self.codec
            receive = self._io.receive
            send = self._hold_or_send if self._config.pipeline_flush else self._io.send
            held = self._held  # answers held by pipeline_flush (always empty without it)
            service = self._service
            request: Request[Incoming] | None
            awaitable: Awaitable[object] | None
            step: Generator[Any, None, object] | CoroutineType[Any, Any, object] | None
            answer: bytes | None
            exchange: Exchange | None
            while True:
                try:
                    event = codec.next_event()
                    while event is NEED_DATA:
                        if held:
                            await self._flush_held()
                        if self._shutdown and not codec.trailing_data[0]:
                            if self._idle_mark:
                                return
                            self._close_if_silent()  # shut down before its first request
                        self._waiting_first_byte = True
                        # self.receive(), inlined: once per request.
                        try:
                            if self._reader is None:
                                data = await receive(READ_SIZE)
                            else:
                                data = await self.receive()
                        except anyio.EndOfStream:
                            data = b""
                        except _IO_ERRORS:
                            data = b""
                        finally:
                            self._waiting_first_byte = False
                        codec.receive_data(data)
                        event = codec.next_event()
                except ParseError as exc:
                    await self._reject(exc)
                    raise
                if type(event) is ConnectionClosed:
                    if held:
                        await self._flush_held()
                    return
                assert type(event) is RequestHead
                self._idle = False
                if self._shutdown:
                    codec.disable_keep_alive()
                # One request, served inline: the usual answer takes no coroutine
                # of its own (self._plain_answer); anything else goes through
                # self._answer.
                try:
                    request = self._request(event)
                except ParseError as exc:
                    codec.disable_keep_alive()
                    await self._reject_late(exc)
                    raise
                if held and self._body is not None:
                    # Its service may read the body, or wait for it: nothing held
                    # may wait with it.
                    await self._flush_held()
                exchange = self._exchange
                assert exchange is not None
                try:
                    # run_inline(), inlined: the first step of the service runs
                    # here, and only a service that suspends costs a generator.
                    # Its StopIteration is caught in first_step, not in this
                    # frame (memory per idle connection: see first_step).
                    awaitable = service(request)
                    step = awaitable if type(awaitable) is CoroutineType else awaitable.__await__()
                    signal = first_step(step)
                    if isinstance(signal, StopIteration):
                        result: object = signal.value
                    else:
                        self._service_suspended()
                        result = await resume(step, signal)
                except Exception as exc:
                    await self._stop_watcher()
                    if self._disconnected:
                        # The client left while the service ran and the reader
                        # cancelled it: what it raised follows from that, and
                        # run() reports the disconnect (on trio the service may
                        # see client_gone before the cancellation reaches it).
                        return
                    await self._service_failed()
                    self._log_service_error(request, exc)
                    raise caused(UserError("the service raised an exception"), exc) from exc
                try:
                    answer = self._plain_answer(result)
                    if answer is None:
                        await self._answer(result)
                except (UserError, BodyError) as exc:
                    # Not a valid final response, or its body failed: the
                    # application's fault (I/O failures are ClosedError), unless
                    # the body aborted on purpose and reported it itself.
                    if isinstance(exc.__cause__, BodyWriteAbortedError):
                        body_aborted(self._io, request, exc)
                    else:
                        service_failed(self._io, request, exc)
                    raise
                if answer is not None:
                    # self._write, inlined (a plain answer is at most WRITE_CHUNK
                    # bytes of body plus its head: one send).
                    self._send_mark += 1
                    try:
                        await send(answer)
                    except _IO_ERRORS as exc:
                        codec.send_failed()
                        raise caused(
                            ClosedError("the connection failed while writing the response"), exc
                        ) from exc
                    except BaseException:
                        codec.send_failed()
                        raise
                    finally:
                        self._send_mark += 1
                # Identity tests, not a set: an enum member's hash is a Python call.
                our = codec.our_state
                if our is _DONE or our is _MUST_CLOSE or our is _SWITCHED:
                    exchange.finish()
                if our is not _DONE or codec.their_state is not _DONE:
                    return  # closing, switched protocols, or broken
                codec.start_next_cycle()
                self._idle_mark += 1
                self._idle = True
                # An idle connection keeps nothing of the request it served: the
                # head, request, response and encoded bytes go now, not when the
                # next request replaces them (memory per idle connection).
                data = b""
                request = awaitable = step = signal = result = answer = exchange = (
                    self._exchange
                ) = None

    def _log_service_error(self, request: Request[Incoming], exc: Exception) -> None:
        # A service that raised because reading the request body failed
        # (the client cut it short or broke its framing) passes the
        # client's fault on: DEBUG. Anything else is the application's.
        source = self._body
        failure = None if source is None else source.failure
        if failure is not None and _in_chain(exc, failure):
            client_fault(self._io, request, exc)
        else:
            service_failed(self._io, request, exc)

    def _request(self, head: RequestHead) -> Request[Incoming]:
        codec = self.codec
        try:
            # Uri._from_origin_shared, its cache lookup inlined (hot path).
            target = head.target
            uri = _ORIGIN_CACHE.get(target) or Uri._from_origin_shared(target)
            method = _METHODS.get(head.method) or Method.from_bytes(head.method)
        except ValueError as exc:
            raise caused(ParseError(str(exc), status_hint=400), exc) from exc
        body_length = codec.their_body_length
        if body_length == 0:
            codec.next_event()  # the EndOfMessage of an empty body
            body = Incoming.empty()
            self._body = None
        else:
            source = self._body = RequestBodySource(self)
            body = Incoming(source)
        exchange = self._exchange = Exchange(self._write_informational)
        extensions = Extensions()
        extensions._map = {Exchange: exchange}  # insert(), less its call (hot path)
        # The trusted factories: the parser has validated every part.
        request = Request.from_parts(
            method,
            uri,
            _HTTP_11 if head.version == b"1.1" else _HTTP_10,
            Headers._from_trusted(head.headers),
            body,
            extensions,
        )
        if self._preserve_case:
            request.extensions.insert(HeaderCaseMap.from_fields(head.headers))
        if codec.upgrade_requested:
            self._pending = _attach_pending(request)
        return request

    def _plain_answer(self, result: object) -> bytes | None:
        """The usual answer encoded whole, or None when :meth:`_answer` must write it.

        Usual: a ``Response`` whose body :meth:`_encode_whole` takes (``Full``
        of at most ``WRITE_CHUNK`` bytes, or ``Empty``), with a final status
        and no extensions, to a request without an
        upgrade whose body (if any) the service read to its end, with no
        watcher or ``100 Continue`` in flight; nothing is left to do after
        its one write.
        """
        source = self._body
        if (
            type(result) is not Response
            or self._pending is not None
            or self._watcher is not None
            or self._continue_writing is not None
            or result._extensions is not None
            or result.status < 200
            or (source is not None and not self._body_read(source))
        ):
            return None
        answer = self._encode_whole(result)
        if answer is not None:
            self._body = None
        return answer

    def _body_read(self, source: RequestBodySource) -> bool:
        """Whether the service read the request body to its end.

        A Content-Length body read to its last byte still has its end to
        parse: it is parsed here (no I/O), so the usual echo or upload
        answer takes the plain path too.
        """
        if source.done:
            return True
        codec = self.codec
        if source.reading or codec.their_body_length != 0 or codec.their_state is not _SEND_BODY:
            return False
        codec.next_event()  # the EndOfMessage, as _request parses it for an empty body
        source.done = True
        return True
