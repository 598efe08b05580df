"""``python -m hyper_util get URL``: fetch one URL, stream the body out.

What belongs here: the ``get`` command after its arguments are parsed:
building the request (method, ``-H`` fields, ``-d`` body), sending it,
writing the body to stdout or ``-o FILE`` (with :mod:`._progress` on a
terminal), ``-v`` heads on stderr, and turning every outcome into one of
the documented exit statuses (:class:`Exit`).

Strategy: one request through a :class:`~hyper_util.client.legacy.Client`
that pools nothing (``--http2`` makes it speak HTTP/2 with prior knowledge on
``http://``, and offer ``h2`` by ALPN on ``https://``); both bodies stream (an
``-d @FILE`` upload is read as the connection sends it, the response is
written chunk by chunk as it arrives), so neither is ever whole in memory.
Errors are sorted by *phase*: anything before a connection exists is a
connection error (3), anything after it a transfer error (4), a local file
that cannot be read or written is 5; an HTTP status of 400 or more is 1
and the body is still written, so error pages can be seen.

``https://`` goes through hyper-tls's ``HttpsConnector`` when hyper-tls is
installed: hyper-util does not depend on it, so it is imported only then,
and its absence is a usage error that says what to install. Trust is the
operating system's store, or only the ``--cacert`` file when given.
"""

from __future__ import annotations

import enum
import os
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

import anyio
import anyio.to_thread

from hyper_core.body import Body, Empty, Full, Incoming, SizeHint, StreamBody
from hyper_core.error import HyperError
from hyper_core.ext import ReasonPhrase
from hyper_core.http import Headers, Request, Response, Uri, Version
from hyper_util import __version__
from hyper_util.cli._progress import Progress
from hyper_util.client.legacy import Client, ConnectError, TotalTimeoutError
from hyper_util.client.legacy.connect import Connector
from hyper_util.rt import run

__all__ = ["Exit", "GetOptions", "UsageError", "prepare", "run_get"]

USER_AGENT = f"hyper_util/{__version__}"

#: Bytes read from an upload file per body chunk (64 KiB, a socket buffer's worth).
UPLOAD_CHUNK = 65_536


class Exit(enum.IntEnum):
    """Exit statuses of ``get`` (also documented in ``docs/guides/cli.md``)."""

    OK = 0  #: a response with status 1xx-3xx (redirects are not followed)
    HTTP_ERROR = 1  #: a response with status >= 400; its body was still written
    USAGE = 2  #: a bad command line (argparse uses 2 as well)
    CONNECT = 3  #: no connection: name resolution, refused, unreachable, connect timeout
    TRANSFER = 4  #: the exchange failed after connecting (protocol error, closed early, --max-time)
    LOCAL_IO = 5  #: a local file could not be read (-d @FILE) or written (-o FILE, stdout)
    INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT, the shell convention)


class UsageError(Exception):
    """The command line asks for something impossible; the message says what."""


class _LocalIOFailed(Exception):
    """Wraps an OSError on a local file (the cause)."""


@dataclass
class GetOptions:
    """The ``get`` command line, parsed (see ``python -m hyper_util get --help``)."""

    url: str
    method: str | None = None
    headers: Sequence[str] = ()
    data: str | None = None
    output: str | None = None
    verbose: bool = False
    http2: bool = False
    http3: bool = False  # https: HTTP/3 first (prior knowledge), TCP if it fails
    connect_timeout: float | None = 10.0
    max_time: float | None = None
    progress: bool | None = None  # None: when stderr is a terminal
    cacert: str | None = None  # https: trust only this CA file (PEM)


@dataclass
class _Prepared:
    uri: Uri
    method: str
    headers: Headers = field(default_factory=Headers)
    connector: Connector | None = None  # None: the client's plain HttpConnector


def _https_connector(options: GetOptions) -> Connector:
    """hyper-tls's connector, imported only now (hyper-util does not depend on it)."""
    try:
        from hyper_tls import HttpsConnector, client_ssl_context
    except ImportError:
        raise UsageError(
            "https:// needs hyper-tls, which is not installed (pip install hyper-tls); "
            "use an http:// URL"
        ) from None

    try:
        context = client_ssl_context(cafile=options.cacert, http2=options.http2)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load --cacert {options.cacert}: {exc}") from None
    return HttpsConnector(ssl_context=context, http2=options.http2)


