"""HTTP/1.1 client connections: :func:`handshake`, :class:`Builder`, :class:`SendRequest`.

What belongs here: the public face of the HTTP/1 client (hyper's
``hyper::client::conn::http1``): the options with their defaults and units,
the :class:`SendRequest` handle that sends requests, and the
:class:`Connection` a task awaits to drive the connection. The protocol
work is in :mod:`hyper_core.proto.h1` (codec and client dispatcher).

Usage::

    import anyio
    from hyper_core.body import collect
    from hyper_core.client.conn import http1
    from hyper_core.http import Request

    async def main():
        stream = await anyio.connect_tcp("example.com", 80)
        sender, connection = await http1.handshake(stream)
        async with anyio.create_task_group() as tg:
            tg.start_soon(connection.serve)
            request = Request("GET", "/", headers={"host": "example.com"})
            response = await sender.send_request(request)
            body = await collect(response.body)
            await sender.aclose()   # the connection then ends, and serve() returns

Strategy: :class:`SendRequest` and :class:`Connection` are two thin handles
on one dispatcher; the connection owns the IO and closes it when it ends,
except after an upgrade (the IO then belongs to whoever awaits
``upgrade.on(response)``) or when run with :meth:`Connection.without_shutdown`.
This is a low-level connection: it writes the request as given (no ``Host``
added, the URI exactly as given, one request at a time) and keeps no pool;
``hyper_util``'s pooled client is built on it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final, Self, TypeVar, final

from hyper_core.body import Body, Incoming
from hyper_core.client.conn._errors import TrySendError
from hyper_core.error import HyperError, UserError
from hyper_core.http import Request, Response
from hyper_core.proto.h1 import _codec
from hyper_core.proto.h1._client import ClientDispatcher as _ClientDispatcher
from hyper_core.proto.h1._client_config import ClientConfig as _ClientConfig
from hyper_core.proto.h1._client_io import _Exchange
from hyper_core.proto.h1._codec import MIN_BUF_SIZE as _MIN_BUF_SIZE
from hyper_core.proto.h1._parse import HeadLimits as _HeadLimits
from hyper_core.rt import IO
from hyper_core.upgrade import Parts

__all__ = [
    "DEFAULT_MAX_BUF_SIZE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_NAME_SIZE",
    "DEFAULT_MAX_HEADER_VALUE_SIZE",
    "DEFAULT_MAX_INFORMATIONAL_RESPONSES",
    "DEFAULT_MAX_REASON_SIZE",
    "Builder",
    "Connection",
    "Parts",
    "SendRequest",
    "TrySendError",
    "UpgradeableConnection",
    "handshake",
]

#: hyper's default bound on a response head, in bytes (8192 + 4096 * 100);
#: also the largest read the adaptive read strategy asks for.
DEFAULT_MAX_BUF_SIZE: Final = 417_792
#: hyper's default limit on header fields in a response head.
DEFAULT_MAX_HEADERS: Final = 100
#: Longest header field name in a response, in bytes (hyper's limit).
DEFAULT_MAX_HEADER_NAME_SIZE: Final = 65_535
#: Longest header field value in a response, in bytes.
DEFAULT_MAX_HEADER_VALUE_SIZE: Final = 65_536
#: Longest reason phrase in a status line, in bytes.
DEFAULT_MAX_REASON_SIZE: Final = 8_192
#: Informational (1xx) responses accepted before a final response: a
#: ``100 Continue``, a few ``103 Early Hints`` and the odd ``102 Processing``
#: fit with room to spare; a server that sends them without end is cut off
#: after 16 instead of holding the request until an outer timeout.
DEFAULT_MAX_INFORMATIONAL_RESPONSES: Final = 16

B = TypeVar("B", bound=Body)


@final
class Builder:
    """Options for HTTP/1 client connections; reusable for many connections.

    Args:
        title_case_headers: Write request header names in Title-Case
            (``x-custom`` as ``X-Custom``) instead of as given (hyper: off).
        preserve_header_case: Record the spelling of received header names in
            a :class:`~hyper_core.ext.HeaderCaseMap` in each response's
            extensions, and spell request header names as a map found in the
            request's extensions says (hyper: off). :class:`~hyper_core.http.Headers`
            keeps the case it is given either way.
        max_buf_size: Largest response head accepted, in bytes (hyper's
            default 417,792 = 8192 + 4096 * 100; at least 8192). A larger head
            is a :class:`~hyper_core.error.ParseError` with ``status_hint``
            431. It also caps the adaptive read size.
        max_headers: Most header fields in a response head, and in a trailer
            section (hyper: 100); more is a ``ParseError``.
        max_header_name_size: Longest header name in a response head or its
            trailers, in bytes (hyper's 65,535); longer is a ``ParseError``
            (``status_hint`` 431).
        max_header_value_size: Longest header value, in bytes (default
            65,536); longer is a ``ParseError`` (``status_hint`` 431).
        max_reason_size: Longest reason phrase, in bytes (default 8,192);
            longer is a ``ParseError``. The status line's version and code
            have fixed sizes by grammar.
        max_informational_responses: Most informational (1xx) responses
            accepted before the final response of one request (default 16;
            each is bounded by ``max_buf_size`` too); one more is a
            ``ParseError``, raised as soon as it arrives. ``None``: no limit
            (hyper has none).
        allow_obsolete_multiline_headers_in_responses: Accept obsolete line
            folding in response heads, replacing each fold with one space
            (hyper: off, and a folded header is a ``ParseError``).
        allow_spaces_after_header_name_in_responses: Read a response header
            line with spaces or tabs between the name and the colon
            (``Name : value``) as ``Name: value``, as RFC 9112 section 5.1
            tells a proxy to (hyper: off, and such a line is a
            ``ParseError``).
        ignore_invalid_headers_in_responses: Drop invalid header lines of a
            response head (a bad name, a control byte in a value, no colon,
            obs-fold when not allowed) instead of failing with
            ``ParseError`` (hyper: off). A line holding NUL, CR or LF, or
            one that could be read as ``Content-Length``,
            ``Transfer-Encoding`` or ``Host`` (or continues one), still
            fails: dropping it could frame the response differently from
            another parser (see the HTTP/1 parsing guide).
        http09_responses: Accept an HTTP/0.9 answer to the connection's first
            request: when the bytes received do not start with an HTTP/1.0
            or HTTP/1.1 status line, the response is ``200``, version
            ``Version.HTTP_09``, no headers, and its
            body is every byte up to the close (none for ``HEAD``); the
            connection is not reused (hyper: off, and such an answer is a
            ``ParseError``). Later responses must be HTTP/1.x.
        read_buf_exact_size: Ask the IO for exactly this many bytes per read
            instead of the adaptive size (which starts at 8 KiB, doubles
            after a read that filled it, up to ``max_buf_size``, and halves
            after two reads that used less than half). ``None``: adaptive.
        writev: How the pieces of a streamed request body (chunk header,
            data, CRLF) reach the IO; the bytes on the wire are the same.
            ``None`` (auto, hyper's default): one vectored ``send_many`` when
            the IO has it, else joined into one ``send``. ``True``: never
            copied: ``send_many``, else one ``send`` per piece. ``False``:
            always joined into one ``send``.

    Raises:
        ValueError: ``max_buf_size`` below 8192, ``max_headers`` or
            ``read_buf_exact_size`` below 1, ``max_informational_responses``
            negative, or ``http09_responses`` with the h11 codec
            (``HYPER_CORE_H1_CODEC=h11``), which cannot read HTTP/0.9.
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        *,
        title_case_headers: bool = False,
        preserve_header_case: bool = False,
        max_buf_size: int = DEFAULT_MAX_BUF_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_header_name_size: int = DEFAULT_MAX_HEADER_NAME_SIZE,
        max_header_value_size: int = DEFAULT_MAX_HEADER_VALUE_SIZE,
        max_reason_size: int = DEFAULT_MAX_REASON_SIZE,
        max_informational_responses: int | None = DEFAULT_MAX_INFORMATIONAL_RESPONSES,
        allow_obsolete_multiline_headers_in_responses: bool = False,
        allow_spaces_after_header_name_in_responses: bool = False,
        ignore_invalid_headers_in_responses: bool = False,
        http09_responses: bool = False,
        read_buf_exact_size: int | None = None,
        writev: bool | None = None,
    ) -> None:
        for name, size in (
            ("max_header_name_size", max_header_name_size),
            ("max_header_value_size", max_header_value_size),
            ("max_reason_size", max_reason_size),
        ):
            if size < 1:
                raise ValueError(f"{name} must be at least 1 byte")
        if max_informational_responses is not None and max_informational_responses < 0:
            raise ValueError("max_informational_responses cannot be negative")
        if max_buf_size < _MIN_BUF_SIZE:
            raise ValueError(f"max_buf_size must be at least {_MIN_BUF_SIZE} bytes")
        if max_headers < 1:
            raise ValueError("max_headers must be at least 1")
        if read_buf_exact_size is not None and read_buf_exact_size < 1:
            raise ValueError("read_buf_exact_size must be at least 1 byte")
        if http09_responses and _codec.DEFAULT_IMPL == "h11":
            raise ValueError(
                "http09_responses is not supported by the h11 codec (HYPER_CORE_H1_CODEC=h11): "
                "h11 reads only HTTP/1.x status lines"
            )
        self._config = _ClientConfig(
            title_case_headers=title_case_headers,
            preserve_header_case=preserve_header_case,
            max_buf_size=max_buf_size,
            max_headers=max_headers,
            max_informational=max_informational_responses,
            allow_obs_fold=allow_obsolete_multiline_headers_in_responses,
            read_buf_exact_size=read_buf_exact_size,
            limits=_HeadLimits(
                name=max_header_name_size, value=max_header_value_size, reason=max_reason_size
            ),
            http09_responses=http09_responses,
            allow_space_before_colon=allow_spaces_after_header_name_in_responses,
            ignore_invalid_headers=ignore_invalid_headers_in_responses,
            writev=writev,
        )

    async def handshake(self, io: IO) -> tuple[SendRequest, Connection]:
        """Start an HTTP/1 client connection over ``io``.

        Nothing is written or read yet: HTTP/1 has no connection preface.

        Returns:
            ``(sender, connection)``. Run ``connection.serve()`` (or ``await
            connection``) in a task for as long as the sender is used.
        """
        dispatcher = _ClientDispatcher(io, self._config)
        return SendRequest(dispatcher), Connection(dispatcher)


async def handshake(
    io: IO,
    *,
    title_case_headers: bool = False,
    preserve_header_case: bool = False,
    max_buf_size: int = DEFAULT_MAX_BUF_SIZE,
    max_headers: int = DEFAULT_MAX_HEADERS,
    max_header_name_size: int = DEFAULT_MAX_HEADER_NAME_SIZE,
    max_header_value_size: int = DEFAULT_MAX_HEADER_VALUE_SIZE,
    max_reason_size: int = DEFAULT_MAX_REASON_SIZE,
    max_informational_responses: int | None = DEFAULT_MAX_INFORMATIONAL_RESPONSES,
    allow_obsolete_multiline_headers_in_responses: bool = False,
    allow_spaces_after_header_name_in_responses: bool = False,
    ignore_invalid_headers_in_responses: bool = False,
    http09_responses: bool = False,
    read_buf_exact_size: int | None = None,
    writev: bool | None = None,
) -> tuple[SendRequest, Connection]:
    """``Builder(**options).handshake(io)``: see :class:`Builder` for the options."""
    builder = Builder(
        title_case_headers=title_case_headers,
        preserve_header_case=preserve_header_case,
        max_buf_size=max_buf_size,
        max_headers=max_headers,
        max_header_name_size=max_header_name_size,
        max_header_value_size=max_header_value_size,
        max_reason_size=max_reason_size,
        max_informational_responses=max_informational_responses,
        allow_obsolete_multiline_headers_in_responses=allow_obsolete_multiline_headers_in_responses,
        allow_spaces_after_header_name_in_responses=allow_spaces_after_header_name_in_responses,
        ignore_invalid_headers_in_responses=ignore_invalid_headers_in_responses,
        http09_responses=http09_responses,
        read_buf_exact_size=read_buf_exact_size,
        writev=writev,
    )
    return await builder.handshake(io)


@final
class SendRequest:
    """Sends requests over one HTTP/1 connection, one at a time.

    HTTP/1 cannot multiplex: a request may be sent once the previous
    response has been read to its end (or its body closed; see
    :meth:`send_request`). Use it as an async context manager to close it.
    """

    __slots__ = ("_dispatcher",)

    def __init__(self, dispatcher: _ClientDispatcher) -> None:
        self._dispatcher = dispatcher

    def is_ready(self) -> bool:
        """Whether :meth:`send_request` would be accepted now."""
        return self._dispatcher.is_ready()

    def is_closed(self) -> bool:
        """Whether the connection can never send another request.

        True once the server closed, the connection failed, was upgraded,
        ended after a ``Connection: close`` exchange or an unfinished body,
        or this sender was closed.
        """
        return self._dispatcher.is_closed()

    async def ready(self) -> None:
        """Wait until a request can be sent (the previous exchange is over).

        Raises:
            ClosedError: the connection is closed; ``__cause__`` says why
                (``None`` after a normal close).

        Cancel safety: cancelling the wait changes nothing.
        """
        await self._dispatcher.ready()

    async def send_request(self, request: Request[B]) -> Response[Incoming]:
        """Send ``request`` and return the response once its head is read.

        The request is written exactly as given: the URI in the form given
        (origin, absolute, or authority for CONNECT; the fragment is never
        sent), no ``Host`` added, framing by hyper's rules (a user's
        ``Content-Length`` / ``Transfer-Encoding`` is kept; otherwise a known
        length gets ``content-length``, an unknown one is chunked, except
        that GET, HEAD, CONNECT and HTTP/1.0 requests of unknown length send
        no body). A request body other than ``Full``/``Empty`` is streamed by
        the connection task, with backpressure, while the response is read.

        1xx responses other than 101 are skipped, each passed to the callback
        set with :func:`hyper_core.ext.on_informational`. After a 101 or a
        2xx to CONNECT the response has an empty body and
        ``hyper_core.upgrade.on(response)`` gives the raw connection (the
        connection must be run with :meth:`Connection.with_upgrades`). A
        reason phrase other than the canonical one is in
        ``response.extensions`` as :class:`~hyper_core.ext.ReasonPhrase`.

        The response body is read from the connection as it is consumed. The
        connection is busy until that body is read to its end; closing the
        body (``await response.body.aclose()``) before its end closes the
        connection, unless the rest had already arrived.

        It waits until the connection is being driven (``serve()`` started
        in some task), so the two may be started in either order.

        Raises:
            CanceledError: the connection was not ready ("connection was not
                ready": busy with another exchange, or closed); nothing was
                written. Also when the connection task was cancelled, or the
                connection closed for another reason, before the response.
            IncompleteMessageError: the server closed before the response
                head was complete.
            ParseError: the response head is invalid.
            UserError: the request body failed, or is longer than its
                Content-Length (``__cause__`` is the body's error).
            BodyWriteAbortedError: the request body ended before its
                Content-Length.
            ClosedError: the connection failed while the request was written.

        Cancel safety: cancelling closes the connection (later calls fail
        with ``CanceledError``), since part of the exchange may be on the
        wire; so does any error other than "not ready".
        """
        return await self._dispatcher.send(request)

    async def try_send_request(self, request: Request[B]) -> Response[Incoming]:
        """Like :meth:`send_request`, but give the request back if it was never written.

        Raises:
            TrySendError: the send failed; ``.error`` is what
                :meth:`send_request` would have raised, and ``.request`` is
                the request when none of it was written (so it can be
                retried on another connection), else ``None``.
        """
        started: list[_Exchange] = []
        try:
            return await self._dispatcher.send(request, started)
        except HyperError as exc:
            written = bool(started) and started[0].written
            raise TrySendError(exc, None if written else request) from exc

    async def aclose(self) -> None:
        """Close the sender: the connection ends once the exchange in flight is over.

        Idempotent; does not wait.
        """
        self._dispatcher.close_sender()

    def close(self) -> None:
        """:meth:`aclose`, for synchronous code."""
        self._dispatcher.close_sender()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "ready" if self.is_ready() else "closed" if self.is_closed() else "busy"
        return f"<http1.SendRequest {state}>"


@final
class Connection:
    """The driver of an HTTP/1 client connection: await it in a task.

    It ends (returns ``None``) when the sender is closed and the exchange in
    flight is over, when the server closes, or when the connection fails or
    is upgraded. Errors go to the request or body that was waiting (and
    ``SendRequest.ready()`` reports them), so this never raises them: in a
    task group, a failed exchange must not cancel the tasks beside it. It
    closes the IO when it ends, including when cancelled.
    """

    __slots__ = ("_dispatcher",)

    def __init__(self, dispatcher: _ClientDispatcher) -> None:
        self._dispatcher = dispatcher

    async def serve(self) -> None:
        """Drive the connection until it ends (see the class docstring).

        A 101 or CONNECT 2xx response ends it without closing the IO, and
        ``upgrade.on(response)`` then fails with ``UserError``: use
        :meth:`with_upgrades` to hand the IO over, or :meth:`into_parts`.

        Raises:
            UserError: the connection is already being driven.

        Cancel safety: cancelling closes the IO; the request in flight fails
        with ``CanceledError``, a body being read with
        ``IncompleteMessageError``.
        """
        await self._dispatcher.run(upgrades=False, shutdown=True)

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()

    async def without_shutdown(self) -> None:
        """Drive the connection like :meth:`serve` but leave the IO open at the end.

        Then :meth:`into_parts` gives the IO back, with any bytes read ahead.
        The IO is closed all the same if the connection ends mid-exchange
        with a read waiting that the IO cannot interrupt (see
        :class:`hyper_core.rt.ReceiveWatcher`): closing it ends that read.
        """
        await self._dispatcher.run(upgrades=False, shutdown=False)

    def into_parts(self) -> Parts:
        """Return the IO and the bytes read from it but not used.

        Raises:
            UserError: the connection is being driven right now.
        """
        dispatcher = self._dispatcher
        if dispatcher.running:
            raise UserError("cannot take the IO of a connection that is being driven")
        return Parts(dispatcher.io, dispatcher.read_buf())

    def with_upgrades(self) -> UpgradeableConnection:
        """Return a driver that hands the IO to ``upgrade.on(response)`` after an upgrade."""
        return UpgradeableConnection(self._dispatcher)

    def __repr__(self) -> str:
        return f"<http1.Connection running={self._dispatcher.running}>"


@final
class UpgradeableConnection:
    """A :class:`Connection` that supports upgrades; await it in a task.

    After a 101 response (to a request with ``Upgrade``) or a 2xx response
    to CONNECT it ends without closing the IO and fulfils
    ``hyper_core.upgrade.on(response)`` with an
    :class:`~hyper_core.upgrade.Upgraded` that replays the bytes read past
    the response head.
    """

    __slots__ = ("_dispatcher",)

    def __init__(self, dispatcher: _ClientDispatcher) -> None:
        self._dispatcher = dispatcher

    async def serve(self) -> None:
        """Drive the connection until it ends or upgrades (see :meth:`Connection.serve`)."""
        await self._dispatcher.run(upgrades=True, shutdown=True)

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()
