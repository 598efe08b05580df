"""HTTP/1 server connection cost per request, with no I/O: the dispatcher's hot path.

What belongs here: a micro-benchmark of ``server.conn.http1`` serving
keep-alive GETs answered with a 13-byte ``Full`` body, over an IO whose
``receive`` hands back one request at once and whose ``send`` returns at
once: what is left is the dispatcher, the codec and the service call,
timeouts on (the defaults). It checks a change to the request loop for a
cost that wrk's numbers, taken on a busy machine, cannot resolve.

Strategy: ``--requests`` requests per connection, ``--rounds`` rounds in
this process, the best round kept (CPU time, the least disturbed). To
compare two versions, run it twice with ``PYTHONPATH`` pointing at the
other one's ``packages/hyper-core/src``, alternating, and compare the best.

Run: ``.venv/bin/python benchmarks/h1_server_loop.py [--requests 100000] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import time

import anyio

from hyper_core.body import Full, Incoming
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1

REQUEST = b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
BODY = Full(b"Hello, World!")


class OneRequestPerRead:
    """An IO that returns one request per ``receive``, ``count`` times, and drops writes."""

    def __init__(self, count: int) -> None:
        self.left = count

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.left == 0:
            raise anyio.EndOfStream
        self.left -= 1
        return REQUEST

    async def send(self, data: bytes) -> None:
        pass

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


async def hello(request: Request[Incoming]) -> Response[Full]:
    return Response(200, headers={"content-type": "text/plain"}, body=BODY)


async def main(requests: int, rounds: int) -> None:
    best = float("inf")
    builder = http1.Builder()
    for _ in range(rounds):
        started = time.process_time()
        await builder.serve_connection(OneRequestPerRead(requests), hello)
        best = min(best, time.process_time() - started)
    print(f"{best / requests * 1e6:.3f} us CPU per request (best of {rounds} rounds)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    anyio.run(main, args.requests, args.rounds)