def prepare(options: GetOptions) -> _Prepared:
    """Check the URL and headers and pick the method, before any I/O.

    Raises:
        UsageError: the URL is not an absolute ``http://`` or ``https://``
            URL (``https://`` needs hyper-tls installed), ``--cacert``
            cannot be loaded, or a ``-H`` is not ``Name: value``.
    """
    try:
        uri = Uri(options.url)
    except ValueError as exc:
        raise UsageError(f"not a URL: {options.url!r} ({exc})") from None
    if uri.scheme not in ("http", "https") or not uri.host or uri.authority is None:
        raise UsageError(f"not an absolute http:// or https:// URL: {options.url!r}")
    if options.http3 and uri.scheme != "https":
        raise UsageError("--http3 needs an https:// URL (HTTP/3 is always encrypted)")
    if "@" in uri.authority:
        raise UsageError("user:password@ in the URL is not supported; use -H 'Authorization: ...'")
    headers = Headers()
    for line in options.headers:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"a header is 'Name: value', not {line!r}")
        try:
            headers.append(name.strip(), value.strip())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    # Defaults after the user's, so -H replaces them instead of doubling them.
    if not options.http2 and not options.http3:
        # HTTP/2 and HTTP/3 carry the authority in :authority instead.
        headers.setdefault("host", uri.authority)
    headers.setdefault("user-agent", USER_AGENT)
    headers.setdefault("accept", "*/*")
    method = options.method or ("POST" if options.data is not None else "GET")
    connector = _https_connector(options) if uri.scheme == "https" else None
    return _Prepared(uri, method.upper(), headers, connector)


async def _file_chunks(path: str | None) -> AsyncIterator[bytes]:
    if path is None:
        source = sys.stdin.buffer
    else:
        source = await anyio.to_thread.run_sync(open, path, "rb")
    try:
        while chunk := await anyio.to_thread.run_sync(source.read, UPLOAD_CHUNK):
            yield chunk
    finally:
        if path is not None:
            source.close()


async def _request_body(data: str | None, headers: Headers) -> Body:
    """The body ``-d`` asks for (curl's conventions: ``@FILE``, ``@-`` for stdin)."""
    if data is None:
        return Empty()
    if not data.startswith("@"):
        raw = data.encode()
        headers.setdefault("content-length", str(len(raw)))
        return Full(raw)
    if data == "@-":
        return StreamBody(_file_chunks(None))  # length unknown: sent chunked
    path = data[1:]
    try:
        size = (await anyio.Path(path).stat()).st_size
        # Opened here so a missing or unreadable file fails before connecting.
        await anyio.to_thread.run_sync(lambda: open(path, "rb").close())
    except OSError as exc:
        raise _LocalIOFailed(f"cannot read {path}: {exc.strerror or exc}") from exc
    headers.setdefault("content-length", str(size))
    return StreamBody(_file_chunks(path), size_hint=SizeHint.with_exact(size))


def _status_line(response: Response[Incoming]) -> str:
    if response.version >= Version.HTTP_2:
        return f"{response.version} {int(response.status)}"
    custom = response.extensions.get(ReasonPhrase)
    reason = response.status.reason if custom is None else custom.as_bytes().decode("latin-1")
    return f"{response.version} {int(response.status)} {reason}".rstrip()


def _show_request(err: TextIO, prepared: _Prepared, version: str) -> None:
    err.write(f"> {prepared.method} {prepared.uri.path_and_query} {version}\n")
    if version != "HTTP/1.1":
        err.write(f"> :authority: {prepared.uri.authority}\n")
    for name, value in prepared.headers.items():
        err.write(f"> {name}: {value}\n")
    err.write(">\n")
    err.flush()


def _show_response(err: TextIO, response: Response[Incoming]) -> None:
    err.write(f"< {_status_line(response)}\n")
    for name, value in response.headers.items():
        err.write(f"< {name}: {value}\n")
    err.write("<\n")
    err.flush()


@asynccontextmanager
async def _exchange(
    prepared: _Prepared, body: Body, options: GetOptions
) -> AsyncIterator[Response[Incoming]]:
    """Send the request with a one-off :class:`Client`; yield the response.

    The client (and with it the connection) is closed when the block ends.
    """
    async with Client(
        prepared.connector,
        # Over TLS, ALPN decides (h2 offered with --http2); prior knowledge is for h2c.
        http2_only=options.http2 and prepared.connector is None,
        connect_timeout=options.connect_timeout,
        timeout=options.max_time,
        # One request: nothing to keep in a pool afterwards.
        pool_max_idle_per_host=0,
        http3=options.http3,
        http3_origins=[prepared.uri.authority or ""] if options.http3 else (),
        http3_cafile=options.cacert,
    ) as client:
        request = Request(prepared.method, prepared.uri, headers=prepared.headers, body=body)
        yield await client.request(request)


