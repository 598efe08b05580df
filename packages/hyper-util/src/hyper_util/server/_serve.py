"""``serve()``: a ready HTTP/1.1 + HTTP/2 server in one call.

What belongs here: the accept loop (listening on host and port, a Unix
socket, or a listener the caller gives), its connection cap, the graceful
shutdown it performs on SIGINT/SIGTERM or on an event, and the per
connection glue (auto builder, ALPN, access log). hyper 1.x removed its
``Server``; users asked for it back (hyper issue #3560): this is it.

Strategy:

* Listening goes through :mod:`hyper_util.rt`, which picks the running
  loop's fast path (asyncio's transport stream, trio's stream); ``fast`` is
  passed through, so that choice lives in one place. An anyio socket
  listener given as ``listener`` (also inside ``TLSListener``) is accepted
  from the same way: anyio's asyncio streams read whatever a client sends,
  read or not; the fast paths stop at a read-ahead bound.
* Backpressure on accept: a semaphore of ``max_connections`` slots is taken
  *before* ``accept``, so at the cap the loop stops accepting and new
  clients wait in the kernel's backlog (they are not accepted and then
  dropped). A failed accept (out of file descriptors...) is logged and
  retried after a short pause instead of spinning.
* One startup line (``listening on http://127.0.0.1:8000 (HTTP/1.1 and
  HTTP/2 (h2c))``), as uvicorn prints: through the ``hyper_util.server``
  logger at INFO when logging is set up (some handler would see it), else
  straight to stderr, so it shows without any logging setup and never twice.
* Shutdown, in order: stop accepting and close the listening socket (new
  connections are refused); if a connection was accepted less than
  ``FIRST_REQUEST_GRACE`` seconds ago, wait out the rest of that time, so a
  request already on its way (its bytes follow the handshake by a moment)
  is read and served instead of cut off by a close; signal every connection through
  :class:`~hyper_util.server.graceful.GracefulShutdown`, wait at most
  ``shutdown_timeout`` seconds, then close what is left. A second signal
  during the wait closes everything at once. Cancelling ``serve`` itself is
  a hard stop: every connection is closed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import socket
import stat
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, final

import anyio
import anyio.abc
from anyio.abc import SocketAttribute, SocketListener, TaskStatus
from anyio.streams.tls import TLSAttribute, TLSListener

from hyper_core.error import HyperError
from hyper_core.rt import IO
from hyper_core.server.conn.http1 import share_watchdog
from hyper_core.server.conn.http3 import Builder as Http3Builder
from hyper_core.service import Service
from hyper_util.rt import (
    DEFAULT_BACKLOG,
    AsyncioSocketListener,
    StreamListener,
    TrioSocketListener,
    create_tcp_listener,
    create_unix_listener,
)
from hyper_util.rt._backend import use_fast_path
from hyper_util.rt._connect import fast_listener
from hyper_util.server._access_log import AccessLogged, format_address
from hyper_util.server._http3 import Http3Side
from hyper_util.server.conn import auto
from hyper_util.server.graceful import GracefulShutdown

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "SERVER_LOGGER",
    "serve",
    "startup_line",
]

#: Most connections served at once (1,000: under the common 1,024 soft limit
#: on open files per process, ``ulimit -n``, with room for the listening
#: socket and the application's own files).
DEFAULT_MAX_CONNECTIONS: Final = 1000
#: Seconds connections get to finish after a shutdown signal before they are
#: closed (gunicorn's ``graceful_timeout`` default; ``docker stop`` allows 10 s,
#: Kubernetes 30 s, before SIGKILL).
DEFAULT_SHUTDOWN_TIMEOUT: Final = 30.0
#: Seconds the accept loop pauses after a failed accept (e.g. EMFILE), so a
#: lasting failure costs one log line per pause, not a busy loop.
ACCEPT_RETRY_DELAY: Final = 0.1
#: Seconds a just-accepted connection gets, once the shutdown began, to
#: deliver its first request before it is told to finish: a client sends the
#: request right after its handshake completes, so without this a connection
#: accepted a moment before the shutdown would be closed with its request
#: unread (the client sees a reset). Waited only after such an accept; the
#: auto connection gives a silent connection the same grace once signalled.
FIRST_REQUEST_GRACE: Final = auto.FIRST_REQUEST_GRACE
#: The name of every connection's task: one string, where anyio would
#: build one per task from the function's name (memory per idle connection).
_CONNECTION_TASK_NAME: Final = "hyper_util.server connection"
#: The logger for server events (start, stop, failed connections).
SERVER_LOGGER: Final = "hyper_util.server"

_log = logging.getLogger(SERVER_LOGGER)


async def serve(
    service: Service[Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    uds: str | os.PathLike[str] | None = None,
    listener: anyio.abc.Listener[Any] | None = None,
    builder: auto.Builder | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    shutdown_event: anyio.Event | None = None,
    shutdown_timeout: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    handle_signals: bool = True,
    access_log: bool = False,
    backlog: int = DEFAULT_BACKLOG,
    fast: bool | None = None,
    tls: Callable[[IO], Awaitable[IO]] | None = None,
    announce: bool = True,
    make_service: Callable[[IO], Service[Any]] | None = None,
    http3: bool = False,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    http3_builder: Http3Builder | None = None,
    http3_socket: socket.socket | None = None,
    task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``service`` on HTTP/1.1 and HTTP/2 until shut down.

    Listens on ``listener`` if given, else on the Unix socket ``uds`` if
    given, else on ``host`` and ``port``. Each connection is served by
    ``builder`` (default ``auto.Builder()``: HTTP/1.1 and h2c prior knowledge
    on the same port; a TLS listener's ALPN result is honoured).

    Args:
        service: ``async def (Request[Incoming]) -> Response[Body]``.
        host: The address to bind (default loopback only).
        port: The TCP port; ``0`` picks a free one (see ``task_status``).
        uds: A Unix socket path to listen on instead of TCP (a stale socket
            file there is replaced).
        listener: An anyio listener to accept from instead (TCP, Unix, TLS,
            or a :class:`hyper_util.rt.StreamListener`); ``serve`` closes it
            when it stops accepting. On the fast path, connections on an
            anyio socket listener (plain or inside a ``TLSListener``) are
            accepted as :class:`hyper_util.rt.AsyncioSocketStream`, whose
            read-ahead is bounded.
        builder: The connection options.
        max_connections: Most connections served at once; at the cap no
            more are accepted until one ends (they wait in the backlog).
        shutdown_event: Shut down gracefully when this event is set.
        shutdown_timeout: Seconds connections get to finish after the
            shutdown starts before they are closed; ``None`` waits forever.
        handle_signals: Shut down gracefully on SIGINT and SIGTERM (a second
            signal closes everything at once). Only possible in the main
            thread; ignored elsewhere.
        access_log: Log each request on the ``hyper_util.access`` logger
            (INFO level).
        backlog: Connections the kernel queues before they are accepted.
        fast: The IO path, as in :func:`hyper_util.rt.create_tcp_listener`
            (``None``: the fast asyncio path on asyncio). ``False`` serves
            anyio's own streams, which on asyncio buffer whatever a client
            sends, without bound: for comparisons, not for production.
        tls: A TLS handshake hook, ``async (io) -> tls_io`` (e.g.
            ``hyper_tls.TlsAcceptor``), run in each connection's own task so
            a slow handshake never delays other accepts; a hook that raises
            drops that connection. Its result's ``TLSAttribute.alpn_protocol``
            picks HTTP/2 or HTTP/1.1.
        announce: Say where the server listens and what it speaks, in one
            line (:func:`startup_line`) once it accepts: on the
            ``hyper_util.server`` logger at INFO when logging is set up,
            else on stderr, so it shows with no logging setup (as uvicorn's
            does). ``False``: only ``task_status`` reports the address.
        make_service: Called once per connection, after the TLS handshake,
            with its stream; the service it returns serves that connection
            instead of ``service`` (for services that want the peer's
            address or TLS details, such as the ASGI adapter).
        http3: Also serve HTTP/3 on UDP, on the same port number as TCP
            (needs ``certfile``, and aioquic: ``pip install
            'hyper-util[http3]'``). TCP responses then advertise it with
            ``Alt-Svc: h3=":PORT"``; the shutdown covers both.
        certfile: The certificate chain (PEM) HTTP/3's QUIC handshake
            presents; usually the one ``tls`` uses.
        keyfile: Its private key (PEM; default: inside ``certfile``).
        http3_builder: The HTTP/3 connection options (default
            ``http3.Builder()``).
        http3_socket: A bound UDP socket to serve HTTP/3 on instead of
            binding ``host`` and the TCP port (a worker's, from
            :func:`bind_udp_sockets`); with it, ``listener`` may be given.
        task_status: For ``await task_group.start(serve, ...)``: reports
            the bound address (``(host, port)`` for TCP, the path for a Unix
            socket) once the server is accepting.

    Raises:
        OSError: The address could not be bound.
        ValueError: An option is out of range.

    Returns once the shutdown finished. Cancelling ``serve`` closes the
    listener and every connection at once.
    """
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    if http3 and (
        certfile is None or uds is not None or (listener is not None and http3_socket is None)
    ):
        raise ValueError(
            "http3=True needs certfile, and host and port (not uds), or a listener and http3_socket"
        )
    if shutdown_timeout is not None and shutdown_timeout < 0:
        raise ValueError("shutdown_timeout cannot be negative")
    owned = listener is None
    if listener is not None:
        listener = _bounded(listener, fast)
    else:
        if uds is not None:
            _remove_stale_socket(os.fspath(uds))
            listener = await create_unix_listener(uds, fast=fast, backlog=backlog)
        else:
            listener = await create_tcp_listener(host, port, fast=fast, backlog=backlog)
    h3_side = None
    tcp_service = service
    if http3:
        assert certfile is not None
        h3_side = _http3_side(
            service,
            listener,
            host,
            certfile,
            keyfile,
            http3_builder,
            access_log,
            max_connections,
            http3_socket,
        )
        h3_side.make_service = make_service
        tcp_service, make_service = h3_side.advertise(service, make_service)
    server = _Server(
        tcp_service,
        listener,
        builder if builder is not None else auto.Builder(),
        max_connections=max_connections,
        shutdown_timeout=shutdown_timeout,
        access_log=access_log,
        tls=tls,
        announce=announce,
        make_service=make_service,
    )
    if h3_side is not None:
        h3_side.attach(server._graceful)
    server.http3 = h3_side
    try:
        await server.run(shutdown_event, handle_signals, task_status)
    finally:
        with anyio.CancelScope(shield=True):
            await listener.aclose()
            if owned and uds is not None:
                with contextlib.suppress(OSError):
                    os.unlink(uds)


