"""hyper-core's HTTP/1 server connection serving the benchmark's hello world.

A TCP listener hands each accepted stream to
``http1.Builder().serve_connection(stream, service)``, exactly as the user
guide does; the service answers every request with status 200,
``Content-Type: text/plain`` and the 13-byte body ``Hello, World!`` (the
connection adds ``Content-Length`` from the body's exact size hint, and
``Date``). The builder keeps hyper's defaults.

The listener is chosen by ``--io``:

* ``anyio`` (the default): ``anyio.create_tcp_listener``, hyper-core alone on
  anyio socket streams, as a user without hyper-util gets it.
* ``fast``: ``hyper_util.rt.create_tcp_listener(fast=True)``, hyper-util's
  asyncio transport stream, as a hyper-util user gets it on asyncio (asyncio
  only).

A connection that ends in an error must not take the listener down (anyio's
``serve`` runs handlers in one task group), so errors are counted and the
first few printed to stderr, where ``run.py`` reports them.

Usage: ``python hyper_h1.py --port N [--backend asyncio|trio] [--io anyio|fast]``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from hyper_core.body import Full, Incoming
from hyper_core.http import Headers, Request, Response
from hyper_core.server.conn import http1

BODY = b"Hello, World!"
# Enough to see what went wrong without flooding the log under load.
MAX_REPORTED_ERRORS = 5

builder = http1.Builder()
errors = 0


async def hello(request: Request[Incoming]) -> Response[Full]:
    return Response(200, headers=Headers({"content-type": "text/plain"}), body=Full(BODY))


async def handle(stream: Any) -> None:
    global errors
    async with stream:
        try:
            await builder.serve_connection(stream, hello)
        except Exception as exc:
            errors += 1
            if errors <= MAX_REPORTED_ERRORS:
                print(f"connection error {errors}: {exc!r}", file=sys.stderr, flush=True)


async def serve(port: int, io: str) -> None:
    if io == "fast":
        from hyper_util.rt import create_tcp_listener

        listener: Any = await create_tcp_listener("127.0.0.1", port, fast=True)
    else:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    await listener.serve(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--io", choices=["anyio", "fast"], default="anyio")
    args = parser.parse_args()
    anyio.run(serve, args.port, args.io, backend=args.backend)


if __name__ == "__main__":
    main()
