"""``hyper_util.server.serve()`` serving ``run.py``'s workloads and ``memory.py``'s connections.

The service is what a user writes: a header dict and a ``Full`` body per
response, and ``collect`` to read an upload whole (``_workloads.py`` has the
bytes). ``serve()`` keeps its defaults (HTTP/1.1 and h2c on one port, the
asyncio transport IO on asyncio, the trio stream on trio) except where an
option here says otherwise.

Usage: ``python hyper_serve.py --port N [--loop asyncio|uvloop|trio]
[--max-connections N] [--header-read-timeout SECONDS]``.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial

from _workloads import EXTRA_HEADERS, HELLO, PAGE

from hyper_core.body import Full, Incoming, collect
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1
from hyper_util.rt import run
from hyper_util.server import DEFAULT_MAX_CONNECTIONS, serve
from hyper_util.server.conn import auto

PAGE_HEADERS = {
    "content-type": "text/plain",
    **{name.decode(): value.decode() for name, value in EXTRA_HEADERS},
}


async def service(request: Request[Incoming]) -> Response[Full]:
    path = request.uri.path
    if path == "/headers":
        return Response(
            200, headers={"content-type": "text/plain", **PAGE_HEADERS}, body=Full(PAGE)
        )
    if path == "/upload":
        data = (await collect(request.body)).to_bytes()
        body = str(len(data)).encode()
        return Response(200, headers={"content-type": "text/plain"}, body=Full(body))
    return Response(200, headers={"content-type": "text/plain"}, body=Full(HELLO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    parser.add_argument("--max-connections", type=int, default=None)
    parser.add_argument("--header-read-timeout", type=float, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    h1 = http1.Builder()
    if args.header_read_timeout is not None:
        # 0 turns the timeout (and its watchdog task) off: memory.py's comparison.
        h1 = http1.Builder(header_read_timeout=args.header_read_timeout or None)
    builder = auto.Builder(http1=h1)
    run(
        partial(
            serve,
            service,
            host="127.0.0.1",
            port=args.port,
            builder=builder,
            max_connections=args.max_connections or DEFAULT_MAX_CONNECTIONS,
        ),
        loop=args.loop,
    )


if __name__ == "__main__":
    main()
