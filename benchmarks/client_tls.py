"""HTTPS client benchmark: hyper-util's Client with hyper-tls against httpx and aiohttp.

What belongs here: one side-by-side measurement of HTTPS requests per
second against the same nginx with TLS, in one run:

1. ``new-conn``: ``--new-conn`` GETs one after the other, each on a new
   connection (TCP + TLS handshake every time): the handshake cost;
2. ``keep-alive``: ``--sequential`` GETs one after the other on one
   kept-alive connection: TLS record overhead on small responses;
3. ``concurrent``: ``--requests`` GETs with ``--concurrency`` in flight on
   pooled connections.

Clients, all HTTP/1.1 (aiohttp has no HTTP/2) and all verifying the
certificate against the same trustme CA with a plain ``ssl.SSLContext``:
``hyper`` (``Client(HttpsConnector(http2=False))``), ``hyper-h2`` (the same
with ALPN ``h2``: one multiplexed connection; not in ``new-conn``),
``httpx`` (``AsyncClient(verify=ctx)``), ``aiohttp``
(``ClientSession(connector=TCPConnector(ssl=ctx))``), and on request
``hyper-gai`` (``hyper`` resolving every new connection with
``GaiResolver()``, as before the DNS cache: ``--only hyper,hyper-gai``
measures the cache). New connections per
request come from ``pool_max_idle_per_host=0``, httpx's
``Limits(max_keepalive_connections=0)`` and aiohttp's ``force_close=True``.

Strategy: nginx (``/usr/sbin/nginx``, started by ``_harness.start_nginx``)
runs in the foreground (``daemon off; master_process off;``) from a
temporary folder holding the trustme certificate, on 127.0.0.1 and a free
port, with ``listen ... ssl http2``, ``keepalive_requests`` raised and
access logs off; it answers a 13-byte body. Each client and workload runs
``--rounds`` times on asyncio after a warm-up, the clients taking turns
round by round (so a burst of load on the machine hits them all alike); the
best round is kept. nginx is stopped by its PID at the end.

Run: ``.venv/bin/python benchmarks/client_tls.py [--new-conn 500]
[--sequential 3000] [--requests 5000] [--concurrency 50] [--rounds 3]
[--only hyper,hyper-h2,httpx,aiohttp]``.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import trustme
from _harness import add_cpu_arguments, banner, pin_clients, start_nginx, stop_nginx

# Issue 13's target: hyper's rate over aiohttp's on every workload.
TARGETS = {"aiohttp": 1.2}

NGINX_HTTP = """
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        location / {{ return 200 "Hello, World!"; }}
    }}
"""

Get = Callable[[], Awaitable[None]]


def start_site(
    tmp: Path, ca: trustme.CA, cpu: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    leaf = ca.issue_cert("localhost")
    (tmp / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    (tmp / "key.pem").write_bytes(leaf.private_key_pem.bytes())
    return start_nginx(tmp, NGINX_HTTP, cpu=cpu)


def context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def make_client(name: str, ca: trustme.CA, fresh: bool, stack: AsyncExitStack) -> Get:
    url = f"https://localhost:{PORT}/"
    if name.startswith("hyper"):
        from hyper_core.body import collect
        from hyper_tls import HttpsConnector
        from hyper_util.client.legacy import Client, HttpConnector
        from hyper_util.client.legacy.connect import GaiResolver

        inner = HttpConnector(
            enforce_http=False, resolver=GaiResolver() if name == "hyper-gai" else None
        )
        connector = HttpsConnector(inner, ssl_context=context(ca), http2=name == "hyper-h2")
        client = await stack.enter_async_context(
            Client(connector, pool_max_idle_per_host=0 if fresh else None)
        )

        async def get_hyper() -> None:
            response = await client.get(url)
            assert (await collect(response.body)).to_bytes() == b"Hello, World!"

        return get_hyper
    if name == "httpx":
        import httpx

        limits = httpx.Limits(max_keepalive_connections=0) if fresh else httpx.Limits()
        hx = await stack.enter_async_context(httpx.AsyncClient(verify=context(ca), limits=limits))

        async def get_httpx() -> None:
            response = await hx.get(url)
            assert response.content == b"Hello, World!"

        return get_httpx
    import aiohttp

    session = await stack.enter_async_context(
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context(ca), force_close=fresh, limit=0)
        )
    )

    async def get_aiohttp() -> None:
        async with session.get(url) as response:
            assert await response.read() == b"Hello, World!"

    return get_aiohttp


async def round_(name: str, workload: str, ca: trustme.CA, args: argparse.Namespace) -> float:
    async with AsyncExitStack() as stack:
        get = await make_client(name, ca, workload == "new-conn", stack)
        await get()  # warm-up: imports, first handshake
        if workload == "concurrent":
            total = int(args.requests)
            queue = iter(range(total))

            async def worker() -> None:
                for _ in queue:
                    await get()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        else:
            total = int(args.new_conn if workload == "new-conn" else args.sequential)
            started = time.perf_counter()
            for _ in range(total):
                await get()
        return total / (time.perf_counter() - started)


PORT = 0


def main() -> None:
    global PORT
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--new-conn", type=int, default=500)
    parser.add_argument("--sequential", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="hyper,hyper-h2,httpx,aiohttp")
    add_cpu_arguments(parser)
    args = parser.parse_args()
    pin_clients(args.client_cpu)
    print(banner())
    names = args.only.split(",")
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as folder:
        proc, PORT = start_site(Path(folder), ca, args.server_cpu)
        try:
            results: dict[tuple[str, str], float] = {}
            for workload in ("new-conn", "keep-alive", "concurrent"):
                for _ in range(args.rounds):
                    for name in names:
                        if name == "hyper-h2" and workload == "new-conn":
                            continue
                        rate = asyncio.run(round_(name, workload, ca, args))
                        results[workload, name] = max(rate, results.get((workload, name), 0.0))
                for name in names:
                    if (workload, name) in results:
                        best = results[workload, name]
                        print(f"{workload:<11} {name:<9} {best:>9.0f} req/s", flush=True)
        finally:
            stop_nginx(proc)
    print("\nworkload     " + "".join(f"{n:>10}" for n in names) + "  (req/s)")
    for workload in ("new-conn", "keep-alive", "concurrent"):
        cells = (results.get((workload, n)) for n in names)
        print(f"{workload:<12} " + "".join(f"{c:>10.0f}" if c else f"{'-':>10}" for c in cells))
    for workload in ("new-conn", "keep-alive", "concurrent"):
        for peer, target in TARGETS.items():
            mine, theirs = results.get((workload, "hyper")), results.get((workload, peer))
            if mine and theirs:
                ratio = mine / theirs
                met = "met" if ratio >= target else "NOT met"
                print(f"  {workload}: hyper/{peer} = {ratio:.2f}x  target >= {target}x: {met}")


if __name__ == "__main__":
    main()
