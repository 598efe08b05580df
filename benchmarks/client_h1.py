"""HTTP/1.1 client benchmark: hyper-util's pooled Client against httpx and aiohttp.

What belongs here: one side-by-side measurement of three pooled asyncio
HTTP/1.1 clients fetching from the same nginx, in one run:

1. ``sequential``: ``--sequential`` GETs one after the other (one keep-alive
   connection), each body read whole;
2. ``concurrent``: ``--requests`` GETs with ``--concurrency`` in flight;
3. ``download``: one streamed GET of a ``--download-mib`` MiB file, read
   chunk by chunk and counted (never held in memory).

Clients: ``hyper_util.client.legacy.Client`` (defaults), ``httpx.AsyncClient``
(defaults), ``aiohttp.ClientSession`` (defaults). The small responses are a
13-byte static file.

Strategy: nginx (``/usr/sbin/nginx``, Debian's package; started by
``_harness.start_nginx``) runs in the foreground (``daemon off;
master_process off;``) from a temporary directory with a generated config on
127.0.0.1 and a free port, ``keepalive_requests``
raised so one connection carries every sequential request, and access logs
off. Each client and workload runs ``--rounds`` times in a fresh asyncio
event loop after a warm-up, the clients taking turns round by round; the
best round is kept. nginx is pinned to ``--server-cpu`` (1) and the clients
to ``--client-cpu`` (0). nginx is stopped by its
PID at the end. Every wait is bounded. Ratios are hyper / peer.

Run: ``.venv/bin/python benchmarks/client_h1.py [--sequential 5000]
[--requests 10000] [--concurrency 50] [--download-mib 100] [--rounds 3]
[--only hyper,httpx,aiohttp]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _harness import add_cpu_arguments, banner, pin_clients, start_nginx, stop_nginx

HELLO = b"Hello, World!"
# Issue 13's target: hyper's rate over aiohttp's on every workload.
TARGETS = {"aiohttp": 1.2}

NGINX_HTTP = """
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {tmp}/www;
        default_type application/octet-stream;
    }}
"""


def start_site(
    tmp: Path, download_mib: int, cpu: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    www = tmp / "www"
    www.mkdir()
    (www / "hello").write_bytes(HELLO)
    block = os.urandom(1 << 20)
    with (www / "big").open("wb") as f:
        for _ in range(download_mib):
            f.write(block)
    return start_nginx(tmp, NGINX_HTTP, cpu=cpu)


async def run_concurrent(total: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> None:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# Each client: an async factory returning (get_small, download, close).
Ops = tuple[
    Callable[[], Awaitable[None]], Callable[[], Awaitable[int]], Callable[[], Awaitable[None]]
]


async def hyper_client(base: str) -> Ops:
    from hyper_core.body import collect
    from hyper_util.client.legacy import Client

    client = Client()
    await client.__aenter__()
    small = f"{base}/hello"
    big = f"{base}/big"

    async def get_small() -> None:
        response = await client.get(small)
        data = (await collect(response.body)).data
        assert data == HELLO, data

    async def download() -> int:
        response = await client.get(big)
        size = 0
        async for chunk in response.body:
            size += len(chunk)
        return size

    return get_small, download, client.aclose


async def httpx_client(base: str) -> Ops:
    import httpx

    client = httpx.AsyncClient()
    small = f"{base}/hello"
    big = f"{base}/big"

    async def get_small() -> None:
        response = await client.get(small)
        assert response.content == HELLO

    async def download() -> int:
        size = 0
        async with client.stream("GET", big) as response:
            async for chunk in response.aiter_raw():
                size += len(chunk)
        return size

    return get_small, download, client.aclose


async def aiohttp_client(base: str) -> Ops:
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


CLIENTS: dict[str, Callable[[str], Awaitable[Ops]]] = {
    "hyper": hyper_client,
    "httpx": httpx_client,
    "aiohttp": aiohttp_client,
}


async def measure(name: str, base: str, workload: str, args: argparse.Namespace) -> float:
    get_small, download, close = await CLIENTS[name](base)
    try:
        for _ in range(50):  # warm-up: the connection(s) and the code paths
            await get_small()
        if workload == "sequential":
            start = time.perf_counter()
            for _ in range(args.sequential):
                await get_small()
            return float(args.sequential / (time.perf_counter() - start))
        if workload == "concurrent":
            start = time.perf_counter()
            await run_concurrent(args.requests, args.concurrency, get_small)
            return float(args.requests / (time.perf_counter() - start))
        start = time.perf_counter()
        size = await download()
        elapsed = time.perf_counter() - start
        expected = args.download_mib << 20
        assert size == expected, f"{name} downloaded {size} bytes, expected {expected}"
        return size / elapsed / 1e6
    finally:
        await close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--download-mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="hyper,httpx,aiohttp")
    add_cpu_arguments(parser)
    args = parser.parse_args()
    pin_clients(args.client_cpu)
    print(banner())
    names = [n for n in args.only.split(",") if n]
    workloads = [("sequential", "req/s"), ("concurrent", "req/s"), ("download", "MB/s")]
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="hyper-bench-") as tmp_name:
        proc, port = start_site(Path(tmp_name), args.download_mib, args.server_cpu)
        base = f"http://127.0.0.1:{port}"
        try:
            for workload, unit in workloads:
                # Rounds take turns between the clients, so that a burst of
                # load from elsewhere on the machine falls on all of them
                # rather than on every round of one.
                for _ in range(args.rounds):
                    for name in names:
                        value: Any = asyncio.run(measure(name, base, workload, args))
                        results[workload, name] = max(results.get((workload, name), 0.0), value)
                for name in names:
                    best = results[workload, name]
                    print(f"{workload:>10} {name:>8}: {best:12,.1f} {unit}", flush=True)
        finally:
            stop_nginx(proc)
    print()
    print(
        f"sequential: {args.sequential} GETs on one connection; concurrent: {args.requests} GETs, "
        f"{args.concurrency} in flight; download: {args.download_mib} MiB streamed "
        f"(best of {args.rounds})"
    )
    header = f"{'workload':>10} " + " ".join(f"{n:>12}" for n in names)
    if "hyper" in names:
        header += "".join(f" {'hyper/' + n:>14}" for n in names if n != "hyper")
    print(header)
    verdicts = []
    for workload, unit in workloads:
        row = f"{workload:>10} " + " ".join(f"{results[workload, n]:>12,.1f}" for n in names)
        if "hyper" in names:
            mine = results[workload, "hyper"]
            row += "".join(f" {mine / results[workload, n]:>13.2f}x" for n in names if n != "hyper")
            for peer, target in TARGETS.items():
                if peer in names:
                    ratio = mine / results[workload, peer]
                    met = "met" if ratio >= target else "NOT met"
                    verdicts.append(
                        f"  {workload}: hyper/{peer} = {ratio:.2f}x  target >= {target}x: {met}"
                    )
        print(f"{row}   ({unit})")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
