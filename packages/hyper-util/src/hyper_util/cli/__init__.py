"""The command line: ``python -m hyper_util get URL``, ``serve [DIR]`` and ``run module:app``.

What belongs here: the argument parser and :func:`main`, which dispatches to
:mod:`._get` and :mod:`._serve`; the commands themselves live there. The
user guide is ``docs/guides/cli.md``.

Strategy: argparse, one sub-parser per command, and a shared ``--backend``
option on each (``auto``: uvloop when installed, else asyncio; ``asyncio``,
``uvloop``, ``trio``). ``main`` returns the exit status instead
of exiting, so tests can call it.

HTTPS (``get https://...``, ``serve --certfile``) uses hyper-tls, imported
only when asked for: hyper-util does not depend on hyper-tls, and without it
those options fail with one line that says what to install (exit 2). The
command line stays in hyper-util rather than a distribution of its own:
``python -m hyper_util`` is the demo of the batteries it drives (pooled
client, auto server, graceful shutdown), it adds no dependency, and a
fourth distribution would be one more version to keep in step for one
optional import.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hyper_util import __version__
from hyper_util.cli import _get, _run, _serve
from hyper_util.cli._echo import echo
from hyper_util.cli._get import Exit
from hyper_util.cli._static import StaticFiles
from hyper_util.rt import LOOPS, loop_backend

__all__ = ["Exit", "StaticFiles", "build_parser", "echo", "main"]

_GET_EPILOG = """\
exit status:
  0  the response status was 1xx-3xx (redirects are not followed)
  1  the response status was 400 or more (the body is still written)
  2  bad command line (also: https:// URLs without hyper-tls installed)
  3  could not connect (name resolution, refused, unreachable, --connect-timeout)
  4  the exchange failed after connecting (protocol error, closed early, --max-time)
  5  a local file could not be read (-d @FILE) or written (-o FILE, stdout)
  130  interrupted (Ctrl-C)
"""

_SERVE_EPILOG = """\
without DIR, every request is answered by an echo service: the request line,
the header fields and the body, as text. Stop with Ctrl-C or SIGTERM: requests
in flight are finished first.
"""


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535 (0 picks a free port)")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``python -m hyper_util``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--backend",
        choices=list(LOOPS),
        default="auto",
        help="event loop to run on: auto takes uvloop when it is installed, else asyncio "
        "(default auto)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m hyper_util",
        description="Fetch a URL, serve files, or run an ASGI app over HTTP/1.1 and HTTP/2.",
    )
    parser.add_argument("--version", action="version", version=f"hyper_util {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    get = commands.add_parser(
        "get",
        parents=[common],
        help="fetch a URL to stdout",
        description="Fetch a URL and write the response body to stdout (or -o FILE).",
        epilog=_GET_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    get.add_argument("url", metavar="URL", help="an absolute http:// or https:// URL")
    get.add_argument(
        "-X",
        "--request",
        dest="method",
        metavar="METHOD",
        help="request method (default GET, or POST when -d is given)",
    )
    get.add_argument(
        "-H",
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="add a request header field (repeatable)",
    )
    get.add_argument(
        "-d",
        "--data",
        metavar="DATA",
        help="request body: text, @FILE to stream a file, @- for stdin",
    )
    get.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the body to FILE (progress bar on stderr when it is a terminal)",
    )
    get.add_argument(
        "-v", "--verbose", action="store_true", help="show the request and response heads on stderr"
    )
    get.add_argument(
        "--http2",
        action="store_true",
        help="use HTTP/2 (http://: prior knowledge, h2c; https://: offered by ALPN)",
    )
    get.add_argument(
        "--http3",
        action="store_true",
        help="https: use HTTP/3 over QUIC (needs hyper-util[http3]); falls back to TCP if it fails",
    )
    get.add_argument(
        "--cacert",
        metavar="FILE",
        help="https: trust only the CA certificates in FILE (PEM) instead of the system store",
    )
    get.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        default=None,
        help="never show the progress bar",
    )
    get.add_argument(
        "--connect-timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="give up connecting after this long (default 10)",
    )
    get.add_argument(
        "--max-time",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="give up on the whole exchange after this long (default: no limit)",
    )

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="serve a folder of static files, or an echo service",
        description="Serve DIR's files (or an echo service) over HTTP/1.1 and HTTP/2 (h2c).",
        epilog=_SERVE_EPILOG,
    )
    serve.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        help="the folder to serve (default: run the echo service)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    serve.add_argument(
        "--port", type=_port, default=8000, help="TCP port (default 8000; 0 picks a free one)"
    )
    serve.add_argument("--uds", metavar="PATH", help="listen on this Unix socket instead of TCP")
    serve.add_argument(
        "--fd",
        type=int,
        metavar="FD",
        help="serve an inherited, bound socket (systemd, a process manager) instead",
    )
    serve.add_argument(
        "--workers",
        type=_count,
        metavar="N",
        help="serve in N worker processes that share the socket; a worker that dies is "
        "replaced, SIGHUP replaces them all (default: one process, no supervisor)",
    )
    serve.add_argument(
        "--http",
        choices=["auto", "1", "2"],
        default="auto",
        help="protocols: auto (HTTP/1.1 and h2c on one port, the default), 1, or 2",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log each request on stderr (off by default)"
    )
    serve.add_argument(
        "--certfile", metavar="FILE", help="serve HTTPS with this certificate chain (PEM)"
    )
    serve.add_argument("--keyfile", metavar="FILE", help="the private key of --certfile (PEM)")
    serve.add_argument(
        "--http3",
        action="store_true",
        help="also serve HTTP/3 on UDP, same port (needs --certfile and hyper-util[http3])",
    )
    _run.add_run_parser(commands, common)
    return parser


def _backend_problem(backend: str) -> str | None:
    """Why ``--backend`` cannot run here (a library not installed), or None."""
    if backend != "trio":
        return None
    try:
        import trio  # noqa: F401 (only whether it imports)
    except ImportError:
        return "--backend trio needs trio, which is not installed: pip install 'hyper-util[trio]'"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Args:
        argv: The arguments after the program name (default ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    problem = _backend_problem(getattr(args, "backend", "asyncio"))
    if problem is not None:
        print(f"python -m hyper_util: {problem}", file=sys.stderr)
        return 2
    if args.command == "run":
        return _run.main_run(_run.options_from_args(args))
    try:
        loop_backend(args.backend)
    except ValueError as exc:  # --backend uvloop without uvloop
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
    if args.command == "get":
        options = _get.GetOptions(
            url=args.url,
            method=args.method,
            headers=args.headers,
            data=args.data,
            output=args.output,
            verbose=args.verbose,
            http2=args.http2,
            http3=args.http3,
            connect_timeout=args.connect_timeout,
            max_time=args.max_time,
            progress=args.progress,
            cacert=args.cacert,
        )
        return _get.main_get(options, args.backend)
    serve_options = _serve.ServeOptions(
        directory=args.directory,
        host=args.host,
        port=args.port,
        uds=args.uds,
        http=args.http,
        access_log=args.access_log,
        certfile=args.certfile,
        keyfile=args.keyfile,
        fd=args.fd,
        workers=args.workers,
        http3=args.http3,
    )
    return _serve.main_serve(serve_options, args.backend)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
