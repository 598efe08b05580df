"""The pooled client's transparent retry goes to a fresh connection.

What belongs here: the retry of a request that was never sent or never
answered on a *reused* HTTP/1 connection (the keep-alive race: the server
closed the idle connection just as the request went out), against a real
loopback server that closes idle keep-alive connections at random.

Strategy: :func:`flaky_server` speaks just enough HTTP/1.1 over a real TCP
socket: it answers a connection's first request always, and each later
one (the connection had been idle in the client's pool) only with
probability ``1 - p``; otherwise it closes the connection without
answering, as a server whose idle timer fires as the request arrives
does. A retry on another *idle* connection meets the same odds again
(about ``p * p`` of all requests failed); on a fresh connection, whose
first request is always answered, none may fail. The random source is
seeded, so a run is the same every time.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from hyper_core.body import collect
from hyper_core.error import HyperError
from hyper_util.client.legacy import Client

pytestmark = pytest.mark.anyio

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class FlakyServer:
    """Counts what the flaky server did (see the module docstring)."""

    def __init__(self, p: float, seed: int) -> None:
        self.p = p
        self.rng = random.Random(seed)
        self.answered = 0
        self.closed_idle = 0
        self.connections = 0

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        served = 0
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                    buffer += data
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                if served and self.rng.random() < self.p:
                    self.closed_idle += 1
                    return  # the idle timer "fired" as the request came in
                served += 1
                self.answered += 1
                try:
                    await stream.send(RESPONSE)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return


@asynccontextmanager
async def flaky_server(p: float, seed: int = 9) -> AsyncIterator[tuple[FlakyServer, str]]:
    server = FlakyServer(p, seed)
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server.handle)
            yield server, f"http://127.0.0.1:{port}/"
            tg.cancel_scope.cancel()


async def run_gets(url: str, count: int, concurrency: int) -> tuple[int, int]:
    """Send ``count`` GETs, ``concurrency`` at a time; return (failures, retries)."""
    failures = 0
    limit = anyio.Semaphore(concurrency)
    async with Client() as client:

        async def one() -> None:
            nonlocal failures
            async with limit:
                try:
                    response = await client.get(url)
                    assert (await collect(response.body)).data == b"ok"
                except HyperError:
                    failures += 1

        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
        retries = client.statistics().retries
    return failures, retries


async def test_retry_of_an_unanswered_request_goes_to_a_fresh_connection() -> None:
    async with flaky_server(p=0.25) as (server, url):
        with anyio.fail_after(30):
            failures, retries = await run_gets(url, count=400, concurrency=8)
    # The server closed many reused connections as requests arrived; each
    # of those requests was retried, and a retry on a fresh connection is
    # always answered.
    assert server.closed_idle > 20
    assert retries == server.closed_idle
    assert failures == 0
    assert server.answered == 400


async def test_a_failure_on_the_fresh_connection_is_not_retried_again() -> None:
    # p=1: every request after a connection's first is refused. The retry
    # of each goes to a new connection and succeeds; the client never
    # retries twice, so no request costs more than two attempts.
    async with flaky_server(p=1.0) as (server, url):
        with anyio.fail_after(30):
            failures, retries = await run_gets(url, count=50, concurrency=1)
    assert failures == 0
    assert server.answered == 50
    assert retries == server.closed_idle
    assert server.connections <= 2 * 50
