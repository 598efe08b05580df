"""``python -m hyper_util run module:app``: serve an ASGI application.

What belongs here: the ``run`` sub-command (its options, uvicorn's names and
defaults where uvicorn has them), importing the application, choosing the
event loop, logging, and handing everything to :func:`hyper_util.asgi.serve`.

Strategy: this module only maps the command line onto ``serve``'s options.
``--workers``/``--reload`` hand the serving to the worker supervisor
(:func:`hyper_util.server.run_workers`: this process binds, each spawned
worker runs ``serve`` on the inherited sockets), and ``--proxy-headers``
wraps the app in :class:`hyper_util.asgi.ProxyHeadersMiddleware`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import anyio
from anyio.abc import TaskStatus

from hyper_util.asgi import ASGIApp, LifespanFailure, WebSocketOptions, serve
from hyper_util.server import DEFAULT_SHUTDOWN_TIMEOUT

__all__ = ["RunOptions", "add_run_parser", "import_app", "main_run"]

#: Exit status when the application cannot be imported or its startup failed
#: (uvicorn's STARTUP_FAILURE and gunicorn's WORKER_BOOT_ERROR are 3 too).
EXIT_STARTUP_FAILED: Final = 3
LOG_LEVELS: Final = ("critical", "error", "warning", "info", "debug", "trace")
#: Seconds a worker gets after its graceful shutdown timeout before SIGKILL
#: (its app's lifespan shutdown runs then).
WORKER_STOP_MARGIN: Final = 5.0

_RUN_EPILOG = """\
examples:
  python -m hyper_util run main:app                      FastAPI/Starlette app in main.py
  python -m hyper_util run main:app --port 8080 --http 2
  python -m hyper_util run myproject.asgi:application    Django
  python -m hyper_util run main:create_app --factory
  python -m hyper_util run main:app --certfile cert.pem --keyfile key.pem
  python -m hyper_util run main:app --certfile cert.pem --keyfile key.pem --http3

