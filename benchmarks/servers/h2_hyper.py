"""hyper-core's HTTP/2 server connection serving the h2 benchmark's hello world.

A TCP listener from ``hyper_util.rt.create_tcp_listener`` (the listener
``hyper_util.server.serve()`` uses) hands each accepted stream to
``http2.Builder().serve_connection(stream, service)`` (h2c with prior
knowledge), exactly as the user guide does. The listener keeps its default
IO path, which is what a user of ``serve()`` or the auto builder gets:
hyper-util's asyncio transport stream (``AsyncioSocketStream``) on asyncio,
the trio stream (``TrioSocketStream``) on trio. ``--io anyio`` forces anyio streams on asyncio
too (``fast=False``), to compare the two paths.

The service answers every request with status 200, ``Content-Type:
text/plain`` and the 13-byte body ``Hello, World!`` (the connection adds
``content-length`` from the body's exact size hint, and ``date``). The
builder keeps hyper's defaults, so each stream is served concurrently.

A connection that ends in an error must not take the listener down, so
errors are counted and the first few printed to stderr, where
``h2_server.py`` reports them.

Usage: ``python h2_hyper.py --port N [--loop asyncio|uvloop|trio] [--io default|anyio]``.
"""

from __future__ import annotations

import argparse
import sys

from anyio.abc import SocketStream

from hyper_core.body import Full, Incoming
from hyper_core.http import Headers, Request, Response
from hyper_core.server.conn import http2
from hyper_util.rt import create_tcp_listener, run

BODY = b"Hello, World!"
# Enough to see what went wrong without flooding the log under load.
MAX_REPORTED_ERRORS = 5

builder = http2.Builder()
errors = 0


async def hello(request: Request[Incoming]) -> Response[Full]:
    return Response(200, headers=Headers({"content-type": "text/plain"}), body=Full(BODY))


async def handle(stream: SocketStream) -> None:
    global errors
    async with stream:
        try:
            await builder.serve_connection(stream, hello)
        except Exception as exc:
            errors += 1
            if errors <= MAX_REPORTED_ERRORS:
                print(f"connection error {errors}: {exc!r}", file=sys.stderr, flush=True)


async def serve(port: int, io: str) -> None:
    listener = await create_tcp_listener("127.0.0.1", port, fast=False if io == "anyio" else None)
    await listener.serve(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    parser.add_argument("--io", choices=["default", "anyio"], default="default")
    args = parser.parse_args()
    run(serve, args.port, args.io, loop=args.loop)


if __name__ == "__main__":
    main()
