"""HTTP/3 side by side: our server against hypercorn's, our client against niquests.

What belongs here: one run that measures HTTP/3 requests per second (hello
world, many concurrent streams on one connection) and download throughput
(one large response), for

* servers, loaded by the same client (ours): ``hyper`` (hyper-core's http3
  on ``hyper_core.quic``, ``servers/h3_hyper.py``) and ``hypercorn``
  (``hypercorn[h3]``, ``servers/h3_hypercorn.py``), both on aioquic;
* clients, against the same server (ours): ``hyper`` (``hyper_core``'s
  http3 client on asyncio, and ``hyper-uvloop``) and ``niquests``
  (multiplexed session, HTTP/3 through qh3).

Strategy: every server and every client is its own process, servers
pinned to CPU 1 and clients to CPU 0 (``taskset``), on 127.0.0.1 with a
trustme certificate. Each measurement is preceded by a warm-up; the client
reports its own wall time. Ratios against the first row of each table are
what count (the machine is shared). Every process is stopped by its PID.

Run: ``flock /tmp/bench.lock .venv/bin/python benchmarks/h3.py
[--requests 2000] [--concurrency 32] [--mib 32]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import PYTHON, SERVERS_DIR, free_port, pinned, stop

HERE = Path(__file__).parent


# -- clients (run as ``h3.py --client NAME ...`` in their own process) ----------------------


def client_hyper(args: argparse.Namespace) -> dict[str, float]:
    import anyio

    from hyper_core import quic
    from hyper_core.body import collect
    from hyper_core.client.conn import http3
    from hyper_core.http import Request

    out: dict[str, float] = {}

    async def main() -> None:
        async with (
            quic.connect(
                "127.0.0.1", args.port, server_name="localhost", cafile=args.cafile
            ) as connection,
            anyio.create_task_group() as tg,
        ):
            sender, driver = await http3.handshake(connection)
            tg.start_soon(driver.serve)
            hello = Request("GET", f"https://localhost:{args.port}/")

            async def worker(n: int) -> None:
                for _ in range(n):
                    response = await sender.send_request(hello)
                    await collect(response.body)

            async def load(total: int) -> float:
                start = time.perf_counter()
                async with anyio.create_task_group() as workers:
                    for i in range(args.concurrency):
                        workers.start_soon(
                            worker, total // args.concurrency + (i < total % args.concurrency)
                        )
                return time.perf_counter() - start

            await load(args.requests // 5)
            out["rps"] = args.requests / await load(args.requests)
            start = time.perf_counter()
            response = await sender.send_request(
                Request("GET", f"https://localhost:{args.port}/big")
            )
            size = 0
            async for chunk in response.body:
                size += len(chunk)
            out["mbps"] = size / (time.perf_counter() - start) / 1e6
            await sender.aclose()

    backend_options = {"use_uvloop": True} if args.client == "hyper-uvloop" else {}
    anyio.run(main, backend="asyncio", backend_options=backend_options)
    return out


def client_niquests(args: argparse.Namespace) -> dict[str, float]:
    import niquests

    out: dict[str, float] = {}
    with niquests.Session(multiplexed=True, disable_http1=True, disable_http2=True) as session:
        cache: Any = session.quic_cache_layer
        cache.add_domain("localhost", args.port)
        url = f"https://localhost:{args.port}/"

        def load(total: int) -> float:
            start = time.perf_counter()
            done = 0
            while done < total:
                batch = [
                    session.get(url, verify=args.cafile)
                    for _ in range(min(args.concurrency, total - done))
                ]
                session.gather()
                for response in batch:
                    assert response.status_code == 200
                    assert response.http_version == 30
                    assert response.content == b"Hello, World!"
                done += len(batch)
            return time.perf_counter() - start

        load(args.requests // 5)
        out["rps"] = args.requests / load(args.requests)
    with niquests.Session(disable_http1=True, disable_http2=True) as session:
        cache = session.quic_cache_layer
        cache.add_domain("localhost", args.port)
        start = time.perf_counter()
        response = session.get(
            f"https://localhost:{args.port}/big", verify=args.cafile, stream=True
        )
        size = sum(len(chunk) for chunk in response.iter_content(65536))
        out["mbps"] = size / (time.perf_counter() - start) / 1e6
    return out


CLIENTS = {"hyper": client_hyper, "hyper-uvloop": client_hyper, "niquests": client_niquests}


# -- the orchestration --------------------------------------------------------------------


def start_server(name: str, port: int, certs: dict[str, str], big: int) -> subprocess.Popen[bytes]:
    tls = ["--certfile", certs["cert"], "--keyfile", certs["key"], "--big", str(big)]
    if name == "hyper":
        cmd = [PYTHON, str(SERVERS_DIR / "h3_hyper.py"), "--port", str(port), *tls]
    else:
        cmd = [PYTHON, str(SERVERS_DIR / "h3_hypercorn.py"), "--port", str(port)]
        cmd += ["--tcp-port", str(free_port()), *tls]
    return subprocess.Popen(
        [*pinned(1, 0), *cmd], start_new_session=True, stdout=subprocess.DEVNULL
    )


def run_client(name: str, port: int, args: argparse.Namespace, cafile: str) -> dict[str, float]:
    cmd = [*pinned(0, 0), PYTHON, str(HERE / "h3.py"), "--client", name, "--port", str(port)]
    cmd += ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    cmd += ["--cafile", cafile]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"client {name} failed: {result.stderr[-2000:]}")
    data: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def wait_for_server(port: int, cafile: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [PYTHON, "-c", PROBE, str(port), cafile], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"no HTTP/3 server answered on UDP port {port}")


PROBE = """
import sys, anyio
from hyper_core import quic
async def main():
    async with quic.connect("127.0.0.1", int(sys.argv[1]), server_name="localhost",
                            cafile=sys.argv[2], handshake_timeout=1):
        pass
