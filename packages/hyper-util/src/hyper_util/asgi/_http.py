"""One ASGI ``http`` request/response cycle on a hyper-core request.

What belongs here: :class:`HTTPCycle` (the app's ``receive``/``send``, the
validation of every message the app sends, the app task's outcome) and
:class:`AppBody` (the response body the connection pulls the app's chunks
from).

Strategy:

* The app runs in a task of its own (see ``_service.py``); the service
  waits until the app has started its response and returns it to the
  connection. A response sent whole (``more_body`` false on the first body
  message) becomes a ``Full`` body: the connection's fast path. Otherwise
  the body is an :class:`AppBody`: each ``send()`` of a chunk hands it over
  and waits until the connection asks for the next one, so a slow client
  slows the app down and nothing piles up (backpressure: at most the chunk
  being written and the one handed over).
* ``receive()`` pulls the request body from hyper-core's ``Incoming``:
  nothing is read ahead of the app.
* ``http.disconnect`` comes from :func:`hyper_core.ext.on_client_gone`
  (the connection watches the socket or the stream), from the service
  being cancelled, or from the connection dropping the body; after it,
  ``send()`` raises :class:`ClientDisconnected`.
* Everything the app sends is checked before anything reaches the wire: a
  bad message is logged (ERROR) and answered with a 500 if nothing was sent
  yet; after the head was sent, the body fails, which makes the connection
  close (HTTP/1) or reset the stream (HTTP/2): never a corrupt message.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Final, NoReturn

import anyio

from hyper_core import ext
from hyper_core.body import Frame, Full, Incoming, SizeHint
from hyper_core.error import HyperError, InvalidHeader
from hyper_core.http import Headers, Method, Request, Response, StatusCode

# The errors are defined in _types.py: mypyc compiles this module, and a
# compiled class cannot subclass RuntimeError or hyper-core's errors.
from ._types import ClientDisconnected, InvalidMessage, Message, _BodyFailed

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["AppBody", "HTTPCycle", "InvalidMessage"]

_log = logging.getLogger("hyper_util.asgi")

#: Bytes read from a file per chunk of ``http.response.pathsend``.
PATHSEND_CHUNK: Final = 262_144
_NO_BODY_STATUS: Final = frozenset({204, 304})
#: The final statuses an app may send, as the StatusCode a Response holds
#: (a lookup here validates the status and spares StatusCode's constructor).
_STATUSES: Final = {code: StatusCode(code) for code in range(200, 600)}
_EMPTY: Final = Full(b"")
_DISCONNECT: Final = {"type": "http.disconnect"}
_UNKNOWN: Final = SizeHint()
#: Header lists already checked: the app's fields as given -> (the checked
#: Headers, the declared Content-Length). Bounded in entries (emptied when
#: full) and in what one entry may hold, since values may come from clients.
_FIELDS_CACHE: dict[tuple[Any, ...], tuple[Headers, int | None]] = {}
_FIELDS_CACHE_MAX: Final = 512
_CACHED_FIELDS_MAX: Final = 32
_CACHED_BYTES_MAX: Final = 2048


def _fields(headers: Iterable[Any]) -> tuple[Headers, int | None]:
    """The app's header fields as ``Headers``, and the Content-Length they declare.

    Apps send the same few header lists over and over (a route's content
    type and length): a list seen before, field for field, is taken from
    :data:`_FIELDS_CACHE`, already checked (validating ten fields costs
    about as much as the rest of a small response). Otherwise
    :func:`_checked_fields` does the work.
    """
    if type(headers) is not list and type(headers) is not tuple:
        headers = list(headers)
    try:
        key: tuple[Any, ...] | None = tuple(headers)
        cached = _FIELDS_CACHE.get(key)  # type: ignore[arg-type]
    except TypeError:  # a field as a list: unhashable, never cached
        key = cached = None
    if cached is not None:
        return Headers(cached[0]), cached[1]
    fields, length, size = _checked_fields(headers)
    if key is not None and len(key) <= _CACHED_FIELDS_MAX and size <= _CACHED_BYTES_MAX:
        if len(_FIELDS_CACHE) >= _FIELDS_CACHE_MAX:
            _FIELDS_CACHE.clear()
        _FIELDS_CACHE[key] = (fields, length)
        fields = Headers(fields)  # the cached one is never handed out
    return fields, length


def _checked_fields(headers: list[Any] | tuple[Any, ...]) -> tuple[Headers, int | None, int]:
    """``_fields`` without the cache; also the bytes the fields hold.

    One pass checks the types and finds the fields the server cares about;
    ``Headers`` then validates the bytes. Transfer-Encoding is dropped: the
    server owns the framing.
    """
    length: int | None = None
    size = 0
    framing = False
    for item in headers:
        name, value = item
        if (type(name) is not bytes or type(value) is not bytes) and not (
            isinstance(name, bytes) and isinstance(value, bytes)
        ):
            raise InvalidMessage(f"header names and values must be bytes, got {item!r}")
        name_size = len(name)
        size += name_size + len(value)
        if name_size == 14:
            if length is None and name.lower() == b"content-length":
                if not value.isdigit():
                    raise InvalidMessage(f"invalid content-length {value!r}")
                length = int(value)
        elif name_size == 17 and name.lower() == b"transfer-encoding":
            framing = True
    if framing:
        headers = [item for item in headers if item[0].lower() != b"transfer-encoding"]
    try:
        checked = Headers(headers)
    except InvalidHeader as exc:
        problem = str(exc)
    else:
        return checked, length, size
    # Raised outside the handler: no context to hide, and no ``from None``,
    # which the compiled build ignores (docs/performance.md).
    raise InvalidMessage(problem)


class AppBody:
    """The response body of a streaming app: chunks handed over by ``send()``."""

    __slots__ = ("_cycle", "_done")

    def __init__(self, cycle: HTTPCycle) -> None:
        self._cycle = cycle
        self._done = False

    async def frame(self) -> Frame | None:
        """The next chunk the app sends, trailers, or the end."""
        if self._done:
            return None
        cycle = self._cycle
        # The previous chunk is written: the app's send() may return.
        taken = cycle._taken
        if taken is not None:
            cycle._taken = None
            taken.set()
        while cycle._pending is None:
            if cycle._failed is not None:
                raise cycle._failed
            cycle._ready = ready = anyio.Event()
            await ready.wait()
        frame = cycle._pending
        cycle._pending = None
        if frame is _END:
            self._done = True
            return None
        return frame

    def is_end_stream(self) -> bool:
        """Never known ahead of the app's next message."""
        return self._done

    def size_hint(self) -> SizeHint:
        """The declared Content-Length, if any, is the connection's business."""
        return _UNKNOWN

    async def aclose(self) -> None:
        """The connection stopped reading: an unfinished response means the client is gone."""
        if not self._done:
            self._done = True
            self._cycle.client_gone()


