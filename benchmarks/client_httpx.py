"""httpx benchmark: ``httpx.AsyncClient`` on its default transport vs on hyper's, and aiohttp.

What belongs here: one side-by-side measurement, in one run, of the same
httpx code (``await client.get(url)``, ``response.content``) on two
transports, with aiohttp as a third client, all against the same nginx:

1. ``sequential``: ``--sequential`` GETs one after the other, bodies read;
2. ``concurrent``: ``--requests`` GETs with ``--concurrency`` in flight;
3. ``download``: one streamed GET of a ``--download-mib`` MiB file, read
   chunk by chunk (``aiter_raw``) and counted;
4. ``h2``: ``--requests`` GETs with ``--concurrency`` in flight over HTTP/2
   (h2c with prior knowledge: one multiplexed connection; aiohttp has no
   HTTP/2 and sits this one out).

Clients: ``httpx`` (``httpx.AsyncClient()``, its default transport on
httpcore; for ``h2``, ``http1=False, http2=True``), ``hyper``
(``httpx.AsyncClient(transport=AsyncHyperTransport())``, the same flags
for ``h2``), ``aiohttp`` (``ClientSession()``), and ``null``: httpx on a
transport that answers from memory without any I/O (nginx's own header
fields and body, captured once), the ceiling any transport can reach
under httpx (what remains is httpx's own cost), and
``raw``: hyper-util's pooled ``Client`` itself, without httpx. A transport
costing nothing over ``raw`` would take ``1/null + 1/raw`` per request:
the bound printed last, for the request-rate workloads.

Strategy: as ``client_h1.py`` (whose nginx helpers it uses): nginx in the
foreground from a temporary directory, on 127.0.0.1 and free ports (one
HTTP/1.1, one h2c), keep-alive raised, access log off; each client and
workload runs ``--rounds`` times in a fresh asyncio loop after a warm-up,
clients taking turns round by round, best round kept; nginx is stopped by
its PID. Ratios are hyper / peer. Run under ``flock /tmp/bench.lock`` on a
shared machine.

Run: ``.venv/bin/python benchmarks/client_httpx.py [--sequential 3000]
[--requests 5000] [--concurrency 50] [--download-mib 100] [--rounds 3]
[--only hyper,httpx,aiohttp,null,raw] [--profile hyper:sequential]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _harness import add_cpu_arguments, pin_clients, start_nginx_two_ports, stop_nginx
from client_h1 import HELLO, run_concurrent

NGINX_HTTP = """
    http2_max_concurrent_streams 256;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        listen 127.0.0.1:{h2_port} http2 backlog=1024;
        root {tmp}/www;
        default_type application/octet-stream;
    }}
