"""Download a URL to stdout with one HTTP/1.1 client connection.

Run it::

    python examples/client.py http://127.0.0.1:8080/
    python examples/client.py http://127.0.0.1:8080/ -d 'some text'
    python examples/client.py http://127.0.0.1:8080/ -d @upload.bin > echoed.bin
    python examples/client.py http://127.0.0.1:8080/ -X PUT -d @- < upload.bin

This is the low-level client: one TCP connection made with anyio, one
``http1.handshake`` over it, and a task that drives the connection while
this one sends the request and reads the response. The connection writes
the request exactly as given, so the ``Host`` header is set here; it keeps
no pool and follows no redirects (``hyper_util``'s client adds those).

Both bodies stream: the response body is written to stdout chunk by chunk
as it arrives, and a ``-d @FILE`` upload is read from the file as the
connection sends it, never whole in memory.

Exit status: 0 for a 2xx response; 1 (status line on stderr, nothing on
stdout) for any other status, or when the connection fails; 2 for a bad
command line. ``https://`` is not supported yet: TLS arrives with
``hyper_tls``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator

import anyio

from hyper_core.body import Body, Empty, Full, SizeHint, StreamBody
from hyper_core.client.conn import http1
from hyper_core.error import HyperError
from hyper_core.http import Headers, Request, Uri

USER_AGENT = "hyper-core-example/0"

# Bytes read from an upload file per body chunk (64 KiB: the usual socket
# buffer, so a read fills about one send).
UPLOAD_CHUNK = 65_536


class Failed(Exception):
    """The request did not succeed; the message is for stderr."""


async def file_chunks(path: str | None) -> AsyncIterator[bytes]:
    """Yield a file (stdin for ``None``) in chunks, as the connection pulls them.

    The file is opened on the first pull, so a request that is never sent
    (the server is down) leaves nothing open.
    """
    file = anyio.wrap_file(sys.stdin.buffer) if path is None else await anyio.open_file(path, "rb")
    async with file:
        while chunk := await file.read(UPLOAD_CHUNK):
            yield chunk


async def request_body(data: str | None) -> Body:
    """The body ``-d`` asks for: curl's conventions, ``@FILE`` and ``@-`` for stdin."""
    if data is None:
        return Empty()
    if not data.startswith("@"):
        return Full(data.encode())
    if data == "@-":
        # Length unknown: the connection sends it chunked.
        return StreamBody(file_chunks(None))
    path = data[1:]
    # Length known: the exact size hint makes the connection send
    # Content-Length instead of chunked encoding. (stat() also fails early,
    # before connecting, if the file is missing.)
    size = (await anyio.Path(path).stat()).st_size
    return StreamBody(file_chunks(path), size_hint=SizeHint.with_exact(size))


async def fetch(uri: Uri, method: str, headers: Headers, body: Body) -> None:
    """Send one request over a new connection and copy the response body to stdout.

    Raises:
        Failed: a non-2xx status.
        HyperError: the exchange failed (the server closed early, sent a
            malformed response, ...).
        OSError: the connection could not be made.
    """
    assert uri.host is not None  # checked by main()
    stream = await anyio.connect_tcp(uri.host, uri.port or 80)
    # handshake() writes nothing (HTTP/1 has no preface); it ties a sender
    # (our half) to a connection (the half that does the I/O).
    sender, connection = await http1.handshake(stream)
    async with anyio.create_task_group() as tg:
        # The connection must be driven for the sender to make progress. It
        # never raises: errors reach send_request() or the body instead.
        tg.start_soon(connection.serve)
        async with sender:  # closing the sender lets connection.serve() return
            # The request target is origin-form ("/path?query"), as a server
            # expects from a client that is not talking to a proxy.
            request = Request(method, uri.path_and_query, headers=headers, body=body)
            response = await sender.send_request(request)
            if not response.status.is_success():
                # Closing an unread body closes the connection; nothing to keep.
                await response.body.aclose()
                raise Failed(f"{response.version} {response.status} {response.status.reason}")
            # Writes run in a worker thread, so a slow stdout (a pipe into a
            # slow reader) pauses this loop, which stops reading the socket,
            # which makes the server wait: backpressure end to end.
            stdout = anyio.wrap_file(sys.stdout.buffer)
            async for chunk in response.body:
                await stdout.write(chunk)
                await stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description="Download an http:// URL to stdout.")
    parser.add_argument("url", help="an http:// URL")
    parser.add_argument("-X", "--request", dest="method", help="method (default GET, POST with -d)")
    parser.add_argument(
        "-d", "--data", help="request body: text, @FILE to stream a file, @- for stdin"
    )
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()

    try:
        uri = Uri(args.url)
    except ValueError as exc:  # InvalidUri is a ValueError
        parser.error(f"not a URL: {exc}")
    if uri.scheme == "https":
        parser.error("https:// is not supported yet (TLS comes with hyper_tls); use http://")
    authority = uri.authority
    if uri.scheme != "http" or not uri.host or authority is None:
        parser.error("the URL must be absolute and start with http://")
    if "@" in authority:
        parser.error("user:password@ in the URL is not supported")

    headers = Headers()
    for line in args.header:
        name, sep, value = line.partition(":")
        if not sep:
            parser.error(f"a header is 'Name: value', not {line!r}")
        try:
            headers.append(name.strip(), value.strip())
        except ValueError as exc:  # InvalidHeader is a ValueError
            parser.error(str(exc))
    # Defaults after the user's, so `-H 'Host: ...'` replaces them rather
    # than sending two (a server must reject a request with two Hosts).
    # Host is the URL's authority: the host, and the port when the URL has one.
    headers.setdefault("host", authority)
    headers.setdefault("user-agent", USER_AGENT)
    method = args.method or ("POST" if args.data is not None else "GET")

    async def run() -> None:
        await fetch(uri, method, headers, await request_body(args.data))

    # except*: an error raised inside a task group comes out wrapped in an
    # ExceptionGroup; except* matches it there as well as bare.
    status = 0
    try:
        anyio.run(run, backend=args.backend)
    except* BrokenPipeError:
        # Whoever read stdout stopped (`client.py URL | head`): not an error
        # worth a message. Point stdout at devnull so the interpreter's
        # final flush does not fail again (as the Python docs suggest).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    except* Failed as group:
        for failure in group.exceptions:
            print(f"{args.url}: {failure}", file=sys.stderr)
        status = 1
    except* (HyperError, OSError) as group:
        for error in group.exceptions:
            print(f"{args.url}: {type(error).__name__}: {error}", file=sys.stderr)
        status = 1
    except* KeyboardInterrupt:
        status = 130
    return status


if __name__ == "__main__":
    sys.exit(main())
