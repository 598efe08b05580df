"""HTTP/1 server, pipelined requests: ``pipeline_flush`` off (hyper's default) against on.

What belongs here: the measurement behind the ``pipeline_flush`` option of
``hyper_core.server.conn.http1.Builder``. A client sends ``--batch``
pipelined ``GET`` requests in one write and reads the ``--batch`` answers,
``--batches`` times, over one keep-alive connection to our server (the
hello-world service of ``run.py``); both settings run in this process, in
interleaved rounds, and the best round of each is kept.

Strategy: a real loopback TCP connection on anyio streams (``--io tcp``) or
an in-memory pipe (``--io memory``, no kernel: the dispatcher's own cost);
asyncio unless ``--backend trio``. Reported: CPU microseconds per request
(client and server together, in this one process) and the ratio
on / off. With the option off each answer is one ``send``; on, one ``send``
carries all the answers to the requests already received.

Run: ``flock /tmp/bench.lock .venv/bin/python benchmarks/h1_pipeline.py
[--batch 64] [--batches 300] [--rounds 5] [--io tcp|memory] [--backend asyncio|trio]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from hyper_core.body import Full, Incoming
from hyper_core.http import Request, Response
from hyper_core.rt import IO
from hyper_core.server.conn import http1
from hyper_core.testing import memory_pipe

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
BODY = b"Hello, World!"


async def hello(request: Request[Incoming]) -> Response[Full]:
    return Response(200, headers={"content-type": "text/plain"}, body=Full(BODY))


@asynccontextmanager
async def connection(kind: str) -> AsyncIterator[tuple[IO, anyio.abc.ByteStream]]:
    """(server end, client end) of one connection."""
    if kind == "memory":
        server, client = memory_pipe(max_buffer=1 << 20)
        async with server, client:
            yield server, client
        return
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        inner = listener.listeners[0]
        assert isinstance(inner, anyio.abc.SocketListener)
        client_stream = await anyio.connect_tcp("127.0.0.1", port)
        server_stream = await inner.accept()
        async with server_stream, client_stream:
            yield server_stream, client_stream


async def measure(kind: str, pipeline_flush: bool, batch: int, batches: int) -> float:
    """CPU microseconds per request over ``batches`` batches of ``batch`` requests."""
    async with connection(kind) as (server, client), anyio.create_task_group() as tg:
        builder = http1.Builder(pipeline_flush=pipeline_flush)
        tg.start_soon(builder.serve_connection(server, hello).serve)
        # Every answer has the same length (the date field's is fixed).
        await client.send(REQUEST)
        first = b""
        while not first.endswith(BODY):
            first += await client.receive()
        expected = len(first) * batch
        burst = REQUEST * batch
        start = time.process_time()
        for _ in range(batches):
            await client.send(burst)
            received = 0
            while received < expected:
                received += len(await client.receive(1 << 20))
        elapsed = time.process_time() - start
        tg.cancel_scope.cancel()
    return elapsed / (batch * batches) * 1e6


async def run(args: argparse.Namespace) -> None:
    await measure(args.io, False, args.batch, max(1, args.batches // 10))  # warm-up
    best = {False: float("inf"), True: float("inf")}
    for _ in range(args.rounds):
        for setting in (False, True):
            micros = await measure(args.io, setting, args.batch, args.batches)
            best[setting] = min(best[setting], micros)
    print(
        f"HTTP/1 server, {args.batch} pipelined requests per write, {args.io}, {args.backend}, "
        f"best of {args.rounds} rounds of {args.batches} batches:"
    )
    print(f"  pipeline_flush=False {best[False]:7.2f} us/request")
    print(
        f"  pipeline_flush=True  {best[True]:7.2f} us/request"
        f"   ({best[True] / best[False]:.2f}x the CPU of off)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--io", choices=["tcp", "memory"], default="tcp")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(run, args, backend=args.backend)


if __name__ == "__main__":
    main()
