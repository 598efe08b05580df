"""HTTP/1.1 server connections: :class:`Builder`, :class:`Connection`, :class:`Parts`.

What belongs here: the public face of the HTTP/1 server (hyper's
``hyper::server::conn::http1``): the options with their defaults and units,
and the connection object a caller awaits. The protocol work is in
:mod:`hyper_core.proto.h1` (codec and dispatcher).

Usage::

    from hyper_core.body import Full
    from hyper_core.http import Response
    from hyper_core.server.conn import http1

    async def hello(request):
        return Response(200, body=Full(b"Hello, World!"))

    async def handle(stream):          # e.g. from anyio's listener.serve()
        try:
            await http1.Builder().serve_connection(stream, hello)
        except HyperError:
            pass                       # a bad client: log it, keep serving others

Strategy: the :class:`Builder` checks options once; each
:class:`Connection` wraps one dispatcher and owns the IO until it ends: it
closes the IO when done, except after an upgrade (the IO then belongs to the
upgrade's new owner) or when run with :meth:`Connection.without_shutdown`.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Final, final

from hyper_core.error import UserError
from hyper_core.proto.h1._codec import MIN_BUF_SIZE as _MIN_BUF_SIZE
from hyper_core.proto.h1._parse import HeadLimits as _HeadLimits
from hyper_core.proto.h1._server import ServerConfig as _ServerConfig
from hyper_core.proto.h1._server import ServerDispatcher as _ServerDispatcher
from hyper_core.proto.h1._server_watchdog import share_watchdog
from hyper_core.rt import IO, Timer, default_timer
from hyper_core.service import Service

__all__ = [
    "DEFAULT_HEADER_READ_TIMEOUT",
    "DEFAULT_MAX_BUF_SIZE",
    "DEFAULT_MAX_DRAIN_BYTES",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_NAME_SIZE",
    "DEFAULT_MAX_HEADER_VALUE_SIZE",
    "DEFAULT_MAX_METHOD_SIZE",
    "DEFAULT_MAX_URI_SIZE",
    "DEFAULT_SEND_STALL_TIMEOUT",
    "Builder",
    "Connection",
    "Parts",
    "share_watchdog",
]

#: hyper's default read/write buffer bound: 8192 + 4096 * 100 bytes.
DEFAULT_MAX_BUF_SIZE: Final = 417_792
#: hyper's default limit on header fields per head.
DEFAULT_MAX_HEADERS: Final = 100
#: Longest method token, in bytes; longer gets ``501`` (the longest
#: registered method has 17 bytes).
DEFAULT_MAX_METHOD_SIZE: Final = 64
#: Longest request target, in bytes; longer gets ``414`` (hyper's limit).
DEFAULT_MAX_URI_SIZE: Final = 65_534
#: Longest header field name, in bytes; longer gets ``431`` (hyper's limit).
DEFAULT_MAX_HEADER_NAME_SIZE: Final = 65_535
#: Longest header field value, in bytes; longer gets ``431``.
DEFAULT_MAX_HEADER_VALUE_SIZE: Final = 65_536
#: hyper's default header read timeout, in seconds.
DEFAULT_HEADER_READ_TIMEOUT: Final = 30.0
#: Bytes of an unread request body drained to keep the connection (64 KiB:
#: about what a client has already pushed into the socket buffers by the
#: time a response is written; draining more costs more than reconnecting).
DEFAULT_MAX_DRAIN_BYTES: Final = 65_536
#: Seconds one write of a response may wait for the client to read before
#: the connection is closed: nginx's ``send_timeout`` default (60 s), and the
#: HTTP/2 server's ``send_stall_timeout``.
DEFAULT_SEND_STALL_TIMEOUT: Final = 60.0


@final
class Builder:
    """Options for HTTP/1 server connections; reusable for many connections.

    Args:
        keep_alive: Serve more than one request per connection (hyper: on).
        half_close: Let a client shut down its write side after its request
            and still get the response (hyper: off). When off, an end of
            stream in the middle of a request ends the connection with
            :class:`~hyper_core.error.IncompleteMessageError`.
        max_buf_size: Largest request head, in bytes (hyper's default
            417,792 = 8192 + 4096 * 100); a larger head gets ``431``. At
            least 8192.
        max_headers: Most header fields in a request (hyper: 100); more
            gets ``431``.
        max_method_size: Longest method token, in bytes (default 64); a
            longer one gets ``501``.
        max_uri_size: Longest request target, in bytes (hyper's 65,534); a
            longer one gets ``414``.
        max_header_name_size: Longest header name, in bytes (hyper's
            65,535), in the head and in trailers; longer gets ``431``.
        max_header_value_size: Longest header value, in bytes (default
            65,536), in the head and in trailers; longer gets ``431``.
            The version is 8 bytes by grammar (a malformed one gets ``400``,
            one other than 1.0 and 1.1 gets ``505``); see the HTTP/1 parsing
            guide for every bound and status.
        header_read_timeout: Seconds a client has to send a complete
            request head, counted from the moment the connection is idle
            (opened, or done with the previous request), so it is also the
            keep-alive idle timeout (hyper: 30 s). ``None`` disables it. The
            connection is closed when it fires.
        title_case_headers: Write response header names in Title-Case.
        preserve_header_case: Record the spelling of received header names
            in a :class:`~hyper_core.ext.HeaderCaseMap` in the request
            extensions, and apply a map found in a response's extensions.
        auto_date_header: Add a ``date`` field (cached, refreshed each
            second) to responses that have none (hyper: on).
        ignore_invalid_headers: Drop invalid header lines of a request (a
            bad name, whitespace before the colon, a control byte in a
            value, no colon, obs-fold) instead of answering ``400`` (hyper:
            off). A line holding NUL, CR or LF, or one that could be read as
            ``Content-Length``, ``Transfer-Encoding`` or ``Host`` (or
            continues one), is still answered ``400``: dropping it could
            frame or route the request differently from a proxy in front
            (see the HTTP/1 parsing guide).
        allow_multiple_spaces_in_request_line_delimiters: Accept runs of
            spaces between the method, the target and the version
            (``GET  /  HTTP/1.1``) instead of answering ``400`` (hyper: off).
            Spaces only (RFC 9112 section 3 lets a server also take HTAB, VT,
            FF and bare CR; neither hyper nor this does).
        pipeline_flush: Answer pipelined requests with one write: while more
            requests are already received, the responses to the ones
            before are held and written together (hyper: off). Held bytes
            are written before the connection reads, waits for a service,
            writes anything else, or holds more than ``max_buf_size`` bytes
            (or 64 KiB, the most one write carries, if that is less).
        writev: How the pieces of a streamed response body (chunk size
            line, data, CRLF) reach the IO; the bytes on the wire are the
            same. ``None`` (auto, hyper's default): one vectored
            ``send_many`` when the IO has it, else joined into one ``send``.
            ``True``: never copied: ``send_many``, else one ``send`` per
            piece. ``False``: always joined into one ``send``.
        timer: The clock for ``header_read_timeout`` and
            ``send_stall_timeout``; default :func:`hyper_core.rt.default_timer`
            (a timeout is never silently off for want of a timer).
        max_drain_bytes: Most bytes of a request body the service left
            unread that are read and discarded so the connection can serve
            the next request; past this the connection is closed instead
            (default 64 KiB).
        upgrades: Allow protocol upgrades (``101`` and ``CONNECT``) handed
            out through :func:`hyper_core.upgrade.on`; same as calling
            :meth:`Connection.with_upgrades` (hyper: opt-in).
        send_stall_timeout: Seconds one write of a response (at most 64 KiB)
            may wait for the client to read it (nginx's ``send_timeout``;
            default 60 s). When it passes, the connection is closed and
            ends with :class:`~hyper_core.error.TimeoutError`: a client
            that stops reading, or reads slower than about 1 KiB/s, cannot
            hold a connection (and the response in memory) for hours.
            ``None`` waits forever. Not in hyper.

    Raises:
        ValueError: an option is out of range.
    """

    __slots__ = ("_config", "_upgrades")

    def __init__(
        self,
        *,
        keep_alive: bool = True,
        half_close: bool = False,
        max_buf_size: int = DEFAULT_MAX_BUF_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_method_size: int = DEFAULT_MAX_METHOD_SIZE,
        max_uri_size: int = DEFAULT_MAX_URI_SIZE,
        max_header_name_size: int = DEFAULT_MAX_HEADER_NAME_SIZE,
        max_header_value_size: int = DEFAULT_MAX_HEADER_VALUE_SIZE,
        header_read_timeout: float | None = DEFAULT_HEADER_READ_TIMEOUT,
        title_case_headers: bool = False,
        preserve_header_case: bool = False,
        auto_date_header: bool = True,
        ignore_invalid_headers: bool = False,
        allow_multiple_spaces_in_request_line_delimiters: bool = False,
        pipeline_flush: bool = False,
        writev: bool | None = None,
        timer: Timer | None = None,
        max_drain_bytes: int = DEFAULT_MAX_DRAIN_BYTES,
        upgrades: bool = False,
        send_stall_timeout: float | None = DEFAULT_SEND_STALL_TIMEOUT,
    ) -> None:
        if max_buf_size < _MIN_BUF_SIZE:
            raise ValueError(f"max_buf_size must be at least {_MIN_BUF_SIZE} bytes")
        if max_headers < 1:
            raise ValueError("max_headers must be at least 1")
        if header_read_timeout is not None and not header_read_timeout > 0:
            raise ValueError("header_read_timeout must be a positive number of seconds or None")
        if max_drain_bytes < 0:
            raise ValueError("max_drain_bytes cannot be negative")
        for name, size in (
            ("max_method_size", max_method_size),
            ("max_uri_size", max_uri_size),
            ("max_header_name_size", max_header_name_size),
            ("max_header_value_size", max_header_value_size),
        ):
            if size < 1:
                raise ValueError(f"{name} must be at least 1 byte")
        if send_stall_timeout is not None and not send_stall_timeout > 0:
            raise ValueError("send_stall_timeout must be a positive number of seconds or None")
        self._config = _ServerConfig(
            limits=_HeadLimits(
                method=max_method_size,
                target=max_uri_size,
                name=max_header_name_size,
                value=max_header_value_size,
            ),
            keep_alive=keep_alive,
            half_close=half_close,
            max_buf_size=max_buf_size,
            max_headers=max_headers,
            header_read_timeout=header_read_timeout,
            title_case_headers=title_case_headers,
            preserve_header_case=preserve_header_case,
            auto_date_header=auto_date_header,
            ignore_invalid_headers=ignore_invalid_headers,
            allow_multiple_spaces_in_request_line=allow_multiple_spaces_in_request_line_delimiters,
            pipeline_flush=pipeline_flush,
            writev=writev,
            timer=timer if timer is not None else default_timer(),
            max_drain_bytes=max_drain_bytes,
            send_stall_timeout=send_stall_timeout,
        )
        self._upgrades = upgrades

    def serve_connection(self, io: IO, service: Service[Any]) -> Connection:
        """Return a connection serving ``service`` over ``io``; await it to run it.

        Args:
            io: The byte stream (any anyio byte stream, or another
                :class:`~hyper_core.rt.IO`).
            service: ``async def (Request[Incoming]) -> Response[Body]``.
        """
        conn = Connection(io, service, self._config)
        if self._upgrades:
            conn.with_upgrades()
        return conn

    def __repr__(self) -> str:
        c = self._config
        return (
            f"Builder(keep_alive={c.keep_alive}, max_buf_size={c.max_buf_size}, "
            f"max_headers={c.max_headers}, header_read_timeout={c.header_read_timeout})"
        )


@final
class Parts:
    """What is left of a connection that finished without shutting down.

    Attributes:
        io: The IO, still open.
        read_buf: Bytes read from ``io`` and not processed (for example the
            first bytes of the new protocol after an upgrade).
        service: The service the connection was serving.
    """

    __slots__ = ("io", "read_buf", "service")

    def __init__(self, io: IO, read_buf: bytes, service: Service[Any]) -> None:
        self.io = io
        self.read_buf = read_buf
        self.service = service

    def __repr__(self) -> str:
        return f"Parts(io={self.io!r}, read_buf=<{len(self.read_buf)} bytes>)"


@final
class Connection:
    """One HTTP/1 server connection; ``await conn`` serves it to the end.

    Awaiting (or :meth:`serve`) returns when the client closes between
    requests, keep-alive ends, :meth:`graceful_shutdown` finishes, or the
    connection upgrades; it raises a :class:`~hyper_core.error.HyperError`
    subclass when the connection ended abnormally:

    * :class:`~hyper_core.error.ParseError`: a malformed request (already
      answered with its ``status_hint`` when there is one: 400, 414, 431,
      501, 505);
    * :class:`~hyper_core.error.HeaderTimeoutError`: ``header_read_timeout``;
    * :class:`~hyper_core.error.IncompleteMessageError`: the client closed
      in the middle of a request;
    * :class:`~hyper_core.error.UserError`: the service raised (cause in
      ``__cause__``; the client got a 500 if no response had started) or
      returned something invalid (wrong Content-Length, a 1xx status);
    * :class:`~hyper_core.error.BodyError`: the response body raised while
      being written (the connection is aborted).

    Cancelling the await closes the connection.
    """

    __slots__ = ("_dispatcher", "_io", "_service", "_started")

    def __init__(self, io: IO, service: Service[Any], config: _ServerConfig) -> None:
        self._io = io
        self._service = service
        self._dispatcher = _ServerDispatcher(io, service, config)
        self._started = False

    def with_upgrades(self) -> Connection:
        """Allow upgrades through :func:`hyper_core.upgrade.on`; returns ``self``.

        Without it, a ``101`` or a 2xx to ``CONNECT`` is still written, the
        connection then ends, and awaiting ``upgrade.on(request)`` raises
        :class:`~hyper_core.error.UserError`; run it with
        :meth:`without_shutdown` to keep the IO and the bytes read ahead.
        """
        self._dispatcher.upgrades = True
        return self

    def graceful_shutdown(self) -> None:
        """Stop after the request in flight; close soon if there is none.

        The response in flight carries ``connection: close``. An idle
        keep-alive connection ends immediately. One that has not received a
        byte yet keeps up to 0.25 s for its first request, which is most
        likely on its way (closing it unread would reset it); that request
        is served with ``connection: close``. Does nothing after an upgrade.
        Safe to call from another task, before or while the connection runs.
        """
        self._dispatcher.graceful_shutdown()

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()

    def serve(self) -> Coroutine[Any, Any, None]:
        """Serve the connection to its end, then close the IO (see the class doc).

        Returns the dispatcher's own coroutine (an ``async def`` here would
        be one more frame held by every idle keep-alive connection): await
        it.

        Raises:
            HyperError: the connection ended abnormally.
            UserError: the connection was already run.
        """
        self._claim()
        return self._dispatcher.run(close_io=True)

    async def without_shutdown(self) -> Parts:
        """Serve the connection to its end without closing the IO.

        Returns:
            :class:`Parts`: the IO and the bytes read and not processed.

        Raises:
            HyperError: as :meth:`serve`.
        """
        self._claim()
        await self._dispatcher.run()
        return self.into_parts()

    def into_parts(self) -> Parts:
        """The IO and the unprocessed bytes, after :meth:`without_shutdown` or an upgrade.

        Raises:
            UserError: the connection is still running, was not run, or
                upgraded through :func:`hyper_core.upgrade.on` (the IO
                belongs to that upgrade).
        """
        dispatcher = self._dispatcher
        if not dispatcher.finished:
            raise UserError("into_parts() needs a connection that has finished")
        if dispatcher.upgraded and dispatcher.upgrades:
            raise UserError("the IO was handed to the upgrade (hyper_core.upgrade.on)")
        read_buf = (
            dispatcher.read_ahead if dispatcher.upgraded else dispatcher.codec.trailing_data[0]
        )
        return Parts(self._io, read_buf, self._service)

    def _claim(self) -> None:
        if self._started:
            raise UserError("a connection can be run only once")
        self._started = True

    def __repr__(self) -> str:
        return f"<http1.Connection io={self._io!r}>"
