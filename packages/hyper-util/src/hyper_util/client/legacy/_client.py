"""The pooled HTTP client: :class:`Client`.

What belongs here: the face of hyper-util's legacy client: its options and
their checks, entering and closing it (the task group that drives its
connections), its statistics, the conveniences (``get``, ``post``...) and
:meth:`Client.request`: checking a request, choosing HTTP/3 or the TCP
pool, and retrying it once when that is safe. The work on a pooled
connection (getting one from the pool or opening one, rewriting the
request for it, sending it with the timeouts, handing back a response
whose body returns the connection at its end) is in ``_exchange``, whose
:class:`~._exchange.ExchangeBase` ``Client`` subclasses.

Strategy:

* ``Client`` sets the state and :class:`~._exchange.ExchangeBase` works on
  it; both are one object, so the request path reaches its methods and
  attributes with the same lookups as if they were written here.
* The usual request takes the shortest path: the pool key and origin-form
  target of a URI are kept per ``Uri`` object (:class:`~._rules.Targets`),
  the conveniences keep the ``Uri`` parsed from a string, and the pool
  answers the common "reuse the newest idle connection" case first.
* Timeouts use the client's :class:`~hyper_core.rt.Timer` (tests use
  ``FakeTimer``) and add no work when unset: a deadline scope is opened only
  around a phase that has a limit.
* Leaving ``async with`` closes the pool's connections (idle HTTP/2 ones
  with a GOAWAY, a few seconds' grace) and then the task group.

Why :class:`Client` is somewhat over 400 lines: about 90 are the
documentation of its 23 options and about 90 their checks and state; the
rest is public API. What is not public (the connection work) is already in
``_exchange``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import ssl
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Final, Self, final

import anyio
import anyio.abc

from hyper_core.body import Body, Empty, Incoming
from hyper_core.client.conn import http1, http2
from hyper_core.error import ClosedError, UserError
from hyper_core.http import HeaderInit, Headers, Method, Request, Response, Uri, UriForm, Version
from hyper_core.rt import AnyioTimer, Deadline, Executor, Timer, default_timer
from hyper_util.client.legacy._exchange import ExchangeBase, Retry
from hyper_util.client.legacy._h3 import Http3Pool
from hyper_util.client.legacy._pool import Pool
from hyper_util.client.legacy._pooled import PooledConn
from hyper_util.client.legacy._rules import (
    HostValues,
    Targets,
    as_body,
    pool_key,
)
from hyper_util.client.legacy._timeouts import Timeouts
from hyper_util.client.legacy.connect._http import Connector, HttpConnector
from hyper_util.rt._backend import current_library

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_POOL_IDLE_TIMEOUT", "Client", "ClientStatistics"]

#: Seconds an unused pooled connection is kept (hyper-util's default, 90 s).
#: Keep it below the servers' keep-alive timeout (nginx: 75 s) to avoid
#: reusing a connection the server is closing.
DEFAULT_POOL_IDLE_TIMEOUT: Final = 90.0
#: Seconds a connect may take (Go's net/http default dialer: 30 s); hyper has
#: no default, which lets an unreachable host hang a request forever.
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
#: Seconds ``aclose()`` lets idle connections say goodbye (HTTP/2 GOAWAY)
#: before their drivers are cancelled.
_CLOSE_GRACE: Final = 5.0

_NEVER: Final = math.inf
_ABSOLUTE: Final = UriForm.ABSOLUTE
_GET: Final = Method.GET
_HTTP_11: Final = Version.HTTP_11


@final
@dataclasses.dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A snapshot of the pool, from :meth:`Client.statistics`.

    Attributes:
        open_connections: Connections open or being opened (what
            ``max_connections`` caps).
        idle_connections: Connections in the pool carrying no request.
        http2_connections: Shared HTTP/2 connections in the pool.
        waiting: Requests waiting for a connection.
        connections_opened: Connections opened since the client started.
        reused: Requests sent on a connection that already existed.
        retries: Requests sent a second time (see ``retry_canceled_requests``).
        http3_connections: QUIC connections open or being opened (one per
            origin; not counted in ``open_connections``, nor capped by
            ``max_connections``).
        http3_requests: Requests sent over HTTP/3 since the client started.
    """

    open_connections: int
    idle_connections: int
    http2_connections: int
    waiting: int
    connections_opened: int
    reused: int
    retries: int
    http3_connections: int = 0
    http3_requests: int = 0


#: Parsed URIs kept by the conveniences (``get(url)``...), which are often
#: called with the same few URLs: parsing is a visible part of a request.
_URI_CACHE_SIZE: Final = 256