"""

WORKLOADS = [
    ("sequential", "req/s"),
    ("concurrent", "req/s"),
    ("download", "MB/s"),
    ("h2", "req/s"),
]


def start_site(
    tmp: Path, download_mib: int, cpu: int | None = None
) -> tuple[subprocess.Popen[bytes], int, int]:
    www = tmp / "www"
    www.mkdir()
    (www / "hello").write_bytes(HELLO)
    block = os.urandom(1 << 20)
    with (www / "big").open("wb") as f:
        for _ in range(download_mib):
            f.write(block)
    return start_nginx_two_ports(tmp, NGINX_HTTP, cpu=cpu)


# Each client: an async factory returning (get_small, download, close), or None
# when it does not do that workload.
Ops = tuple[
    Callable[[], Awaitable[None]], Callable[[], Awaitable[int]], Callable[[], Awaitable[None]]
]


def httpx_ops(client: Any, base: str) -> Ops:
    small = f"{base}/hello"
    big = f"{base}/big"

    async def get_small() -> None:
        response = await client.get(small)
        assert response.content == HELLO, response.content

    async def download() -> int:
        size = 0
        async with client.stream("GET", big) as response:
            async for chunk in response.aiter_raw():
                size += len(chunk)
        return size

    return get_small, download, client.aclose


async def httpx_client(base: str, h2: bool) -> Ops | None:
    import httpx

    options: dict[str, Any] = {"http1": False, "http2": True} if h2 else {}
    return httpx_ops(httpx.AsyncClient(**options), base)


async def hyper_client(base: str, h2: bool) -> Ops | None:
    import httpx

    from hyper_util.client.httpx import AsyncHyperTransport

    options: dict[str, Any] = {"http1": False, "http2": True} if h2 else {}
    return httpx_ops(httpx.AsyncClient(transport=AsyncHyperTransport(**options)), base)


async def null_client(base: str, h2: bool) -> Ops | None:
    import httpx

    # The header fields nginx sends with this body (eight of them), so that
    # httpx does the same work on them (Headers, cookie extraction) as with
    # a real transport: with one field the ceiling would be about 10 us
    # lower per request than what any transport can reach. (Over HTTP/2 there
    # is no Connection field: seven.)
    async with httpx.AsyncClient(http1=not h2, http2=h2) as probe:
        fields = (await probe.get(f"{base}/hello")).headers.raw

    class NullTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                200,
                headers=fields,
                stream=httpx.ByteStream(HELLO),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": b"OK"},
            )

    get_small, _, close = httpx_ops(httpx.AsyncClient(transport=NullTransport()), base)

    async def download() -> int:
        raise NotImplementedError

    return get_small, download, close


async def raw_client(base: str, h2: bool) -> Ops | None:
    from hyper_core.body import collect
    from hyper_util.client.legacy import Client

    client = Client(http2_only=h2)
    await client.__aenter__()
    small = f"{base}/hello"
    big = f"{base}/big"

    async def get_small() -> None:
        response = await client.get(small)
        assert (await collect(response.body)).data == HELLO

    async def download() -> int:
        response = await client.get(big)
        size = 0
        async for chunk in response.body:
            size += len(chunk)
        return size

    return get_small, download, client.aclose


async def aiohttp_client(base: str, h2: bool) -> Ops | None:
    if h2:
        return None  # aiohttp speaks HTTP/1.1 only
    import aiohttp

    session = aiohttp.ClientSession()
    small = f"{base}/hello"
    big = f"{base}/big"

    async def get_small() -> None:
        async with session.get(small) as response:
            assert await response.read() == HELLO

    async def download() -> int:
        size = 0
        async with session.get(big, auto_decompress=False) as response:
            async for chunk in response.content.iter_any():
                size += len(chunk)
        return size

    return get_small, download, session.close


CLIENTS: dict[str, Callable[[str, bool], Awaitable[Ops | None]]] = {
    "hyper": hyper_client,
    "httpx": httpx_client,
    "aiohttp": aiohttp_client,
    "null": null_client,
    "raw": raw_client,
}


async def measure(
    name: str, bases: tuple[str, str], workload: str, args: argparse.Namespace
) -> tuple[float, float] | None:
    """(rate, CPU seconds of this process per unit) of one client on one workload."""
    h2 = workload == "h2"
    if name == "null" and workload == "download":
        return None
    ops = await CLIENTS[name](bases[1] if h2 else bases[0], h2)
    if ops is None:
        return None
    get_small, download, close = ops
    try:
        for _ in range(50):  # warm-up: the connection(s) and the code paths
            await get_small()
        start, cpu = time.perf_counter(), time.process_time()
        if workload == "sequential":
            for _ in range(args.sequential):
                await get_small()
            count = float(args.sequential)
        elif workload in ("concurrent", "h2"):
            await run_concurrent(args.requests, args.concurrency, get_small)
            count = float(args.requests)
        else:
            size = await download()
            expected = args.download_mib << 20
            assert size == expected, f"{name} downloaded {size} bytes, expected {expected}"
            count = size / 1e6
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        return count / elapsed, cpu / count
    finally:
        await close()


def profile(spec: str, bases: tuple[str, str], args: argparse.Namespace) -> None:
    """Run one client and workload under cProfile; print the top functions."""
    name, _, workload = spec.partition(":")
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(measure(name, bases, workload or "sequential", args))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--download-mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="hyper,httpx,aiohttp,null,raw")
    parser.add_argument("--profile", help="client:workload to run once under cProfile")
    add_cpu_arguments(parser)
    args = parser.parse_args()
    pin_clients(args.client_cpu)
    names = [n for n in args.only.split(",") if n]
    results: dict[tuple[str, str], float] = {}
    cpu_costs: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="hyper-bench-") as tmp_name:
        proc, port, h2_port = start_site(Path(tmp_name), args.download_mib, args.server_cpu)
        bases = (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{h2_port}")
        try:
            if args.profile:
                profile(args.profile, bases, args)
                return
            for workload, unit in WORKLOADS:
                # Rounds take turns between the clients, so that a burst of
                # load from elsewhere on the machine falls on all of them.
                for _ in range(args.rounds):
                    for name in names:
                        measured = asyncio.run(measure(name, bases, workload, args))
                        if measured is not None:
                            rate, cpu = measured
                            key = (workload, name)
                            results[key] = max(results.get(key, 0), rate)
                            cpu_costs[key] = min(cpu_costs.get(key, float("inf")), cpu)
                for name in names:
                    best = results.get((workload, name))
                    shown = "n/a" if best is None else f"{best:12,.1f} {unit}"
                    print(f"{workload:>10} {name:>8}: {shown}", flush=True)
        finally:
            stop_nginx(proc)
    print()
    print(
        f"sequential: {args.sequential} GETs on one connection; concurrent: {args.requests} "
        f"GETs, {args.concurrency} in flight; download: {args.download_mib} MiB streamed; "
        f"h2: {args.requests} GETs, {args.concurrency} in flight on one h2c connection "
        f"(best of {args.rounds}); null = httpx on a transport without I/O"
    )
    peers = [n for n in names if n != "hyper"]
    header = f"{'workload':>10} " + " ".join(f"{n:>12}" for n in names)
    if "hyper" in names:
        header += "".join(f" {'hyper/' + n:>14}" for n in peers)
    print(header)
    for workload, unit in WORKLOADS:
        cells = [results.get((workload, n)) for n in names]
        row = f"{workload:>10} " + " ".join(
            f"{'n/a':>12}" if c is None else f"{c:>12,.1f}" for c in cells
        )
        mine = results.get((workload, "hyper"))
        if mine is not None:
            for n in peers:
                other = results.get((workload, n))
                row += f" {'n/a':>14}" if other is None else f" {mine / other:>13.2f}x"
        print(f"{row}   ({unit})")
    print()
    print("CPU time of the client process, microseconds per request (per MB for download):")
    print(f"{'workload':>10} " + " ".join(f"{n:>12}" for n in names) + f" {'httpx/hyper':>14}")
    for workload, _ in WORKLOADS:
        costs = [cpu_costs.get((workload, n)) for n in names]
        row = f"{workload:>10} " + " ".join(
            f"{'n/a':>12}" if c is None else f"{c * 1e6:>12,.1f}" for c in costs
        )
        mine, theirs = cpu_costs.get((workload, "hyper")), cpu_costs.get((workload, "httpx"))
        if mine and theirs:
            row += f" {theirs / mine:>13.2f}x"
        print(row)
    if {"null", "raw", "httpx"} <= set(names):
        print()
        for workload, _ in WORKLOADS:
            null, raw = results.get((workload, "null")), results.get((workload, "raw"))
            default, mine = results.get((workload, "httpx")), results.get((workload, "hyper"))
            if null is None or raw is None or default is None or mine is None:
                continue
            bound = 1 / (1 / null + 1 / raw)
            print(
                f"{workload:>10}: httpx itself {1e6 / null:6.1f} us/request, raw client "
                f"{1e6 / raw:6.1f}, on hyper's transport {1e6 / mine:6.1f}; a free adapter "
                f"would reach {bound:8,.1f} req/s = {bound / default:.2f}x httpx's default"
            )


if __name__ == "__main__":
    main()
