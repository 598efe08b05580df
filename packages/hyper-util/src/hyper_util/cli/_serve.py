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
HTTP/2 as well as ``curl --http2-prior-knowledge``.
"""

from __future__ import annotations

import logging
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TextIO

import anyio
from anyio.abc import TaskStatus

from hyper_core.rt import IO
from hyper_core.service import Service
from hyper_util.cli._echo import echo
from hyper_util.cli._static import StaticFiles
from hyper_util.server import serve
from hyper_util.server.conn import auto

__all__ = ["ServeOptions", "main_serve", "make_service", "run_serve"]

HttpMode = Literal["auto", "1", "2"]

#: Seconds connections get to finish their requests after SIGINT/SIGTERM
#: before they are closed (what ``docker stop`` allows before SIGKILL: 10 s;
#: a development server should not hold a terminal for longer).
SHUTDOWN_GRACE = 10.0


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
        if options.uds is not None:
            raise ValueError("--http3 listens on UDP: it needs --host and --port, not --uds")
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


def _address(bound: object, scheme: str = "http") -> str:
    if isinstance(bound, tuple):
        host, port = bound[0], bound[1]
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    return f"unix:{bound}"


_PROTOCOLS = {"auto": "HTTP/1.1 and HTTP/2 (h2c)", "1": "HTTP/1.1", "2": "HTTP/2 (h2c)"}
_TLS_PROTOCOLS = {"auto": "HTTPS: ALPN h2 and http/1.1", "1": "HTTPS: http/1.1", "2": "HTTPS: h2"}


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
    out: TextIO,
    signals: bool = True,
    shutdown_event: anyio.Event | None = None,
    tls: TlsHook | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until shut down; print the one "listening on" line first.

    Args:
        service: What answers the requests.
        options: The command line.
        out: Where the line ``listening on ADDRESS (PROTOCOLS)`` goes; it is
            flushed at once, so a process reading a pipe sees it.
        signals: Shut down gracefully on SIGINT/SIGTERM.
        shutdown_event: Shut down gracefully when it is set.
        tls: The TLS hook (default: :func:`make_tls` of ``options``).
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
                builder=_builder(options.http),
                shutdown_event=shutdown_event,
                shutdown_timeout=SHUTDOWN_GRACE,
                handle_signals=signals,
                access_log=options.access_log,
                tls=tls,
                http3=options.http3,
                certfile=options.certfile if options.http3 else None,
                keyfile=options.keyfile if options.http3 else None,
            )
        )
        address = _address(bound, "https" if tls is not None else "http")
        protocols = (_TLS_PROTOCOLS if tls is not None else _PROTOCOLS)[options.http]
        if options.http3:
            protocols += "; HTTP/3 on UDP, same port"
        out.write(f"listening on {address} ({protocols})\n")
        out.flush()
        task_status.started(address)


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
    if options.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    else:
        # Connection failures and the shutdown notices, without the access records.
        logging.basicConfig(level=logging.WARNING, format="serve: %(message)s", stream=sys.stderr)
    try:
        anyio.run(lambda: run_serve(service, options, out=sys.stdout, tls=tls), backend=backend)
    except KeyboardInterrupt:
        return 130
    except Exception as raised:
        error = raised
        # Task groups wrap what they raise; one OSError inside is still ours.
        while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if not isinstance(error, OSError):
            raise
        print(f"serve: cannot listen: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0