anyio.run(main)
"""


def make_certs(folder: Path) -> dict[str, str]:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    paths = {
        "ca": str(folder / "ca.pem"),
        "cert": str(folder / "c.pem"),
        "key": str(folder / "k.pem"),
    }
    ca.cert_pem.write_to_path(paths["ca"])
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(paths["cert"], append=True)
    leaf.private_key_pem.write_to_path(paths["key"])
    return paths


def measure(
    server: str, client: str, args: argparse.Namespace, certs: dict[str, str]
) -> dict[str, float]:
    port = free_port()
    proc = start_server(server, port, certs, args.mib * 1024 * 1024)
    try:
        wait_for_server(port, certs["ca"])
        return run_client(client, port, args, certs["ca"])
    finally:
        stop(proc)


def table(title: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    base = rows[0][1]
    print(f"\n{title}\n")
    print("| | req/s | ratio | download MB/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, row in rows:
        print(
            f"| {name} | {row['rps']:.0f} | {row['rps'] / base['rps']:.2f} "
            f"| {row['mbps']:.1f} | {row['mbps'] / base['mbps']:.2f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mib", type=int, default=32, help="download size")
    parser.add_argument("--client", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cafile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        print(json.dumps(CLIENTS[args.client](args)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        certs = make_certs(Path(folder))
        servers = [(name, measure(name, "hyper", args, certs)) for name in ("hyper", "hypercorn")]
        clients = [
            (name, measure("hyper", name, args, certs))
            for name in ("hyper", "hyper-uvloop", "niquests")
        ]
    print(
        f"HTTP/3 on loopback: {args.requests} requests, {args.concurrency} streams at once on "
        f"one connection; a {args.mib} MiB download"
    )
    table("Servers (client: hyper, asyncio)", servers)
    table("Clients (server: hyper, asyncio)", clients)
    return 0


if __name__ == "__main__":
    sys.exit(main())