@final
class Client(ExchangeBase):
    """A pooled HTTP/1.1 and HTTP/2 client (hyper-util's ``legacy::Client``).

    Use it as ``async with Client() as client:``; the block owns the tasks
    that drive the connections, and leaving it closes them::

        async with Client() as client:
            response = await client.get("http://example.com/")
            body = await collect(response.body)   # the connection goes back to the pool

    Redirects are not followed, and nothing is decompressed: the response is
    what the server sent.

    Args:
        connector: Opens connections (default: :class:`HttpConnector`, plain
            ``http`` only; hyper-tls provides an HTTPS connector).
        pool_idle_timeout: Seconds an unused connection stays in the pool
            (hyper-util: 90 s). Always enforced, with ``timer``. ``None``:
            kept until the server closes it.
        pool_max_idle_per_host: Idle HTTP/1 connections kept per origin
            (``None``: no limit, hyper-util's default). 0 turns pooling off:
            every request gets a new connection, closed after its response.
        pool_max_idle: Idle connections kept, all origins together (HTTP/2
            ones without a request included; ``None``: no limit). A
            connection that goes idle beyond it is closed (httpx's
            ``max_keepalive_connections``).
        max_connections: Connections open at once, all origins together
            (``None``: no limit, as in hyper). Beyond it requests wait, up to
            ``pool_timeout``; an idle connection of another origin is closed
            to make room.
        http2_only: Speak HTTP/2 with prior knowledge (h2c) on every
            connection. Otherwise HTTP/2 is used where the connector says
            ALPN chose it (``Connected.alpn_h2``).
        http2_max_connections_per_host: HTTP/2 connections per origin (1, as
            RFC 9113 section 9.1 asks). Above 1, a further one is opened
            when every stream slot of the others is taken.
        retry_canceled_requests: Resend, once and on a new connection, a
            request that a pooled connection failed before writing it (hyper:
            on). Beyond hyper, an idempotent request with a ``Full`` or empty
            body is also resent when a reused HTTP/1 connection closed before
            any of the response arrived (the keep-alive race, RFC 9110
            section 9.2.2).
        set_host: Add ``Host`` to HTTP/1 requests that have none (hyper: on),
            without the port when it is the scheme's default.
        connect_timeout: Seconds to open a connection, TLS included (30 s).
            This and the next three limits can be replaced per request by a
            :class:`~hyper_util.client.legacy.Timeouts` in its extensions.
        pool_timeout: Seconds to wait for a connection when
            ``max_connections`` are all busy (``None``: no limit).
        read_timeout: Seconds from the start of sending to the response head,
            and between pieces of the response body (``None``: no limit).
        write_timeout: Seconds any single write may stay blocked (a peer not
            reading; ``None``: no limit).
        timeout: Seconds for the whole exchange: waiting, connecting,
            sending, and reading the body to its end (``None``: no limit).
        http1: Options of HTTP/1 connections (default ``http1.Builder()``).
        http09_responses: Accept an HTTP/0.9 answer (no status line) to a
            new HTTP/1 connection's first request, as ``200`` with the bytes
            up to the close as its body (hyper-util: off). The same as
            ``http1=http1.Builder(http09_responses=True)``; with an
            ``http1`` builder, set it there.
        http2: Options of HTTP/2 connections (default: ``http2.Builder`` with
            this client's timer and executor).
        executor: Runs the tasks that drive connections (and, through the
            default ``http2`` builder, the tasks that stream HTTP/2 request
            bodies), as hyper's ``Builder::new(executor)``. Default: the
            client's own task group. With an executor, leaving the client
            closes every connection and waits (a few seconds at most) for
            those tasks to end; the executor must outlive the client.
        http3: Speak HTTP/3 (needs ``hyper-util[http3]``) to ``https``
            origins that are known to: listed in ``http3_origins``, or
            advertised by ``Alt-Svc`` on an earlier HTTPS response (cached
            for its max-age). One QUIC connection per origin; when its
            handshake fails the request goes over TCP and the origin is
            left to TCP for a while. See ``docs/guides/http3.md``.
        http3_origins: Prior knowledge for ``http3``: ``"host"`` or
            ``"host:port"`` origins that speak HTTP/3 on their HTTPS port,
            or ``"*"`` for every ``https`` origin.
        http3_cafile: Trust only this CA file (PEM) for HTTP/3, as
            ``--cacert`` does (default: the operating system's store).
        http3_ssl_context: Without ``http3_cafile``, trust the CAs loaded
            into this context (the one given to the TLS connector), and
            verify only if it does; client certificates do not carry over
            (QUIC's TLS is aioquic's own).
        timer: The clock of every timeout (default: anyio's; tests pass a
            ``hyper_core.testing.FakeTimer``).

    Raises:
        ValueError: A limit out of range.
    """

    def __init__(
        self,
        connector: Connector | None = None,
        *,
        pool_idle_timeout: float | None = DEFAULT_POOL_IDLE_TIMEOUT,
        pool_max_idle_per_host: int | None = None,
        pool_max_idle: int | None = None,
        max_connections: int | None = None,
        http2_only: bool = False,
        http2_max_connections_per_host: int = 1,
        retry_canceled_requests: bool = True,
        set_host: bool = True,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        pool_timeout: float | None = None,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        timeout: float | None = None,
        http1: http1.Builder | None = None,
        http2: http2.Builder | None = None,
        executor: Executor | None = None,
        http3: bool = False,
        http3_origins: Iterable[str] = (),
        http3_cafile: str | None = None,
        http3_ssl_context: ssl.SSLContext | None = None,
        timer: Timer | None = None,
        http09_responses: bool = False,
    ) -> None:
        for name, value in (
            ("pool_idle_timeout", pool_idle_timeout),
            ("connect_timeout", connect_timeout),
            ("pool_timeout", pool_timeout),
            ("read_timeout", read_timeout),
            ("write_timeout", write_timeout),
            ("timeout", timeout),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive seconds (or None)")
        if pool_max_idle_per_host is not None and pool_max_idle_per_host < 0:
            raise ValueError("pool_max_idle_per_host cannot be negative")
        if pool_max_idle is not None and pool_max_idle < 0:
            raise ValueError("pool_max_idle cannot be negative")
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if http2_max_connections_per_host < 1:
            raise ValueError("http2_max_connections_per_host must be at least 1")
        if http09_responses and http1 is not None:
            raise ValueError(
                "http09_responses=True with an http1 builder: pass "
                "http1.Builder(..., http09_responses=True) instead"
            )
        self._timer: Timer = timer if timer is not None else default_timer()
        # The pool's clock, read twice per request (see __aenter__).
        self._now: Callable[[], float] = self._timer.now
        self._connector: Connector = connector if connector is not None else HttpConnector()
        self._h1 = http1 if http1 is not None else _http1_builder(http09_responses)
        self._h2 = http2 if http2 is not None else _http2_builder(self._timer, executor)
        self._executor = executor
        # The cancel scope of each driver run by the executor (not in our task group).
        self._live: dict[PooledConn, anyio.CancelScope] = {}
        self._http2_only = http2_only
        self._retry = retry_canceled_requests
        self._idle_timeout = pool_idle_timeout
        self._timeouts = Timeouts(
            connect=connect_timeout, read=read_timeout, write=write_timeout, pool=pool_timeout
        )
        self._total_timeout = timeout
        self._pool = Pool(
            idle_timeout=pool_idle_timeout,
            max_idle_per_host=pool_max_idle_per_host,
            max_idle=pool_max_idle,
            max_connections=max_connections,
            h2_max_per_host=http2_max_connections_per_host,
        )
        self._tg: anyio.abc.TaskGroup | None = None
        self._entered = False
        self._retries = 0
        self._active = 0  # exchanges holding a connection
        self._drivers = 0
        self._drivers_done: anyio.Event | None = None
        self._host_values = HostValues() if set_host else None
        self._uris: dict[str | Uri, Uri] = {}
        self._targets = Targets()
        self._h3 = (
            Http3Pool(
                origins=http3_origins,
                cafile=http3_cafile,
                ssl_context=http3_ssl_context,
                now=self._timer.now,
            )
            if http3
            else None
        )

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._entered:
            raise UserError("a Client can be entered only once")
        self._entered = True
        # The default timer reads the event loop's clock through anyio, which
        # asks sniffio which library runs on every call (about 2 us, several
        # times per request); on asyncio that clock is the loop's own
        # ``time()``, read directly from here on (the same values: the
        # client lives on this loop).
        if type(self._timer) is AnyioTimer and current_library() == "asyncio":
            self._timer = _LoopClockTimer(asyncio.get_running_loop())
            self._now = self._timer.now
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        if self._idle_timeout is not None:
            tg.start_soon(self._reap_idle, name="hyper_util Client idle reaper")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection and stop the client's tasks (what leaving ``async with`` does).

        Idle connections are closed politely (HTTP/2: GOAWAY), within a few
        seconds; exchanges still in flight are cut off. Idempotent. Call it
        from the task that entered the client (anyio's task group rule).

        Cancel safety: the closing is shielded; it always completes.
        """
        tg = self._tg
        if tg is None:
            return
        self._tg = None
        with anyio.CancelScope(shield=True):
            self._close(self._pool.close_all())
            h3 = self._h3
            if h3 is not None:
                h3.close_all()  # GOAWAY, then CONNECTION_CLOSE with H3_NO_ERROR
            # Idle connections get a moment to say goodbye; exchanges still
            # in flight would hold the exit up, so then it is immediate.
            if self._drivers and self._active == 0:
                done = self._drivers_done = anyio.Event()
                with anyio.move_on_after(_CLOSE_GRACE):
                    await done.wait()
            if h3 is not None and h3.active_streams == 0:
                with anyio.move_on_after(_CLOSE_GRACE):
                    await h3.wait_closed()
            if self._live:
                # Drivers run by the executor are not in our task group: cut
                # them off as its cancellation would, and see them end.
                for scope in self._live.values():
                    scope.cancel()
                done = self._drivers_done = anyio.Event()
                with anyio.move_on_after(_CLOSE_GRACE):
                    await done.wait()
        # The task group's own scope must be the innermost one when it exits.
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)

    def statistics(self) -> ClientStatistics:
        """Return a snapshot of the pool's counters."""
        pool = self._pool
        h3 = self._h3
        return ClientStatistics(
            open_connections=pool.open_connections,
            idle_connections=pool.idle_connections,
            http2_connections=pool.http2_connections,
            waiting=pool.waiting,
            connections_opened=pool.opened,
            reused=pool.reused,
            retries=self._retries,
            http3_connections=0 if h3 is None else h3.open_connections,
            http3_requests=0 if h3 is None else h3.requests,
        )

    def is_extended_connect_protocol_enabled(self, uri: str | Uri) -> bool:
        """Whether the pool has an HTTP/2 or HTTP/3 connection to ``uri``'s origin allowing it.

        True when a request to that origin would go on a shared HTTP/2
        connection already open whose server enabled
        ``SETTINGS_ENABLE_CONNECT_PROTOCOL`` (RFC 8441), or on an HTTP/3
        connection whose server did (RFC 9220): a CONNECT with a
        ``:protocol`` (``hyper_core.client.conn.http2.Protocol``), such as a
        WebSocket, can then be sent through :meth:`request`. Opens nothing.
        The stream a tunnel keeps open holds a stream slot, and the
        connection is not idle, until the tunnel is closed.

        Raises:
            InvalidRequestError: ``uri`` is not absolute.
        """
        key = pool_key(Request("GET", self._uri(uri)))
        if self._h3 is not None and self._h3.connect_protocol_enabled(key):
            return True
        return any(
            isinstance(conn.sender, http2.SendRequest)
            and conn.sender.is_extended_connect_protocol_enabled()
            for conn in self._pool.shared_http2(key)
        )

    # ----------------------------------------------------------- conveniences

    async def get(self, uri: str | Uri, *, headers: HeaderInit | None = None) -> Response[Incoming]:
        """Send a GET request; see :meth:`request`."""
        # Request("GET", ...) without its conversions: the parts are typed.
        request = Request.from_parts(_GET, self._uri(uri), _HTTP_11, Headers(headers), Empty())
        return await self.request(request)

    async def head(
        self, uri: str | Uri, *, headers: HeaderInit | None = None
    ) -> Response[Incoming]:
        """Send a HEAD request; see :meth:`request`."""
        return await self.request(Request("HEAD", self._uri(uri), headers=headers))

    async def delete(
        self, uri: str | Uri, *, headers: HeaderInit | None = None
    ) -> Response[Incoming]:
        """Send a DELETE request; see :meth:`request`."""
        return await self.request(Request("DELETE", self._uri(uri), headers=headers))

    async def post(
        self,
        uri: str | Uri,
        body: Body | bytes | None = None,
        *,
        headers: HeaderInit | None = None,
    ) -> Response[Incoming]:
        """Send a POST request with ``body`` (bytes become ``Full``); see :meth:`request`."""
        return await self.request(
            Request("POST", self._uri(uri), headers=headers, body=as_body(body))
        )

    async def put(
        self,
        uri: str | Uri,
        body: Body | bytes | None = None,
        *,
        headers: HeaderInit | None = None,
    ) -> Response[Incoming]:
        """Send a PUT request with ``body`` (bytes become ``Full``); see :meth:`request`."""
        return await self.request(
            Request("PUT", self._uri(uri), headers=headers, body=as_body(body))
        )

    def _uri(self, uri: str | Uri) -> Uri:
        if type(uri) is Uri:
            return uri
        cache = self._uris
        parsed = cache.get(uri)
        if parsed is None:
            parsed = Uri(uri)
            if len(cache) >= _URI_CACHE_SIZE:
                cache.clear()
            cache[uri] = parsed
        return parsed

    # ---------------------------------------------------------------- request

    async def request(self, request: Request[Any]) -> Response[Incoming]:
        """Send ``request`` and return the response once its head has arrived.

        The URI must be absolute (``http://host/path``), or authority-form
        for CONNECT (``host:port``; port 443 means https). The request is
        rewritten for the connection: origin-form target on HTTP/1 (absolute
        through a forwarding proxy), ``Host`` added on HTTP/1, and the
        proxy's ``Proxy-Authorization``. The request object itself is not
        changed; its body is shared with the request sent.

        Read the response body to its end (or ``aclose()`` it): an HTTP/1
        connection is reused only after its body was read to the end (a
        body that arrived whole with the head counts as read). The
        response's extensions hold the connection's
        :class:`~hyper_util.client.legacy.connect.Connected`.

        Raises:
            InvalidRequestError: Relative URI, unsupported version, CONNECT
                on HTTP/1.0, or HTTP/2 requested on an HTTP/1 connection.
            ConnectError: Opening the connection failed (``ProxyError`` and
                ``ConnectTimeoutError`` are kinds of it).
            PoolTimeoutError: No connection within ``pool_timeout``.
            ReadTimeoutError: No response head within ``read_timeout``.
            WriteTimeoutError: A write was blocked for ``write_timeout``.
            TotalTimeoutError: The total ``timeout`` passed.
            ClosedError: The client is closed, or not entered.
            hyper_core.error.HyperError: The exchange failed
                (``IncompleteMessageError``, ``ParseError``,
                ``ProtocolError``, ...), after any retry.

        Cancel safety: a cancelled request closes (HTTP/1) or resets (HTTP/2)
        what it was using; nothing is left in the pool half-used.
        """
        if self._tg is None:
            raise ClosedError(
                "the client is closed or not entered: use 'async with Client() as client:'"
            )
        key, origin = self._targets.lookup(request)
        uri = request.uri
        timeouts = request.extension(Timeouts)
        if timeouts is None:
            timeouts = self._timeouts
        total = self._total_timeout
        total_at = _NEVER if total is None else self._timer.now() + total
        first: tuple[PooledConn, bool] | None = None
        h3 = self._h3
        if h3 is not None:
            route = h3.route(self._tg, key)
            if route is not None:
                if route.sender is None:  # prior knowledge, QUIC still connecting
                    first = await self._race(route, key, uri, total_at, timeouts)
                if route.sender is not None:
                    response = await h3.send(route, request, self._timer, timeouts.read, total_at)
                    if response is not None:
                        return response
        for attempt in (0, 1):
            # A retry never takes another idle HTTP/1 connection: it failed
            # on one that the server had closed, and the next idle one may be
            # just as stale (a server closing idle connections closes many).
            if first is not None:
                (conn, reused), first = first, None
            else:
                conn, reused = await self._acquire(key, uri, total_at, timeouts, fresh=attempt == 1)
            try:
                return await self._exchange(
                    conn, reused, request, key, origin, total_at, attempt, timeouts
                )
            except Retry as retry:
                if attempt:  # pragma: no cover (_exchange does not ask twice)
                    raise retry.error from None
                self._retries += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        pool = self._pool
        return (
            f"<Client open={pool.open_connections} idle={pool.idle_connections} "
            f"http2_only={self._http2_only}>"
        )


@final
class _LoopClockTimer:
    """The default timer with the asyncio loop's clock read directly (see ``__aenter__``)."""

    __slots__ = ("now",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.now: Callable[[], float] = loop.time

    async def sleep(self, seconds: float, /) -> None:
        await _ANYIO_TIMER.sleep(seconds)

    async def sleep_until(self, deadline: float, /) -> None:
        await _ANYIO_TIMER.sleep_until(deadline)

    def deadline(self, at: float, /) -> Deadline:
        return _ANYIO_TIMER.deadline(at)


_ANYIO_TIMER: Final = default_timer()


def _http1_builder(http09_responses: bool) -> http1.Builder:
    return http1.Builder(http09_responses=http09_responses)


def _http2_builder(timer: Timer, executor: Executor | None) -> http2.Builder:
    return http2.Builder(timer=timer, executor=executor)
