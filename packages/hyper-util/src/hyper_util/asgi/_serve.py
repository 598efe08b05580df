"""``hyper_util.asgi.serve()``: run an ASGI application on the auto HTTP/1.1 + HTTP/2 server.

What belongs here: :func:`serve` (lifespan around :func:`hyper_util.server.serve`,
the connection builders an ASGI server needs, request limits) and
:func:`listener_from_sockets` (serving on sockets made elsewhere: ``--fd``,
gunicorn).

Strategy: nothing here speaks HTTP. The accept loop, TLS, protocol choice
and graceful shutdown are :func:`hyper_util.server.serve`'s; this module
adds the lifespan protocol before and after it, turns the app into a
service per connection (:class:`~hyper_util.asgi.ASGIService`), and sets the
two protocol options WebSockets need: HTTP/1 upgrades and HTTP/2 extended
CONNECT (``SETTINGS_ENABLE_CONNECT_PROTOCOL``, RFC 8441). With ``http3=True``
the same service also answers HTTP/3 on UDP (``serve``'s QUIC side), with
extended CONNECT on there too (RFC 9220).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from hyper_core.rt import IO
from hyper_core.server.conn import http1, http2
from hyper_core.server.conn import http3 as http3_conn
from hyper_util.rt import StreamListener, wrap_socket_listener
from hyper_util.server import DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_TIMEOUT, split_sockets
from hyper_util.server import serve as serve_http
from hyper_util.server.conn import auto

from ._lifespan import Lifespan, LifespanMode
from ._runner import AppRunner
from ._scope import ConnectionInfo
from ._service import ASGIService
from ._types import ASGIApp
from ._websocket import WebSocketOptions

__all__ = [
    "DEFAULT_TIMEOUT_KEEP_ALIVE",
    "HttpMode",
    "build_builder",
    "listener_from_sockets",
    "serve",
]

_log = logging.getLogger("hyper_util.asgi")

HttpMode = Literal["auto", "1", "2"]
#: Seconds an idle HTTP/1.1 keep-alive connection is kept (uvicorn's default, 5 s).
DEFAULT_TIMEOUT_KEEP_ALIVE = 5.0


def build_builder(
    http: HttpMode = "auto", timeout_keep_alive: float = DEFAULT_TIMEOUT_KEEP_ALIVE
) -> auto.Builder:
    """The auto builder an ASGI server uses: upgrades and extended CONNECT on.

    Args:
        http: ``auto`` (HTTP/1.1, h2c by prior knowledge or ``Upgrade: h2c``,
            and ALPN on TLS), ``1`` or ``2``.
        timeout_keep_alive: Seconds a client has to send its next request head
            (``header_read_timeout`` of HTTP/1).
    """
    h1 = http1.Builder(upgrades=True, header_read_timeout=timeout_keep_alive)
    h2 = http2.Builder(enable_connect_protocol=True)
    if http == "1":
        return auto.Builder(http1=h1, http2=h2, http1_only=True)
    if http == "2":
        return auto.Builder(http1=h1, http2=h2, http2_only=True)
    return auto.Builder(http1=h1, http2=h2, h2c_upgrade=True)


async def listener_from_sockets(sockets: Sequence[socket.socket]) -> StreamListener:
    """A listener accepting on already-bound, listening sockets (``--fd``, gunicorn)."""
    wrapped = [await wrap_socket_listener(sock) for sock in sockets]
    if len(wrapped) == 1:
        return wrapped[0]
    parts = [part for listener in wrapped for part in listener.listeners]
    return StreamListener(parts, fast=wrapped[0].fast)


async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    uds: str | os.PathLike[str] | None = None,
    fd: int | None = None,
    sockets: Sequence[socket.socket] | None = None,
    http: HttpMode = "auto",
    tls: Callable[[IO], Awaitable[IO]] | None = None,
    lifespan: LifespanMode = "auto",
    root_path: str = "",
    access_log: bool = False,
    timeout_keep_alive: float = DEFAULT_TIMEOUT_KEEP_ALIVE,
    timeout_graceful_shutdown: float | None = DEFAULT_SHUTDOWN_TIMEOUT,
    limit_concurrency: int | None = None,
    limit_max_requests: int | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    websocket: WebSocketOptions | None = None,
    builder: auto.Builder | None = None,
    http3: bool = False,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    http3_builder: http3_conn.Builder | None = None,
    handle_signals: bool = True,
    shutdown_event: anyio.Event | None = None,
    task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI 3 application until shut down; usable with ``anyio.run``.

    ::

        anyio.run(partial(hyper_util.asgi.serve, app, port=8000))

    Runs the lifespan startup, listens, serves ``http`` and ``websocket``
    scopes over HTTP/1.1 and HTTP/2 (h2c, or TLS with ``tls``), and on
    SIGINT/SIGTERM (or ``shutdown_event``) stops accepting, lets requests in
    flight finish within ``timeout_graceful_shutdown``, then runs the lifespan
    shutdown.

    Args:
        app: The ASGI application.
        host: Address to bind (default loopback only).
        port: TCP port; ``0`` picks a free one (reported through ``task_status``).
        uds: Listen on this Unix socket instead.
        fd: Listen on this inherited, already listening socket file descriptor.
        sockets: Listen on these already listening sockets (gunicorn, a
            supervised worker); a UDP socket among them is where HTTP/3 is
            served (see :func:`hyper_util.server.bind_udp_sockets`).
        http: ``auto``, ``1`` or ``2`` (see :func:`build_builder`).
        tls: A TLS hook such as ``hyper_tls.TlsAcceptor(context)``.
        lifespan: ``auto``, ``on`` or ``off`` (as uvicorn's ``--lifespan``).
        root_path: ``root_path`` of every scope (the app's mount point).
        access_log: Log each request on ``hyper_util.access`` (INFO).
        timeout_keep_alive: Seconds an idle HTTP/1.1 connection is kept.
        timeout_graceful_shutdown: Seconds requests get to finish at shutdown.
        limit_concurrency: Requests at once before answering 503.
        limit_max_requests: Shut down gracefully after this many requests.
        max_connections: Connections served at once (more wait in the backlog).
        websocket: WebSocket limits and keep-alive.
        builder: Connection options instead of :func:`build_builder`'s.
        http3: Also serve HTTP/3 on UDP, on the TCP port's number (needs
            ``certfile`` and ``pip install 'hyper-util[http3]'``); TCP
            responses advertise it with ``Alt-Svc``. The app sees
            ``http_version`` ``"3"``; WebSockets work over it (RFC 9220).
        certfile: The certificate chain (PEM) QUIC's handshake presents;
            usually the one behind ``tls``.
        keyfile: Its private key (PEM; default: inside ``certfile``).
        http3_builder: HTTP/3 options (default: extended CONNECT on, for
            WebSockets).
        handle_signals: Shut down gracefully on SIGINT/SIGTERM.
        shutdown_event: Shut down gracefully when set.
        task_status: Receives the bound address once listening.

    Raises:
        LifespanFailure: the application's startup failed (the server never listened).
        OSError: the address could not be bound.
        ValueError: an option is out of range, or ``http3`` without
            ``certfile`` or with ``uds``, ``fd`` or ``sockets``.
        ImportError: ``http3`` without aioquic (the message names the extra).
    """
    if limit_max_requests is not None and limit_max_requests < 1:
        raise ValueError("limit_max_requests must be at least 1")
    if limit_concurrency is not None and limit_concurrency < 1:
        raise ValueError("limit_concurrency must be at least 1")
    udp: socket.socket | None = None
    if sockets is not None:
        sockets, udp = split_sockets(sockets)  # a supervised worker's UDP socket (HTTP/3)
    if http3:
        if certfile is None:
            raise ValueError("http3=True needs certfile (HTTP/3 is always encrypted)")
        if uds is not None or fd is not None or (sockets is not None and udp is None):
            raise ValueError(
                "http3=True listens on UDP host and port itself: not with uds or fd, "
                "nor with sockets unless one of them is the UDP socket to serve"
            )
        from hyper_core.quic import require_aioquic

        require_aioquic()  # before the app's startup runs: one clear error
        if http3_builder is None:
            http3_builder = http3_conn.Builder(enable_connect_protocol=True)
    stop = anyio.Event()
    served = [0]

    def count() -> None:
        served[0] += 1
        if limit_max_requests is not None and served[0] == limit_max_requests:
            _log.info("served %d requests (--limit-max-requests): shutting down", served[0])
            stop.set()

    state: dict[str, Any] = {}
    failure: Exception | None = None
    async with anyio.create_task_group() as tg, AppRunner() as runner:
        life = Lifespan(app, lifespan, state)
        try:
            await life.startup(tg)
        except Exception as exc:
            # Raised below, outside the task group: the caller sees the
            # failure itself, not an ExceptionGroup.
            failure = exc
            tg.cancel_scope.cancel()
        else:
            try:
                service = ASGIService(
                    app,
                    runner,
                    info=ConnectionInfo(
                        root_path=root_path, state=state if life.supported else None
                    ),
                    websocket=websocket,
                    limit_concurrency=limit_concurrency,
                    on_request=count if limit_max_requests is not None else None,
                )
                listener = None
                if fd is not None:
                    sockets = [socket.socket(fileno=fd)]
                if sockets is not None:
                    listener = await listener_from_sockets(sockets)
                if shutdown_event is not None:
                    tg.start_soon(_forward, shutdown_event, stop)
                await serve_http(
                    service,
                    host=host,
                    port=port,
                    uds=uds,
                    listener=listener,
                    builder=builder
                    if builder is not None
                    else build_builder(http, timeout_keep_alive),
                    max_connections=max_connections,
                    shutdown_event=stop,
                    shutdown_timeout=timeout_graceful_shutdown,
                    handle_signals=handle_signals,
                    access_log=access_log,
                    tls=tls,
                    make_service=service.for_connection,
                    http3=http3,
                    certfile=certfile,
                    keyfile=keyfile,
                    http3_builder=http3_builder,
                    http3_socket=udp if http3 else None,
                    task_status=task_status,
                )
            except Exception as exc:
                failure = exc
            finally:
                with anyio.CancelScope(shield=True):
                    # A hung shutdown handler must not keep the process forever.
                    with anyio.move_on_after(timeout_graceful_shutdown or DEFAULT_SHUTDOWN_TIMEOUT):
                        await life.shutdown()
                tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _forward(source: anyio.Event, target: anyio.Event) -> None:
    await source.wait()
    target.set()