async def _write_body(
    response: Response[Incoming], write: Callable[[bytes], object], progress: Progress | None
) -> None:
    async for chunk in response.body:
        try:
            await anyio.to_thread.run_sync(write, chunk)
        except OSError as exc:
            raise _LocalIOFailed(f"write failed: {exc.strerror or exc}") from exc
        if progress is not None:
            progress.update(len(chunk))


async def run_get(options: GetOptions, *, stdout: BinaryIO, stderr: TextIO) -> int:
    """Run ``get``; return its exit status (:class:`Exit`). Messages go to ``stderr``.

    Raises:
        UsageError: see :func:`prepare`.
    """
    prepared = prepare(options)
    try:
        return await _get(prepared, options, stdout, stderr)
    except Exception as raised:
        error = _unwrap(raised)
        if isinstance(error, ConnectError):
            stderr.write(f"get: cannot connect to {prepared.uri.authority}: {describe(error)}\n")
            return Exit.CONNECT
        if isinstance(error, _LocalIOFailed):
            stderr.write(f"get: {error}\n")
            return Exit.LOCAL_IO
        if isinstance(error, TotalTimeoutError):
            stderr.write(f"get: timed out after {options.max_time} s (--max-time)\n")
            return Exit.TRANSFER
        if isinstance(error, HyperError | OSError):
            stderr.write(f"get: {type(error).__name__}: {describe(error)}\n")
            return Exit.TRANSFER
        raise


def describe(error: BaseException) -> str:
    """The messages of ``error`` and its causes, outermost first, each said once.

    A message already contained in what was said (an OS error's text that a
    wrapping error repeated, say) is not said again.
    """
    text = str(error) or type(error).__name__
    seen = {id(error)}
    cause = error.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        part = str(cause)
        if part and part not in text:
            text += f": {part}"
        cause = cause.__cause__
    return text


def _unwrap(error: Exception) -> Exception:
    """The one exception inside (nested) single-member groups; task groups add them."""
    while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


async def _get(prepared: _Prepared, options: GetOptions, stdout: BinaryIO, stderr: TextIO) -> int:
    body = await _request_body(options.data, prepared.headers)
    if options.verbose:
        version = "HTTP/3" if options.http3 else "HTTP/2" if options.http2 else "HTTP/1.1"
        _show_request(stderr, prepared, version)
    async with _exchange(prepared, body, options) as response:
        if options.verbose:
            _show_response(stderr, response)
        status = Exit.OK if response.status < 400 else Exit.HTTP_ERROR
        if options.output is None:
            await _write_body(response, _writer(stdout), None)
            _report_error_status(stderr, response, options)
            return status
        try:
            out = await anyio.to_thread.run_sync(lambda: open(options.output or "", "wb"))  # noqa: SIM115
        except OSError as exc:
            await response.body.aclose()
            raise _LocalIOFailed(f"cannot write {options.output}: {exc.strerror or exc}") from exc
        show = options.progress if options.progress is not None else stderr.isatty()
        progress = None
        if show:
            length = response.headers.get("content-length")
            total = int(length) if length is not None and length.isdigit() else None
            progress = Progress(stderr, total)
        try:
            await _write_body(response, out.write, progress)
        finally:
            out.close()
            if progress is not None:
                progress.finish()
        _report_error_status(stderr, response, options)
        return status


def _report_error_status(stderr: TextIO, response: Response[Incoming], options: GetOptions) -> None:
    # The body may be an HTML page nobody reads: say what went wrong where
    # it is seen (-v has shown the status line already).
    if response.status >= 400 and not options.verbose:
        stderr.write(f"get: {_status_line(response)}\n")


def _writer(stdout: BinaryIO) -> Callable[[bytes], object]:
    def write(chunk: bytes) -> None:
        # Flush each chunk: a streamed response (a log tail, server-sent
        # events) should show up as it arrives, not when a buffer fills.
        stdout.write(chunk)
        stdout.flush()

    return write


def main_get(options: GetOptions, backend: str) -> int:
    """Run ``get`` on a new event loop; the entry point used by :mod:`hyper_util.cli`."""
    try:
        return run(
            lambda: run_get(options, stdout=sys.stdout.buffer, stderr=sys.stderr), loop=backend
        )
    except UsageError as exc:
        sys.stderr.write(f"get: {exc}\n")
        return Exit.USAGE
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except BrokenPipeError:
        # Whoever reads stdout went away (`get URL | head`). Point stdout at
        # devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.LOCAL_IO