def _remove_stale_socket(path: str) -> None:
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _bounded(listener: anyio.abc.Listener[Any], fast: bool | None) -> anyio.abc.Listener[Any]:
    """The listener, accepting on the fast path when it is an anyio socket listener."""
    path = use_fast_path(fast)
    if path is None:
        return listener
    if isinstance(listener, TLSListener):
        inner = _bounded(listener.listener, fast)
        return (
            listener
            if inner is listener.listener
            else dataclasses.replace(listener, listener=inner)
        )
    parts = getattr(listener, "listeners", None)
    if isinstance(listener, SocketListener):
        parts = [listener]
    elif isinstance(listener, StreamListener) or not parts:
        return listener  # already hyper-util's (its path was chosen), or not a socket listener
    fast_kinds = (AsyncioSocketListener, TrioSocketListener)
    if not all(isinstance(p, SocketListener) and not isinstance(p, fast_kinds) for p in parts):
        return listener
    return fast_listener(parts, path)


def _http3_side(
    service: Service[Any],
    listener: anyio.abc.Listener[Any],
    host: str,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    builder: Http3Builder | None,
    access_log: bool,
    max_connections: int,
    sock: socket.socket | None,
) -> Http3Side:
    """The UDP side, on the TCP port's number (or on ``sock``)."""
    address = sock.getsockname() if sock is not None else _listener_address(listener)
    udp_port = address[1] if isinstance(address, tuple) else 0
    return Http3Side(
        service,
        host=host,
        port=udp_port,
        sock=sock,
        certfile=certfile,
        keyfile=keyfile,
        builder=builder if builder is not None else Http3Builder(),
        access_log=access_log,
        max_connections=max_connections,
    )


