"""The HTTP/1 server's responses: the service's answer written, then its request finished.

What belongs here: :class:`ServerResponses`, the base class of
``_server.ServerDispatcher``: checking and writing what the service
returned (``_answer``), the error answers (400s for a malformed request,
500 for a failed service), 1xx heads (``100 Continue`` and those the
service writes through its ``Exchange``), the one encoder of in-memory
answers (``_encode_whole``), streamed bodies, and after the response the
request body left unread (drained within ``max_drain_bytes``) and the
hand-over of the IO on an upgrade. The request loop that calls these is
in ``_server.py``; the reads, bounded writes and the watchdog are in
``_server_io.py``, the reader task in ``_server_watch.py``. The state
these methods use has its slots here; the dispatcher sets it.

Strategy:

* A ``Full`` or ``Empty`` body of at most ``WRITE_CHUNK`` bytes is encoded
  whole, head, body and end in one codec call, by ``_encode_whole``
  whichever path answers (the dispatcher's plain answer too), and written
  with one ``send``; a response without extensions has its head built
  there, without calling ``_response_head``. Other bodies are written
  frame by frame, each write awaited (backpressure).
* Reason phrases are encoded once per status (``_reason``).
* Each ``await`` in ``_answer`` is behind the test that makes it needed:
  an awaited coroutine that has nothing to do still costs a frame.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

import anyio

from hyper_core._caused import caused
from hyper_core._write_report import WriteReport
from hyper_core.body import Empty, Full
from hyper_core.error import (
    BodyError,
    CanceledError,
    HyperError,
    IncompleteMessageError,
    ParseError,
    UserError,
)
from hyper_core.ext import HeaderCaseMap, ReasonPhrase
from hyper_core.http import Response, StatusCode, Version

from ._codec import CodecState
from ._events import NEED_DATA, Data, EndOfMessage, ResponseHead
from ._server_io import _IO_ERRORS, WRITE_CHUNK
from ._server_watch import ServerWatch

if TYPE_CHECKING:
    from hyper_core.upgrade import _Pending

    from ._request_body import RequestBodySource

__all__ = ["ServerResponses"]

_SEND_RESPONSE: Final = CodecState.SEND_RESPONSE
_SEND_BODY: Final = CodecState.SEND_BODY
_SWITCHED: Final = CodecState.SWITCHED_PROTOCOL
_IDLE: Final = CodecState.IDLE
_HTTP_10: Final = Version.HTTP_10
_CONTINUE: Final = ResponseHead(100, b"Continue", b"1.1", [])
_reasons: dict[int, bytes] = {}


def _reason(status: int) -> bytes:
    reason = _reasons.get(status)
    if reason is None:
        reason = _reasons[status] = StatusCode(status).reason.encode("ascii")
    return reason


class ServerResponses(ServerWatch):
    """The response side of one HTTP/1 server connection (see the module docstring).

    Holds the slots of the state these use; ``ServerDispatcher`` sets them.
    """

    __slots__ = (
        "_body",
        "_pending",
        "_preserve_case",
        "read_ahead",
        "upgraded",
        "upgrades",
    )

    _body: RequestBodySource | None  # the request's body, while it has one
    _pending: _Pending | None  # the upgrade the request asked for
    _preserve_case: bool  # config.preserve_header_case
    read_ahead: bytes  # bytes read past the request, after an upgrade
    upgraded: bool
    upgrades: bool  # the connection was built with upgrades

    # -- the service's answer, and the error answers ----------------------------

    async def _reject(self, exc: ParseError) -> None:
        # Answer a malformed request once, if nothing of a response was sent.
        status = exc.status_hint
        codec = self.codec
        if self._held:
            with contextlib.suppress(HyperError):
                await self._flush_held()
        if status is None or codec.our_state not in (_IDLE, _SEND_RESPONSE):
            return
        head = ResponseHead(status, _reason(status), b"1.1", [])
        try:
            await self._write(codec.send_message(head, b""))
        except (HyperError, *_IO_ERRORS):
            pass

    async def _answer(self, result: object) -> None:
        """Check and write the service's answer, then finish the request's body or upgrade."""
        codec = self.codec
        if type(result) is Response and result._extensions is not None and self._report is None:
            report = result._extensions.get(WriteReport)
            if report is not None:  # ext.on_write: written as a stream, reported
                self._report = report
                try:
                    await self._answer(result)
                except BaseException as exc:
                    report.fail(exc)
                    raise
                finally:
                    self._report = None
                return
        # Each ``await`` below is behind the test that makes it needed: an
        # awaited coroutine that has nothing to do still costs a frame.
        if self._watcher is not None:
            await self._stop_watcher()
            if self._flush_error is not None:
                raise self._flush_error  # the held answers could not be written
        if self._held:
            await self._flush_held()
        if type(result) is not Response and not isinstance(result, Response):
            await self._service_failed()
            raise UserError(f"the service returned {result!r}, not a Response")
        response: Response[Any] = result
        status = response.status
        if status < 200 and status != 101:
            # hyper answers 500 too: a 1xx is never a final response.
            await self._service_failed()
            raise UserError(f"a service may not return status {status}: 1xx is not final")
        await self._respond(response)
        if codec.their_state is _SEND_BODY:
            await self._finish_request_body()
        else:
            self._body = None
        if codec.our_state is _SWITCHED:
            await self._upgrade()
        elif self._pending is not None:
            self._pending.fail(CanceledError("the response was not an upgrade"))
            self._pending = None

    async def _reject_late(self, exc: ParseError) -> None:
        status = exc.status_hint or 400
        codec = self.codec
        if self._held:
            with contextlib.suppress(HyperError):
                await self._flush_held()
        if codec.our_state is _SEND_RESPONSE:
            head = ResponseHead(status, _reason(status), b"1.1", [])
            try:
                await self._write(codec.send_message(head, b""))
            except (HyperError, *_IO_ERRORS):
                pass

    async def _service_failed(self) -> None:
        codec = self.codec
        codec.disable_keep_alive()
        if self._held:
            with contextlib.suppress(HyperError):
                await self._flush_held()
        if codec.our_state is _SEND_RESPONSE:
            await self._wait_continue()
            head = ResponseHead(500, b"Internal Server Error", b"1.1", [])
            try:
                await self._write(codec.send_message(head, b""))
            except (HyperError, *_IO_ERRORS):
                pass

    # -- 1xx ----------------------------------------------------------------

    async def send_continue(self) -> None:
        """Write ``100 Continue`` (the service started reading the body)."""
        data = self.codec.send_informational(_CONTINUE)
        event = self._continue_writing = anyio.Event()
        try:
            await self._write(data)
        finally:
            self._continue_writing = None
            event.set()

    async def _write_informational(self, status: int, fields: list[tuple[bytes, bytes]]) -> None:
        # Called by the service (ext.send_informational) while it runs.
        codec = self.codec
        if codec.our_state is not _SEND_RESPONSE:
            raise UserError("the final response has started")
        if codec.their_version == b"1.0":
            return  # RFC 9110 section 15.2: never a 1xx to an HTTP/1.0 client
        await self._wait_continue()
        if self._held:
            await self._flush_held()  # pipeline_flush: earlier answers first
        data = codec.send_informational(ResponseHead(status, _reason(status), b"1.1", fields))
        event = self._continue_writing = anyio.Event()
        try:
            await self._write(data)
        finally:
            self._continue_writing = None
            event.set()

    # -- responses ----------------------------------------------------------

    def _encode_whole(self, response: Response[Any]) -> bytes | None:
        """The response encoded for one write, or None when its body must be streamed.

        The one encoder of in-memory answers (the plain answer, ``_answer``
        and ``_respond`` all use it): a ``Full`` body of at most
        ``WRITE_CHUNK`` bytes or an ``Empty`` one, head, body and end in one
        codec call. A response without extensions has its head built here;
        one with a reason phrase or a header case map goes through
        :meth:`_response_head`.
        """
        body = response.body
        kind = type(body)
        if kind is Full:
            data = body.data
            if len(data) > WRITE_CHUNK:
                return None
        elif kind is Empty:
            data = b""
        else:
            return None
        if response._extensions is None:
            status = response.status
            head = ResponseHead(
                status,
                _reasons.get(status) or _reason(status),
                b"1.0" if response.version is _HTTP_10 else b"1.1",
                response.headers._list,
            )
        else:
            head = self._response_head(response)
        return self.codec.send_message(head, data)

    def _response_head(self, response: Response[Any]) -> ResponseHead:
        status = response.status
        fields = response.headers.raw()
        extensions = response._extensions
        reason = None
        if extensions is not None:
            phrase = extensions.get(ReasonPhrase)
            if phrase is not None:
                reason = phrase.as_bytes()
            if self._preserve_case:
                case_map = extensions.get(HeaderCaseMap)
                if case_map is not None:
                    fields = case_map.apply(fields)
        return ResponseHead(
            status,
            (_reasons.get(status) or _reason(status)) if reason is None else reason,
            b"1.0" if response.version is _HTTP_10 else b"1.1",
            fields,
        )

    async def _respond(self, response: Response[Any]) -> None:
        codec = self.codec
        if self._continue_writing is not None:
            await self._wait_continue()
        source = self._body
        if source is not None and source.expect_continue and not source.started:
            # The client holds its body back for a 100 Continue that can no
            # longer be sent: say the connection closes after this response.
            codec.disable_keep_alive()
        data = self._encode_whole(response) if self._report is None else None
        if data is None:
            await self._respond_streaming(self._response_head(response), response.body)
        else:
            await self._write(data)

    async def _respond_streaming(self, head: ResponseHead, body: Any) -> None:
        # Not ``try``/``finally``: compiled by mypyc, an ``await`` in a
        # ``finally`` that an exception runs through can re-raise another
        # task's exception instead (docs/performance.md).
        try:
            await self._stream(head, body)
        except BaseException as exc:
            await self._end_stream(body)
            raise exc
        await self._end_stream(body)

    async def _stream(self, head: ResponseHead, body: Any) -> None:
        codec = self.codec
        exact = body.size_hint().exact
        first = codec.send_head(head, exact)
        report = self._report
        await self._write(first)
        if report is not None:
            report.head(len(first))
        if not codec.our_body_allowed:
            if codec.our_state is _SEND_BODY:
                await self._write_end(None)
            if report is not None:
                report.finish()
            return
        exchange = self._exchange
        if exchange is not None and exchange.watched:
            # A service wants to hear of a client that leaves while the
            # body is produced (a long stream to a client that is gone).
            self._service_suspended()
        trailers = None
        while True:
            try:
                frame = await body.frame()
            except Exception as exc:
                codec.send_failed()
                raise caused(BodyError("the response body failed"), exc) from exc
            if frame is None:
                break
            data = frame.data_ref
            if data is not None:
                chunks = codec.send_data(data)
                if chunks:
                    await self._write_all(chunks)
                    if report is not None:
                        report.data(len(data))
            elif frame.trailers_ref is not None:
                trailers = frame.trailers_ref.raw()
                break
        await self._write_end(trailers)
        if report is not None:
            report.finish()

    async def _end_stream(self, body: Any) -> None:
        if self._watcher is not None:
            with anyio.CancelScope(shield=True):
                await self._stop_watcher()
        with contextlib.suppress(Exception):
            await body.aclose()

    async def _write_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        end = self.codec.send_end(trailers)
        if end:
            await self._write(end)

    # -- after the response -------------------------------------------------

    async def _finish_request_body(self) -> None:
        codec = self.codec
        source = self._body
        self._body = None
        if codec.their_state is not _SEND_BODY:
            return
        if source is None or source.reading or (source.expect_continue and not source.started):
            # Unsafe to read (another task is reading), or the client is
            # still waiting for a 100 Continue that will not come and may
            # never send the body: close instead of draining.
            codec.disable_keep_alive()
            return
        source.detached = True
        if not codec.keep_alive and codec.our_state is not _SWITCHED:
            return
        # Drain what the service did not read, within the bound, so the
        # connection can serve the next request.
        self._idle_mark += 1
        self._idle = True
        budget = self._config.max_drain_bytes
        try:
            while True:
                event = codec.next_event()
                if type(event) is Data:
                    assert isinstance(event, Data)
                    budget -= len(event.data)
                    if budget < 0:
                        break
                elif type(event) is EndOfMessage:
                    return
                elif event is NEED_DATA:
                    codec.receive_data(await self.receive())
                else:  # pragma: no cover - codec contract
                    break
        except (ParseError, IncompleteMessageError):
            pass  # the response is out; a broken rest only ends the connection
        codec.disable_keep_alive()

    async def _upgrade(self) -> None:
        codec = self.codec
        if codec.their_state is not _SWITCHED:
            # The request body was not drained (too long or unread): there is
            # no clean byte boundary to hand over.
            if self._pending is not None:
                self._pending.fail(CanceledError("the request body was not read to its end"))
                self._pending = None
            codec.send_failed()
            return
        await self._stop_reader()
        self.upgraded = True
        self.read_ahead = codec.trailing_data[0]
        pending = self._pending
        self._pending = None
        if pending is not None:
            if self.upgrades:
                pending.fulfil(self._io, self.read_ahead)
            else:
                pending.fail(
                    UserError("upgrade expected but the connection was not built with upgrades")
                )
