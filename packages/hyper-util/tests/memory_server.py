"""A server process for the memory-bound tests (``test_memory_bounds.py``).

Usage: ``python memory_server.py WAY BACKEND``, where WAY is how it serves:

* ``guide-h1`` / ``guide-h2``: the hyper-core guides' way, an accept loop
  over :func:`hyper_util.rt.create_tcp_listener` and
  ``http1``/``http2.Builder().serve_connection``;
* ``serve``: :func:`hyper_util.server.serve` (HTTP/1.1 and h2c);
* ``serve-anyio``: ``serve(listener=...)`` given anyio's own TCP listener;
* ``serve-traced``: ``serve()`` under ``tracemalloc``; each line read from
  stdin makes it print the bytes Python holds (after the connections
  settle and a garbage collection), for the idle-connection test;
* ``anyio-h1``: anyio's own listener and ``serve_connection`` (what the
  guides showed before: on asyncio, anyio's streams read without bound; kept
  to measure the difference, not used by the tests' assertions);

and BACKEND is ``asyncio``, ``uvloop`` or ``trio``. It prints its port on
the first line of stdout, then serves until killed. The service answers
``GET /small`` with 13 bytes, ``GET /big`` with a 32 MiB ``Full`` body made
at startup (so it is in the baseline), and holds any ``POST`` for 60 s
without reading its body.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import tracemalloc
from functools import partial
from typing import Any

import anyio
import anyio.abc

from hyper_core.body import Full, Incoming
from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1, http2
from hyper_util.rt import create_tcp_listener
from hyper_util.server import serve

BIG = b"b" * (32 << 20)


async def service(request: Request[Incoming]) -> Response[Full]:
    if request.method == "POST":
        await anyio.sleep(60)  # never reads the upload
    if request.uri.path == "/big":
        return Response(200, body=Full(BIG))
    return Response(200, body=Full(b"Hello, World!"))


async def guide(way: str) -> None:
    builder: Any = http1.Builder() if way.endswith("h1") else http2.Builder()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(HyperError):
            await builder.serve_connection(stream, service)

    if way.startswith("anyio"):
        listener: Any = await anyio.create_tcp_listener(local_host="127.0.0.1")
    else:
        listener = await create_tcp_listener("127.0.0.1", 0)
    async with listener:
        print(listener.extra(anyio.abc.SocketAttribute.local_port), flush=True)
        await listener.serve(handle)


async def served(way: str) -> None:
    listener = None
    if way == "serve-anyio":
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with anyio.create_task_group() as tg:
        _, port = await tg.start(
            partial(serve, service, port=0, listener=listener, handle_signals=False, announce=False)
        )
        print(port, flush=True)


async def traced() -> None:
    tracemalloc.start()
    async with anyio.create_task_group() as tg:
        run = partial(serve, service, port=0, handle_signals=False, announce=False)
        _, port = await tg.start(run)
        print(port, flush=True)
        while await anyio.to_thread.run_sync(sys.stdin.readline):
            for _ in range(5):  # every connection answered reaches its next read
                await anyio.sleep(0.01)
            gc.collect()
            print(tracemalloc.get_traced_memory()[0], flush=True)
        tg.cancel_scope.cancel()


def main() -> None:
    way, backend = sys.argv[1], sys.argv[2]
    run: Any = partial(served if way.startswith("serve") else guide, way)
    if way == "serve-traced":
        run = traced
    if backend == "uvloop":
        anyio.run(run, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        anyio.run(run, backend=backend)


if __name__ == "__main__":
    main()
