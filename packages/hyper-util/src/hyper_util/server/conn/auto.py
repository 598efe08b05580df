"""HTTP/1.1 and HTTP/2 on one connection: :class:`Builder` and :class:`Connection`.

What belongs here: hyper-util's ``server::conn::auto``: choosing the HTTP
version of an accepted connection and handing it to hyper-core's
:mod:`~hyper_core.server.conn.http1` or :mod:`~hyper_core.server.conn.http2`
connection, plus the optional HTTP/1.1 ``Upgrade: h2c``.

Usage::

    from hyper_core.server.conn import http1, http2
    from hyper_util.server.conn import auto

    builder = auto.Builder(
        http1=http1.Builder(header_read_timeout=10),
        http2=http2.Builder(max_concurrent_streams=100),
    )

    async def handle(stream):            # e.g. from anyio's listener.serve()
        await builder.serve_connection(stream, service)

Strategy: the version comes from, in order: the ``*_only`` setting, the ALPN
protocol a TLS layer negotiated (``alpn="h2"`` or ``"http/1.1"``), or the
first bytes of the connection. Sniffing reads only until it can decide: the
first byte that differs from the 24-byte HTTP/2 client preface
(:data:`H2_PREFACE`), or an end of stream, means HTTP/1;
all 24 bytes matching means HTTP/2. The bytes read are replayed to the
chosen protocol, so nothing is lost or reordered (a request shorter than
the preface works): put back into the stream when it can take them back
(``unreceive``, the asyncio fast path's capability), else through a small
rewind IO in front of it (which costs a call per read for the life of the
connection). Per-version options are the
per-version builders themselves, passed in whole: every option hyper-core
has is reachable, with its own defaults and validation, and nothing is
copied here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any, Final, final

import anyio

from hyper_core.error import HeaderTimeoutError, UserError
from hyper_core.http import Version
from hyper_core.rt import IO, Timer, default_timer, receive_or_eof
from hyper_core.server.conn import http1 as _h1
from hyper_core.server.conn import http2 as _h2
from hyper_core.service import Service
from hyper_core.upgrade import Upgraded

from . import _h2c
from ._h2c import DEFAULT_MAX_UPGRADE_BODY

__all__ = [
    "DEFAULT_MAX_UPGRADE_BODY",
    "DEFAULT_VERSION_READ_TIMEOUT",
    "FIRST_REQUEST_GRACE",
    "H2_PREFACE",
    "Builder",
    "Connection",
]

#: The HTTP/2 client connection preface (RFC 9113 section 3.4).
H2_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Seconds a new connection has to send enough bytes to tell its version
#: (hyper's ``header_read_timeout`` default, 30 s: the version read is the
#: start of reading the first request head, which that timeout bounds).
DEFAULT_VERSION_READ_TIMEOUT: Final = 30.0
#: Seconds a connection that has sent nothing yet keeps after a graceful
#: shutdown began, for the request most likely on its way (hyper-core's
#: HTTP/1 server gives the same; hyper closes at once).
FIRST_REQUEST_GRACE: Final = 0.25
#: Bytes asked of the IO per read while sniffing (anyio's default receive
#: size: whatever arrives is kept and replayed, so more costs nothing).
_READ_SIZE: Final = 65536
_ALPN: Final = {"h2": Version.HTTP_2, "http/1.1": Version.HTTP_11}
_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


@final
class Builder:
    """Options for auto (HTTP/1.1 + HTTP/2) server connections; reusable.

    Args:
        http1: The HTTP/1 options (default ``http1.Builder()``). Its
            ``upgrades`` option applies to upgrades the service performs.
        http2: The HTTP/2 options (default ``http2.Builder()``).
        http1_only: Serve only HTTP/1 and skip sniffing (an HTTP/2 client
            gets a ``400``-class parse error from the HTTP/1 side).
        http2_only: Serve only HTTP/2 and skip sniffing (an HTTP/1 client
            is answered with GOAWAY(PROTOCOL_ERROR) by the HTTP/2 side).
        h2c_upgrade: Honour HTTP/1.1 ``Upgrade: h2c`` requests on
            connections without ALPN (RFC 7540 section 3.2): answer ``101
            Switching Protocols`` and continue in HTTP/2, the upgrade request
            being stream 1. Off by default, as in hyper (which lacks it); RFC
            9113 deprecates the mechanism, but curl ``--http2`` uses it.
        h2c_max_body_size: Largest body, in bytes, an upgrade request may
            carry (it is read into memory to become stream 1); requests with a
            larger or chunked body are served over HTTP/1.1 (default 64 KiB).
        version_read_timeout: Seconds a new connection has to send enough
            bytes to tell HTTP/1 from HTTP/2 (default 30 s, hyper's
            ``header_read_timeout``); ``None`` waits forever. Expiry closes the
            connection with :class:`~hyper_core.error.HeaderTimeoutError`.
        timer: The clock for ``version_read_timeout``; default
            :func:`hyper_core.rt.default_timer`.

    Raises:
        ValueError: Contradictory or out-of-range options.
    """

    __slots__ = (
        "_h2c",
        "_h2c_max_body",
        "_http1",
        "_http1_only",
        "_http2",
        "_http2_only",
        "_timeout",
        "_timer",
    )

    def __init__(
        self,
        *,
        http1: _h1.Builder | None = None,
        http2: _h2.Builder | None = None,
        http1_only: bool = False,
        http2_only: bool = False,
        h2c_upgrade: bool = False,
        h2c_max_body_size: int = DEFAULT_MAX_UPGRADE_BODY,
        version_read_timeout: float | None = DEFAULT_VERSION_READ_TIMEOUT,
        timer: Timer | None = None,
    ) -> None:
        if http1_only and http2_only:
            raise ValueError("http1_only and http2_only exclude each other")
        if h2c_upgrade and (http1_only or http2_only):
            raise ValueError("h2c_upgrade needs both HTTP/1 and HTTP/2")
        if h2c_max_body_size < 0:
            raise ValueError("h2c_max_body_size cannot be negative")
        if version_read_timeout is not None and not version_read_timeout > 0:
            raise ValueError("version_read_timeout must be a positive number of seconds or None")
        self._http1 = http1 if http1 is not None else _http1_builder()
        self._http2 = http2 if http2 is not None else _http2_builder()
        self._http1_only = http1_only
        self._http2_only = http2_only
        self._h2c = h2c_upgrade
        self._h2c_max_body = h2c_max_body_size
        self._timeout = version_read_timeout
        self._timer = timer if timer is not None else default_timer()

    @property
    def http1(self) -> _h1.Builder:
        """The HTTP/1 options."""
        return self._http1

    @property
    def http2(self) -> _h2.Builder:
        """The HTTP/2 options."""
        return self._http2

    def is_http1_available(self) -> bool:
        """Whether connections may speak HTTP/1."""
        return not self._http2_only

    def is_http2_available(self) -> bool:
        """Whether connections may speak HTTP/2."""
        return not self._http1_only

    def serve_connection(
        self, io: IO, service: Service[Any], *, alpn: str | bytes | None = None
    ) -> Connection:
        """Return a connection serving ``service`` over ``io``; await it to run it.

        Args:
            io: The accepted byte stream (after the TLS handshake, if any).
            service: ``async def (Request[Incoming]) -> Response[Body]``.
            alpn: The protocol ALPN selected, if a TLS layer negotiated one:
                ``"h2"`` serves HTTP/2 and ``"http/1.1"`` HTTP/1, both without
                sniffing (and without h2c upgrades: those are for cleartext).
                ``None`` or ``""`` (no ALPN): sniff the first bytes.

        Raises:
            ValueError: ``alpn`` names a protocol this server does not speak.
        """
        if isinstance(alpn, bytes):
            alpn = alpn.decode("ascii", "replace")
        if alpn and alpn not in _ALPN:
            raise ValueError(f"unsupported ALPN protocol {alpn!r}: expected 'h2' or 'http/1.1'")
        return Connection(self, io, service, _ALPN[alpn] if alpn else None)

    def __repr__(self) -> str:
        mode = "http1_only" if self._http1_only else "http2_only" if self._http2_only else "auto"
        return (
            f"auto.Builder({mode}, h2c_upgrade={self._h2c}, "
            f"http1={self._http1!r}, http2={self._http2!r})"
        )


def _http1_builder() -> _h1.Builder:
    return _h1.Builder()


def _http2_builder() -> _h2.Builder:
    return _h2.Builder()


@final
class Connection:
    """One auto server connection; ``await conn`` serves it to the end.

    Awaiting (or :meth:`serve`) returns when the connection ends normally and
    raises what the per-version connection raises
    (:class:`~hyper_core.error.HyperError` subclasses), plus
    :class:`~hyper_core.error.HeaderTimeoutError` when the version read
    timed out and :class:`~hyper_core.error.UserError` when ALPN chose a
    version the builder excludes. The IO is closed at the end, except after
    an HTTP/1 upgrade the service took over. Cancelling the await closes the
    connection.
    """

    __slots__ = (
        "_alpn",
        "_builder",
        "_inner",
        "_io",
        "_service",
        "_shutdown",
        "_sniff_scope",
        "_started",
        "_version",
    )

    def __init__(
        self, builder: Builder, io: IO, service: Service[Any], alpn: Version | None
    ) -> None:
        self._builder = builder
        self._io = io
        self._service = service
        self._alpn = alpn
        self._version: Version | None = None
        self._inner: _h1.Connection | _h2.Connection | None = None
        self._sniff_scope: anyio.CancelScope | None = None
        self._shutdown = False
        self._started = False

    @property
    def version(self) -> Version | None:
        """The HTTP version being served (``HTTP_11`` for HTTP/1); ``None`` until known."""
        return self._version

    def graceful_shutdown(self) -> None:
        """Finish what is in flight, then close; works in every phase.

        Before the version is known (including before the first byte) the
        connection keeps up to ``FIRST_REQUEST_GRACE`` seconds for its first
        request, which is most likely on its way (closing it unread would
        reset it), then closes. On HTTP/1 the request in flight completes
        with ``connection: close``;
        on HTTP/2 GOAWAY is sent and open streams complete. Safe to call
        from another task, before or while the connection runs, and more
        than once.
        """
        self._shutdown = True
        scope = self._sniff_scope
        if scope is not None:
            scope.deadline = min(scope.deadline, anyio.current_time() + FIRST_REQUEST_GRACE)
        if self._inner is not None:
            self._inner.graceful_shutdown()

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()

    async def serve(self) -> None:
        """Serve the connection to its end (see the class doc).

        Raises:
            HyperError: the connection ended abnormally.
            UserError: the connection was already run, or ALPN chose a
                version the builder excludes.
        """
        if self._started:
            raise UserError("a connection can be run only once")
        self._started = True
        builder = self._builder
        io: IO = self._io
        handed_over = False  # the per-version connection closes the IO from then on
        try:
            version = self._alpn
            if version is Version.HTTP_2 and builder._http1_only:
                raise UserError("ALPN chose h2 but the builder is http1_only")
            if version is Version.HTTP_11 and builder._http2_only:
                raise UserError("ALPN chose http/1.1 but the builder is http2_only")
            if version is None:
                if builder._http1_only:
                    version = Version.HTTP_11
                elif builder._http2_only:
                    version = Version.HTTP_2
            if version is None:
                sniffed = await self._read_version()
                if sniffed is None:
                    return
                version, prefix = sniffed
                if prefix:
                    # The sniffed bytes go back in front: into the stream
                    # itself if it can take them, else through an Upgraded,
                    # which replays read-ahead before reading the IO
                    # (hyper's Rewind).
                    unreceive = getattr(io, "unreceive", None)
                    if unreceive is not None:
                        unreceive(prefix)
                    else:
                        io = Upgraded(io, prefix)
                    # This frame waits as long as the connection: it keeps
                    # none of the sniffing (memory per idle connection).
                    unreceive = None
                sniffed = None
                prefix = b""
            self._version = version
            handed_over = True
            if version is Version.HTTP_2:
                await self._serve_http2(io)
            else:
                conn, upgrader = self._http1(io)
                await conn.serve()
                if upgrader is not None:
                    await self._serve_h2c(io, upgrader)
        finally:
            if not handed_over:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._io.aclose()

    async def _read_version(self) -> tuple[Version, bytes] | None:
        """Read until the version is known; ``None`` if shut down or broken meanwhile."""
        builder = self._builder
        timer = builder._timer
        timeout = builder._timeout
        buf = b""
        version: Version | None = None
        with contextlib.ExitStack() as stack:
            deadline = (
                stack.enter_context(timer.deadline(timer.now() + timeout))
                if timeout is not None
                else None
            )
            with anyio.CancelScope() as self._sniff_scope:
                if self._shutdown:  # before it started: the same grace
                    self._sniff_scope.deadline = anyio.current_time() + FIRST_REQUEST_GRACE
                try:
                    while version is None:
                        data = await receive_or_eof(self._io, _READ_SIZE)
                        if not data:
                            version = Version.HTTP_11  # EOF: HTTP/1 ends it cleanly
                            break
                        buf += data
                        n = min(len(buf), len(H2_PREFACE))
                        if buf[:n] != H2_PREFACE[:n]:
                            version = Version.HTTP_11
                        elif n == len(H2_PREFACE):
                            version = Version.HTTP_2
                except _IO_ERRORS:
                    return None  # the client vanished before saying anything
            self._sniff_scope = None
        if deadline is not None and deadline.expired:
            raise HeaderTimeoutError("the client did not send enough bytes to tell its version")
        if version is None:  # shut down, and nothing came within the grace
            return None
        return version, buf

    async def _serve_http2(self, io: IO) -> None:
        conn = self._builder._http2.serve_connection(io, self._service)
        self._inner = conn
        if self._shutdown:
            conn.graceful_shutdown()
        await conn.serve()

    def _http1(self, io: IO) -> tuple[_h1.Connection, _h2c.H2cUpgrader | None]:
        # The HTTP/1 connection, made here and awaited by serve() itself: one
        # coroutine frame fewer held by every idle keep-alive connection.
        builder = self._builder
        upgrader = None
        service: Service[Any] = self._service
        if builder._h2c and self._alpn is None:
            upgrader = _h2c.H2cUpgrader(self._service, builder._h2c_max_body, self._may_upgrade)
            service = upgrader
        conn = builder._http1.serve_connection(io, service)
        if upgrader is not None:
            upgrader.connection = conn
        self._inner = conn
        if self._shutdown:
            conn.graceful_shutdown()
        return conn, upgrader

    async def _serve_h2c(self, io: IO, upgrader: _h2c.H2cUpgrader) -> None:
        # After the HTTP/1 connection ended: HTTP/2 if it upgraded (h2c).
        if upgrader.on_upgrade is None or upgrader.request is None:
            return
        builder = self._builder
        try:
            upgraded = await upgrader.on_upgrade  # already settled when serve() returns
            h2conn = builder._http2.serve_upgraded_connection(
                upgraded, self._service, upgrader.request
            )
        except BaseException:
            # Nobody owns the IO now (if the upgrade failed, HTTP/1 closed it already).
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await io.aclose()
            raise
        self._inner = h2conn
        self._version = Version.HTTP_2
        if self._shutdown:
            h2conn.graceful_shutdown()
        await h2conn.serve()

    def _may_upgrade(self) -> bool:
        return not self._shutdown

    def __repr__(self) -> str:
        return f"<auto.Connection version={self._version} io={self._io!r}>"
