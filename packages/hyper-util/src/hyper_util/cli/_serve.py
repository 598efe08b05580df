"""``python -m hyper_util serve [DIR]``: run a static file or echo server.

What belongs here: the ``serve`` command after its arguments are parsed:
choosing the service (:class:`~hyper_util.cli._static.StaticFiles` for a
folder, :func:`~hyper_util.cli._echo.echo` otherwise), listening on TCP or
a Unix socket, printing the one "listening on" line, serving HTTP/1.1 and
HTTP/2 (h2c) on the same port, and stopping gracefully on SIGINT/SIGTERM.

Strategy: everything with a socket in it is :func:`hyper_util.server.serve`
(accept loop, connection cap, ``auto`` HTTP/1.1 + h2c sniffing, graceful
shutdown on SIGINT/SIGTERM); this module only maps the command line onto
its options and prints the address it reports. In ``auto`` mode HTTP/1.1
``Upgrade: h2c`` is honoured too, so ``curl --http2`` (which upgrades) gets
HTTP/2 as well as ``curl --http2-prior-knowledge``. With ``--workers N``
(or ``--fd``) this process binds the socket itself
(:func:`~hyper_util.server.bind_sockets`), prints the line, and
:func:`~hyper_util.server.run_workers` runs N worker processes, each one
:func:`run_serve` on the inherited socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TextIO

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from hyper_core.rt import IO
from hyper_core.service import Service
from hyper_util.cli._echo import echo
from hyper_util.cli._static import StaticFiles
from hyper_util.rt import run
from hyper_util.server import (
    bind_sockets,
    bind_udp_sockets,
    listen_on,
    run_workers,
    serve,
    split_sockets,
    startup_line,
    worker_ready,
)
from hyper_util.server._serve import listen_url
from hyper_util.server.conn import auto

__all__ = ["ServeOptions", "main_serve", "make_service", "run_serve", "serve_worker"]

HttpMode = Literal["auto", "1", "2"]

#: Seconds connections get to finish their requests after SIGINT/SIGTERM
#: before they are closed (what ``docker stop`` allows before SIGKILL: 10 s;
#: a development server should not hold a terminal for longer).
SHUTDOWN_GRACE = 10.0
#: Seconds past SHUTDOWN_GRACE before a worker that has not exited is killed.
WORKER_STOP_MARGIN = 5.0


@dataclass
class ServeOptions:
    """The ``serve`` command line, parsed (see ``python -m hyper_util serve --help``)."""

    directory: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    http: HttpMode = "auto"
    access_log: bool = False
    certfile: str | None = None  # serve HTTPS (needs hyper-tls)
    keyfile: str | None = None
    fd: int | None = None  # an inherited, bound socket instead of host/port/uds
    workers: int | None = None  # None: serve in this process, no supervisor
    http3: bool = False  # also HTTP/3 on UDP (needs certfile and the http3 extra)


TlsHook = Callable[[IO], Awaitable[IO]]


def make_tls(options: ServeOptions) -> TlsHook | None:
    """hyper-tls's acceptor for ``--certfile``/``--keyfile``, or ``None`` without them.

    hyper-util does not depend on hyper-tls: it is imported only here.

    Raises:
        ValueError: hyper-tls is not installed, ``--keyfile`` came without
            ``--certfile``, or the files cannot be loaded (the message says which).
    """
    if options.certfile is None:
        if options.keyfile is not None:
            raise ValueError("--keyfile needs --certfile")
        if options.http3:
            raise ValueError("--http3 needs --certfile (HTTP/3 is always encrypted)")
        return None
    if options.http3:
        if options.uds is not None or options.fd is not None:
            raise ValueError(
                "--http3 listens on UDP --host and --port itself: not with --uds or --fd"
            )
        if options.workers and not sys.platform.startswith("linux"):
            # Each worker needs a UDP socket of its own in one SO_REUSEPORT
            # group (docs/guides/http3.md, "Worker processes").
            from hyper_util.server._bind import REUSEPORT_UNAVAILABLE

            raise ValueError(f"--http3 with --workers: {REUSEPORT_UNAVAILABLE}")
        from hyper_core.quic import require_aioquic

        try:
            require_aioquic()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
    try:
        from hyper_tls import TlsAcceptor, server_ssl_context
    except ImportError:
        raise ValueError(
            "--certfile needs hyper-tls, which is not installed (pip install hyper-tls)"
        ) from None

    try:
        context = server_ssl_context(options.certfile, options.keyfile, http2=options.http != "1")
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load --certfile/--keyfile: {exc}") from None
    acceptor: TlsHook = TlsAcceptor(context)
    return acceptor


def make_service(options: ServeOptions) -> Service[Any]:
    """The static file service for a folder, else the echo service.

    Raises:
        NotADirectoryError: the folder is not a directory.
    """
    if options.directory is None:
        return echo
    return StaticFiles(options.directory)


def _builder(mode: HttpMode) -> auto.Builder:
    if mode == "1":
        return auto.Builder(http1_only=True)
    if mode == "2":
        return auto.Builder(http2_only=True)
    return auto.Builder(h2c_upgrade=True)


async def run_serve(
    service: Service[Any],
    options: ServeOptions,
    *,
    out: TextIO | None,
    signals: bool = True,
    shutdown_event: anyio.Event | None = None,
    tls: TlsHook | None = None,
    listener: anyio.abc.Listener[Any] | None = None,
    http3_socket: socket.socket | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until shut down; print the one "listening on" line first.

    Args:
        service: What answers the requests.
        options: The command line.
        out: Where the line ``listening on ADDRESS (PROTOCOLS)`` goes; it is
            flushed at once, so a process reading a pipe sees it. ``None``:
            no line (a worker; its supervisor prints it).
        signals: Shut down gracefully on SIGINT/SIGTERM.
        shutdown_event: Shut down gracefully when it is set.
        tls: The TLS hook (default: :func:`make_tls` of ``options``).
        listener: Accept from this instead of binding ``options``' address.
        http3_socket: With ``--http3``, serve QUIC on this bound UDP socket
            (a worker's) instead of binding one.
        task_status: Receives ADDRESS (``http://host:port`` or
            ``unix:PATH``) once the server accepts connections.

    Raises:
        OSError: the address could not be bound.
        ValueError: see :func:`make_tls`.
    """
    if tls is None:
        tls = make_tls(options)
    async with anyio.create_task_group() as tg:
        bound = await tg.start(
            partial(
                serve,
                service,
                host=options.host,
                port=options.port,
                uds=options.uds,
                listener=listener,
                builder=_builder(options.http),
                shutdown_event=shutdown_event,
                shutdown_timeout=SHUTDOWN_GRACE,
                handle_signals=signals,
                access_log=options.access_log,
                tls=tls,
                announce=False,  # the command's own line, on ``out``, instead
                http3=options.http3,
                certfile=options.certfile if options.http3 else None,
                keyfile=options.keyfile if options.http3 else None,
                http3_socket=http3_socket,
            )
        )
        if out is not None:
            _announce(out, bound, options, tls is not None)
        task_status.started(listen_url(bound, tls=tls is not None))