exit status: 0 after SIGINT/SIGTERM, 1 cannot listen, 2 bad command line,
3 the application could not be imported or its startup failed.
"""


@dataclass
class RunOptions:
    """The ``run`` command line, parsed (see ``python -m hyper_util run --help``)."""

    app: str
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    fd: int | None = None
    http: str = "auto"
    loop: str = "auto"
    workers: int | None = None
    reload: bool = False
    reload_dirs: list[str] = field(default_factory=list)
    factory: bool = False
    app_dir: str = "."
    root_path: str = ""
    lifespan: str = "auto"
    proxy_headers: bool = False
    forwarded_allow_ips: str | None = None
    log_level: str = "info"
    access_log: bool = True
    timeout_keep_alive: float = 5.0
    timeout_graceful_shutdown: float | None = DEFAULT_SHUTDOWN_TIMEOUT
    limit_concurrency: int | None = None
    limit_max_requests: int | None = None
    certfile: str | None = None
    keyfile: str | None = None
    ca_certs: str | None = None
    http3: bool = False
    ws_max_size: int = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _seconds_or_off(text: str) -> float | None:
    value = float(text)
    return None if value <= 0 else value


def add_run_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``run`` sub-command to ``python -m hyper_util``'s parser."""
    run = commands.add_parser(
        "run",
        help="serve an ASGI application (FastAPI, Starlette, Django...)",
        description=(
            "Serve the ASGI 3 application APP ('module:attribute') over HTTP/1.1 and HTTP/2, "
            "with WebSockets on both, until SIGINT or SIGTERM."
        ),
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("app", metavar="APP", help="the application, as 'module:attribute'")
    where = run.add_argument_group("where to listen")
    where.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)"
    )
    where.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any)")
    where.add_argument("--uds", metavar="PATH", help="listen on this Unix socket instead of TCP")
    where.add_argument(
        "--fd", type=int, metavar="FD", help="listen on this inherited socket file descriptor"
    )
    protocol = run.add_argument_group("protocols and runtime")
    protocol.add_argument(
        "--http",
        choices=["auto", "1", "2"],
        default="auto",
        help="auto: HTTP/1.1 and HTTP/2 (h2c, or ALPN with TLS) on one port (default); 1; 2",
    )
    protocol.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop", "trio"],
        default="auto",
        help="event loop: auto takes uvloop when it is installed, else asyncio (default auto)",
    )
    protocol.add_argument("--certfile", metavar="FILE", help="serve HTTPS with this chain (PEM)")
    protocol.add_argument("--keyfile", metavar="FILE", help="the private key of --certfile (PEM)")
    protocol.add_argument(
        "--http3",
        action="store_true",
        help="also serve HTTP/3 on UDP, same port (needs --certfile and hyper-util[http3])",
    )
    protocol.add_argument(
        "--ca-certs",
        metavar="FILE",
        help="CA certificates (PEM) to verify client certificates with (asked for, not required)",
    )
    app = run.add_argument_group("the application")
    app.add_argument(
        "--factory", action="store_true", help="APP is a function returning the application"
    )
    app.add_argument(
        "--app-dir", default=".", help="folder put first on sys.path to import APP (default .)"
    )
    app.add_argument("--root-path", default="", help="the scope's root_path: where APP is mounted")
    app.add_argument(
        "--lifespan",
        choices=["auto", "on", "off"],
        default="auto",
        help="lifespan events: auto uses them when the app supports them (default); "
        "on requires them; off skips them",
    )
    limits = run.add_argument_group("limits and timeouts")
    limits.add_argument(
        "--timeout-keep-alive",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="close idle HTTP/1.1 connections after this long (default 5)",
    )
    limits.add_argument(
        "--timeout-graceful-shutdown",
        type=_seconds_or_off,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="at shutdown, requests in flight get this long to finish (default 30; 0: no limit)",
    )
    limits.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        metavar="N",
        help="answer 503 while N requests are being served",
    )
    limits.add_argument(
        "--limit-max-requests",
        type=_positive_int,
        metavar="N",
        help="shut down gracefully after N requests (a supervisor restarts the worker)",
    )
    ws = run.add_argument_group("WebSockets")
    ws.add_argument(
        "--ws-max-size",
        type=_positive_int,
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="largest WebSocket message accepted; larger closes with 1009 (default 16 MiB)",
    )
    ws.add_argument(
        "--ws-ping-interval",
        type=_seconds_or_off,
        default=20.0,
        metavar="SECONDS",
        help="send a keep-alive ping this often (default 20; 0: never)",
    )
    ws.add_argument(
        "--ws-ping-timeout",
        type=_seconds_or_off,
        default=20.0,
        metavar="SECONDS",
        help="close with 1011 when a ping goes unanswered this long (default 20; 0: never)",
    )
    ws.add_argument(
        "--no-ws-per-message-deflate",
        dest="ws_per_message_deflate",
        action="store_false",
        help="refuse permessage-deflate compression (accepted by default)",
    )
    procs = run.add_argument_group("processes and proxies")
    procs.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="run N worker processes sharing the socket, under a supervisor",
    )
    procs.add_argument(
        "--reload",
        action="store_true",
        help="development: restart when a .py file changes (needs watchfiles)",
    )
    procs.add_argument(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="folder to watch with --reload (repeatable; default: the current folder)",
    )
    procs.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/Proto/Host and Forwarded from --forwarded-allow-ips",
    )
    procs.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated proxy addresses or networks to trust ('*': all); "
        "default $FORWARDED_ALLOW_IPS or 127.0.0.1",
    )
    logs = run.add_argument_group("logging")
    logs.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="server log level (default info)"
    )
    logs.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log each request (default on)",
    )
    del common  # the shared --backend option is --loop here


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The parsed ``run`` arguments as :class:`RunOptions`."""
    return RunOptions(
        **{
            name: getattr(args, name)
            for name in RunOptions.__dataclass_fields__
            if hasattr(args, name)
        }
    )


class ImportFailure(Exception):
    """The application could not be imported; the message says why."""


def import_app(spec: str, *, factory: bool = False, app_dir: str = ".") -> ASGIApp:
    """Import ``module:attribute`` (``module:a.b`` works too), calling it with ``factory``.

    Raises:
        ImportFailure: a malformed spec, a module that does not import, a
            missing attribute, or something that is not callable.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ImportFailure(f"APP must be 'module:attribute', got {spec!r}")
    if app_dir:
        sys.path.insert(0, os.path.abspath(app_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:
            raise ImportFailure(
                f"no module named {module_name!r} (--app-dir is {app_dir!r})"
            ) from exc
        raise
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportFailure(f"module {module_name!r} has no attribute {attribute!r}") from None
    if factory:
        target = target()
    if not callable(target):
        raise ImportFailure(f"{spec} is not callable: {type(target).__name__}")
    return target  # type: ignore[no-any-return]


def _tls_hook(options: RunOptions) -> Any:
    if options.certfile is None:
        if options.keyfile is not None or options.ca_certs is not None:
            raise ValueError("--keyfile and --ca-certs need --certfile")
        if options.http3:
            raise ValueError("--http3 needs --certfile (HTTP/3 is always encrypted)")
        return None
    if options.http3:
        _check_http3(options)
    try:
        from hyper_tls import TlsAcceptor, server_ssl_context
    except ImportError:
        raise ValueError("--certfile needs hyper-tls: pip install hyper-tls") from None
    try:
        context = server_ssl_context(options.certfile, options.keyfile, http2=options.http != "1")
        if options.ca_certs is not None:
            context.load_verify_locations(options.ca_certs)
            context.verify_mode = ssl.CERT_OPTIONAL
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS files: {exc}") from None
    return TlsAcceptor(context)


def _check_http3(options: RunOptions) -> None:
    if options.uds is not None or options.fd is not None:
        raise ValueError("--http3 listens on UDP --host and --port itself: not with --uds or --fd")
    if _supervising(options) and not sys.platform.startswith("linux"):
        # Each worker needs a UDP socket of its own in one SO_REUSEPORT
        # group (docs/guides/http3.md, "Worker processes").
        from hyper_util.server._bind import REUSEPORT_UNAVAILABLE

        raise ValueError(f"--http3 with --workers or --reload: {REUSEPORT_UNAVAILABLE}")
    from hyper_core.quic import require_aioquic

    try:
        require_aioquic()
    except ImportError as exc:
        raise ValueError(str(exc)) from None


def _proxy_headers(app: ASGIApp, options: RunOptions) -> ASGIApp:
    """Hook: wrap the app in the proxy-headers middleware (hyper_util.asgi._proxy_headers)."""
    if not options.proxy_headers:
        return app
    from hyper_util.asgi import ProxyHeadersMiddleware

    wrapped: ASGIApp = ProxyHeadersMiddleware(app, options.forwarded_allow_ips)
    return wrapped


def _backend(loop: str) -> tuple[str, dict[str, Any]]:
    if loop == "trio":
        return "trio", {}
    if loop == "uvloop" or loop == "auto":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            if loop == "uvloop":
                raise ValueError("--loop uvloop: uvloop is not installed") from None
            return "asyncio", {}
        return "asyncio", {"use_uvloop": True}
    return "asyncio", {}


def _configure_logging(options: RunOptions) -> None:
    level = (
        logging.DEBUG
        if options.log_level == "trace"
        else getattr(logging, options.log_level.upper())
    )
    logging.basicConfig(level=level, format="%(levelname)-8s %(message)s", stream=sys.stderr)
    # The h2 and hpack libraries log every frame at DEBUG: keep them out of -log-level debug.
    for noisy in ("hpack", "h2"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    logging.getLogger("hyper_util.access").setLevel(
        logging.INFO if options.access_log else logging.WARNING
    )


async def run_app(
    app: ASGIApp,
    options: RunOptions,
    *,
    sockets: list[Any] | None = None,
    ready: Callable[[], object] | None = None,
) -> None:
    """Serve ``app`` with the command line's options; call ``ready`` once listening."""
    async with anyio.create_task_group() as tg:
        await tg.start(partial(_serve, app, options, sockets))
        if ready is not None:
            ready()


async def _serve(
    app: ASGIApp,
    options: RunOptions,
    sockets: list[Any] | None,
    *,
    task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> None:
    await serve(
        app,
        host=options.host,
        port=options.port,
        uds=options.uds,
        fd=options.fd if sockets is None else None,
        sockets=sockets,
        http=options.http,  # type: ignore[arg-type]
        tls=_tls_hook(options),
        http3=options.http3,
        certfile=options.certfile if options.http3 else None,
        keyfile=options.keyfile if options.http3 else None,
        lifespan=options.lifespan,  # type: ignore[arg-type]
        root_path=options.root_path,
        access_log=options.access_log,
        timeout_keep_alive=options.timeout_keep_alive,
        timeout_graceful_shutdown=options.timeout_graceful_shutdown,
        limit_concurrency=options.limit_concurrency,
        limit_max_requests=options.limit_max_requests,
        websocket=WebSocketOptions(
            max_message_size=options.ws_max_size,
            ping_interval=options.ws_ping_interval,
            ping_timeout=options.ws_ping_timeout,
            per_message_deflate=options.ws_per_message_deflate,
        ),
        task_status=task_status,
    )


def _serve_one(
    options: RunOptions,
    sockets: list[Any] | None = None,
    ready: Callable[[], object] | None = None,
) -> int:
    try:
        app = _proxy_headers(
            import_app(options.app, factory=options.factory, app_dir=options.app_dir), options
        )
        _tls_hook(options)  # check the files before the loop starts
        backend, backend_options = _backend(options.loop)
    except ImportFailure as exc:
        print(f"run: cannot import the application: {exc}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    except ValueError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            anyio.run(
                partial(run_app, app, options, sockets=sockets, ready=ready),
                backend=backend,
                backend_options=backend_options,
            )
        except ExceptionGroup as group:
            # Task groups wrap what they raise; one error inside is still ours.
            error: BaseException = group
            while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]
            raise error from None
    except KeyboardInterrupt:
        return 0
    except LifespanFailure as exc:
        print(f"run: {exc}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    except OSError as exc:
        print(f"run: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def main_run(options: RunOptions) -> int:
    """Run the ``run`` command; return the exit status."""
    _configure_logging(options)
    if options.http3:
        try:
            _tls_hook(options)  # --http3's rules, before any worker is started
        except ValueError as exc:
            print(f"run: {exc}", file=sys.stderr)
            return 2
    if _supervising(options):
        return _supervised(options)
    return _serve_one(options)


def _supervising(options: RunOptions) -> bool:
    return (options.workers is not None and options.workers > 1) or options.reload


def _supervised(options: RunOptions) -> int:
    """``--workers N``/``--reload``: bind here, serve in supervised worker processes."""
    from hyper_util.server import bind_sockets, bind_udp_sockets, run_workers

    workers = options.workers or 1
    sockets: list[Any] = []
    udp: list[Any] = []
    try:
        sockets = bind_sockets(options.host, options.port, uds=options.uds, fd=options.fd)
        if options.http3:  # one UDP socket per worker, on the TCP port's number
            port = sockets[0].getsockname()[1]
            udp = bind_udp_sockets(options.host, port, workers)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        print(f"run: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    graceful = options.timeout_graceful_shutdown
    try:
        return run_workers(
            partial(_worker, options),
            sockets,
            workers=workers,
            reload=options.reload,
            reload_dirs=options.reload_dirs or [options.app_dir],
            # The worker's own graceful shutdown, then 5 s for the lifespan shutdown.
            stop_timeout=None if graceful is None else graceful + WORKER_STOP_MARGIN,
            worker_sockets=udp,
        )
    except (RuntimeError, ValueError) as exc:  # --reload without watchfiles, a bad --reload-dir
        print(f"run: {exc}", file=sys.stderr)
        return 2
    finally:
        for sock in sockets + udp:
            sock.close()
        if options.uds is not None and options.fd is None:
            with contextlib.suppress(OSError):
                os.unlink(options.uds)


def _worker(options: RunOptions, sockets: list[Any]) -> None:
    """One supervised worker: serve the inherited sockets, telling the supervisor when ready."""
    from hyper_util.server import worker_ready

    _configure_logging(options)
    sys.exit(_serve_one(options, sockets, worker_ready))