def _listener_address(listener: anyio.abc.Listener[Any]) -> Any:
    return listener.extra(SocketAttribute.local_address, None)


def listen_url(address: object, *, tls: bool) -> str:
    """``http(s)://host:port`` for a bound IP address, ``unix:PATH`` for a Unix socket."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        scheme = "https" if tls else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    return f"unix:{address}" if address else "an unknown address"


def startup_line(
    address: object, builder: auto.Builder, *, tls: bool, details: Sequence[str] = ()
) -> str:
    """The line ``serve()`` (and ``python -m hyper_util serve``) print when they start.

    ``listening on URL (PROTOCOLS)``: e.g. ``listening on
    http://127.0.0.1:8000 (HTTP/1.1 and HTTP/2 (h2c))`` or ``listening on
    https://[::1]:8443 (HTTPS: ALPN h2 and http/1.1)``; a Unix socket is
    ``unix:PATH``. ``details`` follow inside the parentheses (``HTTP/3 on
    UDP``, ``4 workers``).
    """
    where = listen_url(address, tls=tls)
    h1, h2 = builder.is_http1_available(), builder.is_http2_available()
    if h1 and h2:
        what = "HTTPS: ALPN h2 and http/1.1" if tls else "HTTP/1.1 and HTTP/2 (h2c)"
    elif h2:
        what = "HTTPS: h2" if tls else "HTTP/2 (h2c)"
    else:
        what = "HTTPS: http/1.1" if tls else "HTTP/1.1"
    return f"listening on {where} ({', '.join([what, *details])})"


def _announce(line: str) -> None:
    # Through logging when it is set up (a handler would see the record);
    # otherwise, like uvicorn's default, on stderr: never lost, never twice.
    if _log.hasHandlers():
        _log.info("%s", line)
    else:
        print(line, file=sys.stderr, flush=True)


class _Server:
    """The state of one ``serve`` call."""

    def __init__(
        self,
        service: Service[Any],
        listener: anyio.abc.Listener[Any],
        builder: auto.Builder,
        *,
        max_connections: int,
        shutdown_timeout: float | None,
        access_log: bool,
        tls: Callable[[IO], Awaitable[IO]] | None = None,
        announce: bool = True,
        make_service: Callable[[IO], Service[Any]] | None = None,
    ) -> None:
        self._service = service
        self._make_service = make_service
        self._tls = tls
        self._announce = announce
        self._listener = listener
        self._builder = builder
        self._slots = anyio.Semaphore(max_connections)
        self._shutdown_timeout = shutdown_timeout
        self._access_log = access_log
        self._graceful = GracefulShutdown()
        self._stop = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._last_accept = -math.inf
        # Accepted connections whose task has not registered with _graceful
        # yet; the shutdown waits for them (see run()).
        self._starting = 0
        self._all_started: anyio.Event | None = None
        self.http3: Http3Side | None = None

    def request_stop(self) -> None:
        """First call: graceful shutdown; a second call: close everything now."""
        if not self._stop.is_set():
            self._stop.set()
        elif self._tg is not None:
            _log.warning("second shutdown request: closing every connection now")
            self._tg.cancel_scope.cancel()

    async def run(
        self,
        shutdown_event: anyio.Event | None,
        handle_signals: bool,
        task_status: TaskStatus[Any],
    ) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            if handle_signals and threading.current_thread() is threading.main_thread():
                await tg.start(self._watch_signals)
            if shutdown_event is not None:
                tg.start_soon(self._watch_event, shutdown_event)
            accept_scope = anyio.CancelScope()
            # The HTTP/1 connections share one timeout watchdog task in this
            # task group, instead of a task each (memory per idle connection),
            # kept between connections: the task group is cancelled below.
            with share_watchdog(tg, linger=True):
                tg.start_soon(self._accept_loop, accept_scope)
            if self.http3 is not None:
                await tg.start(self.http3.run)
            address = _listener_address(self._listener)
            if self._announce:
                tls = self._tls is not None or isinstance(self._listener, TLSListener)
                details = ["HTTP/3 on UDP"] if self.http3 is not None else []
                _announce(startup_line(address, self._builder, tls=tls, details=details))
            task_status.started(address)
            await self._stop.wait()
            # New connections are refused from here on: the socket is closed.
            accept_scope.cancel()
            await self._listener.aclose()
            if self.http3 is not None:
                self.http3.stop_accepting()
            grace = self._last_accept + FIRST_REQUEST_GRACE - anyio.current_time()
            if grace > 0:
                await anyio.sleep(grace)
            if self._starting:
                # A connection accepted whose task has not run yet (a busy
                # loop, or a TLS handshake) is not watched: the shutdown
                # below would not wait for it, and cancelling its task would
                # close it with its request unread (a reset for the client).
                self._all_started = anyio.Event()
                with anyio.move_on_after(self._shutdown_timeout):
                    await self._all_started.wait()
            _log.info("shutting down: %d connection(s) open", self._graceful.count())
            clean = await self._graceful.shutdown(timeout=self._shutdown_timeout)
            if not clean:
                _log.warning("shutdown timeout: closed the connections still open")
            tg.cancel_scope.cancel()

    async def _watch_signals(self, *, task_status: TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                _log.info("received %s", signal.Signals(signum).name)
                self.request_stop()

    async def _watch_event(self, event: anyio.Event) -> None:
        await event.wait()
        self.request_stop()

    async def _accept_loop(self, scope: anyio.CancelScope) -> None:
        listener = self._listener
        slots = self._slots
        tg = self._tg
        assert tg is not None
        accept = getattr(listener, "accept", None)
        parts = getattr(listener, "listeners", None)
        if accept is None and parts and all(isinstance(p, SocketListener) for p in parts):
            # anyio's MultiListener (what anyio.create_tcp_listener returns)
            # has no accept(); hyper-util's StreamListener accepts across its parts.
            accept = StreamListener(parts, fast=False).accept
        with scope:
            if accept is None:
                # A listener with only serve() (anyio's TLSListener): the cap
                # then holds connections before they are served, not before
                # they are accepted.
                try:
                    await listener.serve(self._handle_after_slot, tg)
                except* anyio.ClosedResourceError:
                    pass
                return
            while True:
                # Take a slot before accepting: at the cap, clients queue in
                # the kernel's backlog instead of being accepted and dropped.
                # Below the cap, without acquire()'s checkpoint: accept() has
                # one, and costs a loop iteration per connection anyway.
                if slots.value:
                    slots.acquire_nowait()
                else:
                    await slots.acquire()
                try:
                    stream = await accept()
                except anyio.ClosedResourceError:
                    slots.release()
                    return
                except (OSError, anyio.BrokenResourceError) as exc:
                    slots.release()
                    _log.warning("accept failed: %s; retrying in %ss", exc, ACCEPT_RETRY_DELAY)
                    await anyio.sleep(ACCEPT_RETRY_DELAY)
                    continue
                except BaseException:
                    slots.release()
                    raise
                self._last_accept = anyio.current_time()
                self._starting += 1
                task = _ConnectionTask()
                task.handle = tg.start_soon(
                    self._handle, stream, True, task, name=_CONNECTION_TASK_NAME
                )

    async def _handle_after_slot(self, stream: IO) -> None:
        self._last_accept = anyio.current_time()
        await self._slots.acquire()
        await self._handle(stream)

    def _started_one(self) -> bool:
        self._starting -= 1
        if not self._starting and self._all_started is not None:
            self._all_started.set()
        return False

    async def _handle(
        self, stream: IO, starting: bool = False, task: _ConnectionTask | None = None
    ) -> None:
        """Serve one accepted connection; ``starting``: counted in ``_starting`` until watched.

        ``task``: this task's handle, which the shutdown deadline cancels
        (then the watch needs no cancel scope of its own).
        """
        try:
            if self._tls is not None:
                try:
                    stream = await self._tls(stream)
                except Exception as exc:  # the hook closed the stream
                    _log.debug("TLS handshake failed: %s", exc)
                    return
            extra = getattr(stream, "extra", None)
            remote = extra(SocketAttribute.remote_address, None) if extra is not None else None
            alpn = extra(TLSAttribute.alpn_protocol, None) if extra is not None else None
            extra = None  # not kept by every idle connection's frame
            service = self._service
            if self._make_service is not None:
                service = self._make_service(stream)
            if self._access_log:
                service = AccessLogged(service, format_address(remote))
            try:
                conn = self._builder.serve_connection(stream, service, alpn=alpn or None)
            except ValueError:
                _log.debug("ALPN chose %r, which this server does not speak", alpn)
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await stream.aclose()
                return
            watched = self._graceful.watch(conn, task=task)
            if starting:
                starting = self._started_one()
            try:
                # Run in a with, not awaited: one coroutine frame fewer per
                # idle connection.
                with watched:
                    await conn.serve()
            except HyperError as exc:
                # A client's fault (bad request, timeout, reset): not the server's.
                _log.debug("connection from %s ended: %s", format_address(remote), exc)
            except Exception:
                _log.exception("connection from %s failed", format_address(remote))
        finally:
            if starting:
                self._started_one()
            self._slots.release()


@final
class _ConnectionTask:
    """The handle of a connection's task, for its watch (set once ``start_soon`` returns).

    The watch gets this instead of the handle itself, which the task cannot
    be given as an argument; it is set before the shutdown could cancel it
    (nothing else runs between the task's start and ``start_soon``'s return).
    """

    __slots__ = ("handle",)

    handle: anyio.TaskHandle[None]

    def cancel(self) -> None:
        self.handle.cancel()
