"""The work on pooled connections: get one, open one, send on it, give it back.

What belongs here: :class:`ExchangeBase`, the half of
:class:`~hyper_util.client.legacy.Client` below :meth:`Client.request`:
acquiring a connection from the pool (or opening one through the connector,
with its driver task), the exchange on it with the read, write and total
timeouts, handing the connection back when the response is over, closing
what the pool gave up, and the idle reaper. ``Client`` subclasses it and
sets its state; :class:`Retry` is how an exchange asks ``request`` to send
again.

Strategy:

* All pool decisions are made by :class:`~._pool.Pool`, synchronously; they
  return the connections to close, and this module closes them. Closing is
  ``SendRequest.aclose()``, which never waits: the connection's driver task
  then ends and closes the IO itself (shielded, in hyper-core), so nothing
  here blocks on a peer while making a decision.
* Each connection is driven by a task in the client's own task group
  (``async with Client() as client``); when the driver ends, the connection
  leaves the pool and frees its slot. An HTTP/2 connection that gets a
  GOAWAY or misses a keep-alive PING reports ``is_closed()`` at once, so no
  new request goes to it from that moment.
* HTTP/1 connections go back to the pool only once the response body was
  read off the connection to its end (a wrapper around the body says when);
  a body closed early closes its connection, as in hyper. A response
  without a body, or whose whole body arrived with its head (hyper-core
  then holds it in memory), returns its connection before ``request()``
  returns, with no wrapper.
* The pool's ``take_idle`` answers the common "reuse the newest idle
  connection" case before the general ``checkout``.
* A base class, not a helper object: ``self._acquire(...)`` and the
  attributes it reads cost the same wherever the method is defined (the
  type's method cache, the instance's dict), where a helper object would
  add an attribute lookup to every call on the request path.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, Final

import anyio
import anyio.abc

from hyper_core.body import Incoming
from hyper_core.client.conn import TrySendError, http1, http2
from hyper_core.error import CanceledError, ClosedError, HyperError
from hyper_core.http import Request, Response, Uri
from hyper_core.rt import Executor, Timer
from hyper_util.client.legacy._connecting import open_io
from hyper_util.client.legacy._errors import (
    ConnectError,
    PoolTimeoutError,
    ReadTimeoutError,
    TotalTimeoutError,
    WriteTimeoutError,
)
from hyper_util.client.legacy._h3 import H3Route, Http3Pool, race_tcp
from hyper_util.client.legacy._pool import Pool
from hyper_util.client.legacy._pooled import CheckoutKind, PooledConn, PoolKey
from hyper_util.client.legacy._rules import HostValues, may_retry, prepare
from hyper_util.client.legacy._timeouts import Timeouts
from hyper_util.client.legacy._wrappers import (
    PooledBodySource,
    WriteTimedOut,
    find_cause,
    timed_write_io,
)
from hyper_util.client.legacy.connect._http import Connector

__all__ = ["ExchangeBase", "Retry"]

_NEVER: Final = math.inf


class Retry(Exception):
    """Internal: the request may be sent again on another connection."""

    def __init__(self, error: HyperError) -> None:
        super().__init__(str(error))
        self.error = error


class ExchangeBase:
    """The connection work of :class:`~hyper_util.client.legacy.Client` (see the module docstring).

    Not used alone: ``Client.__init__`` sets every attribute declared here,
    and ``Client.__aenter__`` the task group and the clock.
    """

    _timer: Timer
    _now: Callable[[], float]
    _connector: Connector
    _h1: http1.Builder
    _h2: http2.Builder
    _executor: Executor | None
    _live: dict[PooledConn, anyio.CancelScope]
    _http2_only: bool
    _retry: bool
    _idle_timeout: float | None
    _pool: Pool
    _tg: anyio.abc.TaskGroup | None
    _active: int
    _drivers: int
    _drivers_done: anyio.Event | None
    _host_values: HostValues | None
    _h3: Http3Pool | None

    # ------------------------------------------------------------- acquiring

    async def _race(
        self, route: H3Route, key: PoolKey, uri: Uri, total_at: float, timeouts: Timeouts
    ) -> tuple[PooledConn, bool] | None:
        """A TCP connection if TCP beat the QUIC handshake; None if QUIC won (or lost alone)."""
        race = race_tcp(
            route,
            lambda: self._acquire(key, uri, total_at, timeouts),
            lambda acquired: self._finished(acquired[0], True),
        )
        if total_at == _NEVER:
            return await race
        with self._timer.deadline(total_at):
            return await race
        raise TotalTimeoutError("the exchange took longer than the total timeout")

    async def _acquire(
        self,
        key: PoolKey,
        uri: Uri,
        total_at: float,
        timeouts: Timeouts,
        *,
        fresh: bool = False,
    ) -> tuple[PooledConn, bool]:
        """Get a connection for ``key``: (connection, whether it was reused).

        ``fresh``: open a new connection rather than take an idle HTTP/1 one
        (see :meth:`Pool.checkout`).
        """
        pool = self._pool
        if self._tg is not None and not fresh:
            conn = pool.take_idle(key, self._now())
            if conn is not None:
                self._active += 1
                return conn, True
        timer = self._timer
        want_h2 = self._http2_only
        pool_at = _NEVER
        while True:
            if pool.closed or self._tg is None:
                raise ClosedError("the client is closed")
            checkout = pool.checkout(key, self._now(), want_h2=want_h2, fresh=fresh)
            if checkout.to_close:
                self._close(checkout.to_close)
            kind = checkout.kind
            if kind is CheckoutKind.REUSE:
                assert checkout.conn is not None
                self._active += 1
                return checkout.conn, True
            if kind is CheckoutKind.CONNECT:
                return await self._connect(key, uri, total_at, timeouts), False
            waiter = checkout.waiter
            assert waiter is not None
            if pool_at == _NEVER and timeouts.pool is not None:
                pool_at = timer.now() + timeouts.pool
            at = min(pool_at, total_at)
            try:
                if at == _NEVER:
                    await waiter.event.wait()
                else:
                    with timer.deadline(at):
                        await waiter.event.wait()
            except BaseException:
                # Cancelled: give back whatever the pool handed over meanwhile.
                self._close(pool.cancel_wait(waiter, timer.now()))
                raise
            if not waiter.event.is_set():
                self._close(pool.cancel_wait(waiter, timer.now()))
                if total_at <= pool_at:
                    raise TotalTimeoutError("the exchange took longer than the total timeout")
                raise PoolTimeoutError(
                    f"no connection available within the pool timeout ({timeouts.pool} s)"
                )
            if waiter.result is not None:
                self._active += 1
                return waiter.result, True
            if waiter.granted_connect:
                waiter.granted_connect = False
                return await self._connect(key, uri, total_at, timeouts), False
            # Woken without a connection (an HTTP/2 connect failed): look again.

    async def _connect(
        self, key: PoolKey, uri: Uri, total_at: float, timeouts: Timeouts
    ) -> PooledConn:
        """Open a connection (its slot is reserved) and lend it to the caller."""
        pool = self._pool
        h2_attempt = pool.begin_connect(key, want_h2=self._http2_only)
        try:
            conn = await self._open(key, uri, total_at, timeouts)
        except BaseException:
            to_close = pool.connect_failed(key)
            pool.connect_done(key, h2_attempt=h2_attempt)
            self._close(to_close)
            raise
        pool.add(conn, self._timer.now())
        pool.connect_done(key, h2_attempt=h2_attempt)
        self._active += 1
        return conn

    async def _open(
        self, key: PoolKey, uri: Uri, total_at: float, timeouts: Timeouts
    ) -> PooledConn:
        io, connected = await open_io(
            self._connector,
            key,
            uri,
            timer=self._timer,
            connect_timeout=timeouts.connect,
            total_at=total_at,
        )
        _, host, port = key
        # Always wrapped: a later request on this connection may carry a
        # write timeout of its own (``Timeouts``); unlimited, a write costs
        # one extra call.
        timed = timed_write_io(io, self._timer, timeouts.write)
        io = timed
        h2 = self._http2_only or connected.alpn_h2
        tg = self._tg
        try:
            if tg is None:
                raise ClosedError("the client is closed")
            if h2:
                sender2, connection2 = await self._h2.handshake(io)
                conn = PooledConn(key, sender2, connected, h2=True, write_io=timed)
                self._spawn_driver(tg, conn, connection2.serve)
            else:
                sender1, connection1 = await self._h1.handshake(io)
                conn = PooledConn(key, sender1, connected, h2=False, write_io=timed)
                self._spawn_driver(tg, conn, connection1.with_upgrades().serve)
        except BaseException as exc:
            # The handshake's error is the one to report, not the close's.
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await io.aclose()
            if isinstance(exc, (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)):
                raise ConnectError(f"HTTP/2 handshake with {host}:{port} failed") from exc
            raise
        return conn

    def _spawn_driver(self, tg: anyio.abc.TaskGroup, conn: PooledConn, serve: Any) -> None:
        self._drivers += 1
        if self._executor is None:
            tg.start_soon(self._drive, conn, serve, name=f"hyper_util connection {conn.key}")
        else:
            self._executor.spawn(self._drive, conn, serve)

    async def _drive(self, conn: PooledConn, serve: Any) -> None:
        try:
            if self._executor is None:
                await serve()
            else:
                with anyio.CancelScope() as scope:
                    self._live[conn] = scope
                    await serve()
        finally:
            self._live.pop(conn, None)
            self._close(self._pool.remove(conn))
            self._drivers -= 1
            done = self._drivers_done
            if done is not None and self._drivers == 0:
                done.set()

    # ---------------------------------------------------------------- sending

    async def _exchange(
        self,
        conn: PooledConn,
        reused: bool,
        request: Request[Any],
        key: PoolKey,
        origin: Uri | None,
        total_at: float,
        attempt: int,
        timeouts: Timeouts,
    ) -> Response[Incoming]:
        """Send on ``conn``; hand the connection back (or keep it lent to the body)."""
        try:
            prepared = prepare(request, conn, key, self._host_values, origin)
        except BaseException:
            self._finished(conn, True)
            raise
        sender = conn.sender
        timer = self._timer
        write_io = conn.write_io
        if write_io is not None:
            write_io.timeout = timeouts.write
        read_timeout = timeouts.read
        read_at = _NEVER if read_timeout is None else timer.now() + read_timeout
        at = min(read_at, total_at)
        response: Response[Incoming] | None = None
        try:
            if at == _NEVER:
                response = await sender.try_send_request(prepared)
            else:
                with timer.deadline(at):
                    response = await sender.try_send_request(prepared)
        except TrySendError as exc:
            self._finished(conn, False)
            error = exc.error
            write_timeout = find_cause(error, WriteTimedOut)
            if write_timeout is not None:
                raise WriteTimeoutError(
                    f"a write was blocked for longer than {timeouts.write} s"
                ) from error
            if attempt == 0 and reused and self._retry and may_retry(conn, exc, request):
                raise Retry(error) from None
            if isinstance(error, CanceledError) and isinstance(error.__cause__, HyperError):
                # "Not ready" because the connection had already failed: its
                # failure is the answer (say, a server that speaks only
                # HTTP/2 answering an HTTP/1.1 connection with SETTINGS).
                reason = error.__cause__
                raise reason from reason.__cause__  # its own chain, not ours
            # Keep the error's own cause (the OS error behind a broken
            # connection); only the TrySendError wrapper is left out.
            raise error from error.__cause__
        except BaseException:
            self._finished(conn, False)
            raise
        if response is None:
            self._finished(conn, False)
            if total_at <= read_at:
                raise TotalTimeoutError("the exchange took longer than the total timeout")
            raise ReadTimeoutError(f"no response head within the read timeout ({read_timeout} s)")
        response.extensions.insert(conn.connected)
        if self._h3 is not None:
            self._h3.observe(key, response)
        body = response.body
        if body.is_end_stream() or (not conn.http2 and conn.sender.is_ready()):
            # No body, or (HTTP/1) the whole body came with the head and the
            # connection is ready again: it goes back now; the body is read
            # from memory, with nothing left to time out.
            self._finished(conn, True)
            return response
        source = PooledBodySource(
            body, lambda complete: self._finished(conn, complete), timer, read_timeout, total_at
        )
        response.body = Incoming(source)
        return response

    def _finished(self, conn: PooledConn, complete: bool) -> None:
        """The exchange on ``conn`` is over: return, release or discard the connection."""
        self._active -= 1
        pool = self._pool
        now = self._now()
        if conn.http2:
            to_close = pool.release(conn, now)
        elif not complete:
            to_close = pool.discard(conn)
        elif conn.sender.is_ready() or conn.sender.is_closed():
            to_close = pool.checkin(conn, now)
        else:
            # The response is over but the request body is still being
            # written: the connection comes back once it is ready.
            self._active += 1
            tg = self._tg
            if tg is None:
                self._active -= 1
                to_close = pool.discard(conn)
            else:
                tg.start_soon(self._checkin_when_ready, conn)
                return
        if to_close:
            self._close(to_close)

    async def _checkin_when_ready(self, conn: PooledConn) -> None:
        sender = conn.sender
        assert isinstance(sender, http1.SendRequest)
        try:
            await sender.ready()
        except HyperError:
            self._finished(conn, False)
        else:
            self._finished(conn, True)

    # ------------------------------------------------------------ closing

    def _close(self, conns: list[PooledConn]) -> None:
        """Close connections the pool gave up: their drivers then end and close the IO."""
        for conn in conns:
            conn.sender.close()

    # ------------------------------------------------------------- idle reaper

    async def _reap_idle(self) -> None:
        """Close idle connections as their idle timeout passes (always, with the timer).

        With nothing idle it sleeps one idle timeout: a connection that goes
        idle meanwhile expires no sooner than that, so it needs no wake-up
        (and a busy client pays nothing for the reaper).
        """
        pool = self._pool
        timer = self._timer
        timeout = self._idle_timeout
        assert timeout is not None
        while True:
            at = pool.next_expiry()
            if at == _NEVER:
                await timer.sleep(timeout)
                continue
            await timer.sleep_until(at)
            self._close(pool.expire(timer.now()))