def _announce(out: TextIO, bound: object, options: ServeOptions, https: bool) -> None:
    details = []
    if options.http3:
        details.append("HTTP/3 on UDP")
    if options.workers:
        details.append(f"{options.workers} workers")
    out.write(startup_line(bound, _builder(options.http), tls=https, details=details) + "\n")
    out.flush()


def _configure_logging(options: ServeOptions) -> None:
    if options.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    else:
        # Connection failures and the shutdown notices, without the access records.
        logging.basicConfig(level=logging.WARNING, format="serve: %(message)s", stream=sys.stderr)


def serve_worker(options: ServeOptions, backend: str, sockets: list[socket.socket]) -> None:
    """One worker process of ``serve --workers N``: serve the inherited sockets until SIGTERM."""
    _configure_logging(options)
    service = make_service(options)
    tls = make_tls(options)

    streams, udp = split_sockets(sockets)

    async def main() -> None:
        listener = await listen_on(streams)
        async with anyio.create_task_group() as tg:
            serving = partial(
                run_serve, service, options, out=None, tls=tls, listener=listener, http3_socket=udp
            )
            await tg.start(serving)
            worker_ready()

    run(main, loop=backend)


def main_serve(options: ServeOptions, backend: str) -> int:
    """Run ``serve`` on a new event loop until stopped; return the exit status."""
    try:
        service = make_service(options)
    except NotADirectoryError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    try:
        tls = make_tls(options)
    except ValueError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    _configure_logging(options)
    if options.workers is not None or options.fd is not None:
        return _main_bound(options, backend, service, tls)
    try:
        run(lambda: run_serve(service, options, out=sys.stdout, tls=tls), loop=backend)
    except KeyboardInterrupt:
        return 130
    except Exception as raised:
        error = raised
        # Task groups wrap what they raise; one OSError inside is still ours.
        while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if not isinstance(error, OSError):
            raise
        return _cannot_listen(error)
    return 0


def _cannot_listen(error: Exception) -> int:
    print(f"serve: cannot listen: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
    return 1


def _main_bound(
    options: ServeOptions, backend: str, service: Service[Any], tls: TlsHook | None
) -> int:
    """Bind here, then serve in worker processes (or, for ``--fd`` alone, in this one)."""
    sockets: list[socket.socket] = []
    udp: list[socket.socket] = []
    try:
        sockets = bind_sockets(options.host, options.port, uds=options.uds, fd=options.fd)
        if options.http3 and options.workers is not None:
            # One UDP socket per worker, on the TCP port's number.
            udp = bind_udp_sockets(options.host, sockets[0].getsockname()[1], options.workers)
    except (OSError, ValueError) as exc:
        for sock in sockets:
            sock.close()
        return _cannot_listen(exc)
    try:
        if options.workers is None:  # --fd, one process

            async def main() -> None:
                listener = await listen_on(sockets)
                await run_serve(service, options, out=sys.stdout, tls=tls, listener=listener)

            run(main, loop=backend)
            return 0
        _announce(sys.stdout, sockets[0].getsockname(), options, tls is not None)
        return run_workers(
            partial(serve_worker, options, backend),
            sockets,
            workers=options.workers,
            stop_timeout=SHUTDOWN_GRACE + WORKER_STOP_MARGIN,
            worker_sockets=udp,
        )
    finally:
        for sock in sockets + udp:
            sock.close()
        if options.uds is not None and options.fd is None:
            with contextlib.suppress(OSError):
                os.unlink(options.uds)