#: Marks the end of an AppBody in HTTPCycle._pending.
_END: Final = Frame.data(b"")


class HTTPCycle:
    """The state of one request/response exchange between a connection and the app.

    The service calls the app, then :meth:`wait_response` if the app did not answer at once.
    """

    __slots__ = (
        "_body",
        "_declared_length",
        "_failed",
        "_headers_fields",
        "_is_head",
        "_pending",
        "_ready",
        "_received_all",
        "_sent_length",
        "_status",
        "_taken",
        "_trailers_expected",
        "_wake_receive",
        "disconnected",
        "request",
        "response",
        "response_complete",
        "response_ready",
        "response_started",
    )

    def __init__(self, request: Request[Incoming]) -> None:
        self.request = request
        self._body: Incoming = request.body
        self._received_all = False
        self._is_head = request.method is Method.HEAD
        self.response: Response[Any] | None = None
        # Made only when the service has to wait (an app that answers at once never needs it).
        self.response_ready: anyio.Event | None = None
        self.response_started = False  # http.response.start was accepted
        self.response_complete = False  # the app sent its last message of the response
        self.disconnected = False
        self._status: StatusCode | None = None
        self._headers_fields: Headers | None = None
        self._declared_length: int | None = None
        self._sent_length = 0
        self._trailers_expected = False
        self._pending: Frame | None = None
        self._ready: anyio.Event | None = None
        self._taken: anyio.Event | None = None
        self._failed: BaseException | None = None
        self._wake_receive: anyio.Event | None = None

    # -- the connection's side --------------------------------------------------

    def client_gone(self) -> None:
        """The client went away: ``receive()`` says so, ``send()`` raises."""
        if self.disconnected:
            return
        self.disconnected = True
        for event in (self._wake_receive, self._taken, self._ready, self.response_ready):
            if event is not None:
                event.set()

    def app_failed(self, reason: str) -> None:
        """The app raised or ended early: answer 500, or fail the body it started."""
        if not self.response_started and self.response is None:
            self._respond(Response(500, headers={"content-length": "0"}, body=_EMPTY))
            return
        if not self.response_complete:
            self._fail_body(reason)

    def _fail_body(self, reason: str) -> None:
        self._failed = _BodyFailed(reason)
        self._complete()
        if self._ready is not None:
            self._ready.set()
        if self.response is None:
            # The head was accepted but not handed over: nothing reached the wire.
            self._respond(Response(500, headers={"content-length": "0"}, body=_EMPTY))

    def _respond(self, response: Response[Any]) -> None:
        self.response = response
        if self.response_ready is not None:
            self.response_ready.set()

    async def wait_response(self) -> Response[Any] | None:
        """The response once the app started it; None if the client left first."""
        while self.response is None and not self.disconnected:
            if self.response_ready is None:
                self.response_ready = anyio.Event()
            await self.response_ready.wait()
        return self.response

    # -- receive ------------------------------------------------------------------

    async def receive(self) -> Message:
        """The app's ``receive()``: request body chunks, then ``http.disconnect``."""
        if self.disconnected:
            return dict(_DISCONNECT)
        if not self._received_all:
            body = self._body
            try:
                while True:
                    frame = await body.frame()
                    if frame is None:
                        self._received_all = True
                        return {"type": "http.request", "body": b"", "more_body": False}
                    data = frame.data_ref
                    if data is not None:
                        more = not body.is_end_stream()
                        self._received_all = not more
                        return {"type": "http.request", "body": data, "more_body": more}
            except HyperError as exc:
                _log.debug("request body ended early: %s", exc)
                self.client_gone()
                return dict(_DISCONNECT)
        # The body is read: wait until the client leaves or the response is done.
        while not self._finished():
            self._wake_receive = event = anyio.Event()
            await event.wait()
        return dict(_DISCONNECT)

    def _finished(self) -> bool:
        return self.disconnected or self.response_complete

    def _complete(self) -> None:
        self.response_complete = True
        if self._wake_receive is not None:
            self._wake_receive.set()

    # -- send ---------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """The app's ``send()``: checks every message, then hands it to the connection.

        Raises:
            ClientDisconnected: the client is gone.
            InvalidMessage: the message is not valid here (also logged, and
                the exchange is answered with 500 or closed).
        """
        if self.disconnected:
            raise ClientDisconnected("the client disconnected")
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            self._invalid(f"not an ASGI message: {message!r}")
        if kind == "http.response.body":
            # The whole body at once costs no coroutine of its own.
            if not self._body_at_once(message):
                await self._send_body(message)
        elif kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.trailers":
            await self._send_trailers(message)
        elif kind == "http.response.early_hint":
            await self._early_hint(message)
        elif kind == "http.response.pathsend":
            await self._pathsend(message)
        else:
            self._invalid(f"unexpected ASGI message type {kind!r}")

    def _invalid(self, why: str) -> NoReturn:
        _log.error("ASGI application sent an invalid message: %s", why)
        self.app_failed(why)
        raise InvalidMessage(why)

    def _start(self, message: Message) -> None:
        if self.response_started:
            self._invalid("http.response.start sent twice")
        status = message.get("status")
        code = _STATUSES.get(status) if type(status) is int else None
        if code is None:
            self._invalid(f"invalid status {status!r} in http.response.start (200-599)")
        try:
            headers, self._declared_length = _fields(message.get("headers", ()))
        except (InvalidMessage, ValueError, TypeError) as exc:
            self._invalid(f"http.response.start: {exc}")
        self.response_started = True
        self._status = code
        self._headers_fields = headers
        if message.get("trailers"):
            self._trailers_expected = True

    def _check_length(self, total: int, final: bool) -> None:
        declared = self._declared_length
        if declared is None or self._is_head or self._status in _NO_BODY_STATUS:
            return
        if total > declared or (final and total != declared):
            self._invalid(
                f"the body ({total} bytes{'' if final else ' so far'}) contradicts "
                f"content-length: {declared}"
            )

    def _body_at_once(self, message: Message) -> bool:
        """Complete the response with this body if it is the whole of it; True if done."""
        if (
            self.response is not None
            or not self.response_started
            or self._trailers_expected
            or message.get("more_body", False)
        ):
            return False
        body = message.get("body", b"")
        if type(body) is not bytes:
            return False  # the general path converts or refuses it
        declared = self._declared_length
        if declared is not None and len(body) != declared:
            self._check_length(len(body), True)  # refuses it, unless HEAD, 204 or 304
        self.response_complete = True
        # _respond and _head_response, inlined: once per request.
        status = self._status
        headers = self._headers_fields
        assert status is not None  # both set by _start
        assert headers is not None
        self.response = Response.from_parts(status, self.request.version, headers, Full(body))
        if self.response_ready is not None:
            self.response_ready.set()
        return True

    async def _send_body(self, message: Message) -> None:
        if not self.response_started:
            self._invalid("http.response.body before http.response.start")
        if self.response_complete:
            self._invalid("http.response.body after the response was complete")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if not isinstance(body, bytes | bytearray | memoryview):
            self._invalid(f"http.response.body 'body' must be bytes, got {type(body).__name__}")
        data = bytes(body)
        self._sent_length += len(data)
        final = not more and not self._trailers_expected
        self._check_length(self._sent_length, not more)
        if self.response is None and not more and not self._trailers_expected:
            # The whole response at once: a Full body, the connection's fast path.
            self._complete()
            self._respond(self._head_response(Full(data)))
            return
        if self.response is None:
            self._respond(self._head_response(AppBody(self)))
        if data:
            await self._hand_over(Frame.data(data))
        if final:  # with trailers expected, http.response.trailers ends the response
            self._complete()
            await self._hand_over(_END)

    def _head_response(self, body: Any) -> Response[Any]:
        # The trusted factory: the status and the fields were checked by
        # _start, and the fields are this response's own copy (_fields).
        headers = self._headers_fields
        status = self._status
        assert headers is not None
        assert status is not None
        response: Response[Any] = Response.from_parts(status, self.request.version, headers, body)
        return response

    async def _hand_over(self, frame: Frame) -> None:
        # Wait for the slot, fill it, wake the connection, then wait until taken.
        while self._pending is not None:
            await self._wait_taken()
        self._pending = frame
        if self._ready is not None:
            self._ready.set()
        await self._wait_taken()

    async def _wait_taken(self) -> None:
        self._taken = event = anyio.Event()
        await event.wait()
        if self.disconnected:
            raise ClientDisconnected("the client disconnected")

    async def _send_trailers(self, message: Message) -> None:
        if not self._trailers_expected or not self.response_started or self.response_complete:
            self._invalid("http.response.trailers without trailers=True or after the end")
        if self._sent_length == 0 and self.response is None:
            self._respond(self._head_response(AppBody(self)))
        try:
            trailers, _ = _fields(message.get("headers", ()))
        except (InvalidMessage, ValueError, TypeError) as exc:
            self._invalid(f"http.response.trailers: {exc}")
        if message.get("more_trailers", False):
            self._invalid("more_trailers is not supported: send every trailer in one message")
        self._complete()
        await self._hand_over(Frame.trailers(trailers))
        await self._hand_over(_END)

    async def _early_hint(self, message: Message) -> None:
        if self.response_started:
            _log.debug("early hint after http.response.start ignored")
            return
        links = message.get("links", [])
        try:
            fields = [(b"link", link.encode("latin-1")) for link in links]
            await ext.send_informational(self.request, 103, fields)
        except (HyperError, AttributeError, UnicodeEncodeError) as exc:
            _log.debug("early hint not sent: %s", exc)

    async def _pathsend(self, message: Message) -> None:
        if not self.response_started or self.response is not None or self.response_complete:
            self._invalid("http.response.pathsend needs a started response and no body yet")
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            self._invalid(f"http.response.pathsend 'path' must be an absolute path, got {path!r}")
        try:
            file = await anyio.open_file(path, "rb")
        except OSError as exc:
            self._invalid(f"http.response.pathsend cannot open {path!r}: {exc}")
        # Not ``async with``: compiled, an exit that awaits while an error
        # is handled could re-raise another task's error; the error is kept
        # and raised by name instead (docs/performance.md).
        try:
            await self._send_file(file)
        except BaseException as exc:
            await file.aclose()
            raise exc
        await file.aclose()
        self._check_length(self._sent_length, True)
        self._complete()
        await self._hand_over(_END)

    async def _send_file(self, file: anyio.AsyncFile[bytes]) -> None:
        size = os.fstat(file.wrapped.fileno()).st_size
        if self._headers_fields is not None and (
            self._headers_fields.get_raw(b"content-length") is None
        ):
            self._headers_fields.append("content-length", str(size))
            self._declared_length = size
        self._respond(self._head_response(AppBody(self)))
        while True:
            chunk = await file.read(PATHSEND_CHUNK)
            if not chunk:
                break
            self._sent_length += len(chunk)
            self._check_length(self._sent_length, False)
            await self._hand_over(Frame.data(chunk))
