"""ASGI over the HTTP/1 server connection, per request, with no I/O: the adapter's hot path.

What belongs here: a micro-benchmark of ``hyper_util.asgi.ASGIService`` on
``server.conn.http1`` running ``servers/asgi_app.py`` (the app ``asgi.py``
measures), over an IO whose ``receive`` hands back one whole request at once
and whose ``send`` returns at once: what is left is the dispatcher, the
codec, the adapter (scope, ``receive``/``send``, validation, the app
runner) and the app. It resolves costs that wrk's numbers, taken on a busy
machine, cannot: ``hello`` (``GET /``) and ``post`` (``POST /echo`` with a
16 KiB body).

Strategy: ``--requests`` requests per connection, ``--rounds`` rounds in
this process, the best round kept (CPU time, the least disturbed). To
compare two versions, run it twice with ``PYTHONPATH`` pointing at the
other one's ``packages/hyper-core/src:packages/hyper-util/src``,
alternating, and compare the best.

Run: ``.venv/bin/python benchmarks/asgi_loop.py [--scenario hello|post]
[--loop asyncio|trio] [--requests 50000] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import anyio

from hyper_core.server.conn import http1
from hyper_util.asgi import AppRunner, ASGIService

sys.path.insert(0, str(Path(__file__).parent / "servers"))
app = importlib.import_module("asgi_app").app  # the app asgi.py runs on every server

REQUESTS = {
    "hello": b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n",
    "post": b"POST /echo HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 16384\r\n\r\n" + b"x" * 16384,
}


class OneRequestPerRead:
    """An IO that returns one request per ``receive``, ``count`` times, and drops writes.

    As a keep-alive client does, the next request comes only once the
    response went out: a read made while the app runs (the disconnect
    watch, on trio where every app call is a task) waits for it.
    """

    def __init__(self, request: bytes, count: int) -> None:
        self.request = request
        self.left = count
        self.answered: anyio.Event | None = None  # set by the response's send

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.answered is not None:
            await self.answered.wait()
        if self.left == 0:
            raise anyio.EndOfStream
        self.left -= 1
        self.answered = anyio.Event()
        return self.request

    async def send(self, data: bytes) -> None:
        if self.answered is not None:
            self.answered.set()
            self.answered = None

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def main(scenario: str, requests: int, rounds: int) -> None:
    best = float("inf")
    builder = http1.Builder()
    async with AppRunner() as runner:
        service = ASGIService(app, runner)
        for _ in range(rounds):
            io = OneRequestPerRead(REQUESTS[scenario], requests)
            started = time.process_time()
            await builder.serve_connection(io, service.for_connection(io))
            best = min(best, time.process_time() - started)
    print(f"{scenario}: {best / requests * 1e6:.3f} us CPU per request (best of {rounds} rounds)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(REQUESTS), default="hello")
    parser.add_argument("--loop", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    anyio.run(main, args.scenario, args.requests, args.rounds, backend=args.loop)
