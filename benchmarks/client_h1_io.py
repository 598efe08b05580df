"""HTTP/1.1 client connection per IO path: hyper-core's one read path on every stream.

What belongs here: the cost of the HTTP/1 client's read path over each kind
of stream it runs on, so a change to it is measured where it matters most:

* ``fast``: hyper-util's ``AsyncioSocketStream`` on asyncio (the receive-watch
  capability is the stream's own);
* ``anyio``: anyio's TCP stream on asyncio, and ``trio``: anyio's TCP stream
  on trio (the connection wraps them in ``hyper_core.rt.ReceiveWatcher``).

Workloads on one ``hyper_core.client.conn.http1`` connection (no pool):
``sequential`` (``--sequential`` GETs of a 13-byte file, one after the
other, each body read whole) and ``download`` (``--download-mib`` MiB
streamed and counted). With ``--against PYTHON`` (another tree's
interpreter, e.g. a worktree of ``main``) every cell is measured with both
trees, rounds interleaved, and the table gives this tree / that tree.

Strategy: nginx (Debian's, ``_harness.start_nginx``) serves the files on
127.0.0.1 and a free port. Each cell runs in a fresh subprocess of the
given interpreter (``--worker``), which prints one number; the best of
``--rounds`` is kept. nginx is stopped by its PID at the end; every
subprocess has a timeout.

Run: ``.venv/bin/python benchmarks/client_h1_io.py [--against ../base/.venv/bin/python]
[--sequential 5000] [--download-mib 50] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import PYTHON, banner, start_nginx, stop_nginx

HELLO = b"Hello, World!"
IOS = ("fast", "anyio", "trio")
WORKLOADS = (("sequential", "req/s"), ("download", "MB/s"))
WORKER_TIMEOUT = 300.0

NGINX_HTTP = """
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {tmp}/www;
        default_type application/octet-stream;
    }}
"""


async def _measure(
    io_kind: str, port: int, workload: str, count: int, mib: int
) -> tuple[float, float]:
    import anyio

    from hyper_core.body import collect
    from hyper_core.client.conn import http1
    from hyper_core.http import Request
    from hyper_util.rt import connect_tcp

    if io_kind == "fast":
        stream = await connect_tcp("127.0.0.1", port, fast=True)
    else:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    sender, connection = await http1.handshake(stream)
    headers = {"host": "bench.test"}
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)

        async def get_small() -> None:
            response = await sender.send_request(Request("GET", "/hello", headers=headers))
            assert (await collect(response.body)).to_bytes() == HELLO

        for _ in range(50):  # warm-up
            await get_small()
        cpu = time.process_time()
        if workload == "sequential":
            start = time.perf_counter()
            for _ in range(count):
                await get_small()
            result = count / (time.perf_counter() - start)
            cpu = (time.process_time() - cpu) / count
        else:
            start = time.perf_counter()
            response = await sender.send_request(Request("GET", "/big", headers=headers))
            size = 0
            async for chunk in response.body:
                size += len(chunk)
            elapsed = time.perf_counter() - start
            assert size == mib << 20, size
            result = size / elapsed / 1e6
            cpu = (time.process_time() - cpu) / mib
        tg.cancel_scope.cancel()
    return result, cpu * 1e6


def worker(args: argparse.Namespace) -> None:
    import anyio

    backend = "trio" if args.io == "trio" else "asyncio"
    value = anyio.run(
        _measure,
        args.io,
        args.port,
        args.workload,
        args.sequential,
        args.download_mib,
        backend=backend,
    )
    print(*value)


def run_cell(
    python: str, io_kind: str, port: int, workload: str, args: argparse.Namespace
) -> tuple[float, float]:
    command = [
        python, __file__, "--worker", "--io", io_kind, "--port", str(port),
        "--workload", workload, "--sequential", str(args.sequential),
        "--download-mib", str(args.download_mib),
    ]  # fmt: skip
    out = subprocess.run(
        command, check=True, capture_output=True, timeout=WORKER_TIMEOUT, cwd=Path(__file__).parent
    )
    rate, cpu = out.stdout.split()[-2:]
    return float(rate), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=None, help="another tree's Python interpreter")
    parser.add_argument("--sequential", type=int, default=5000)
    parser.add_argument("--download-mib", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(IOS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--io", default="fast", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workload", default="sequential", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    print(banner())
    trees = {"this": PYTHON}
    if args.against:
        trees["base"] = args.against
    ios = [io for io in args.only.split(",") if io]
    best: dict[tuple[str, str, str], float] = {}
    least_cpu: dict[tuple[str, str, str], float] = {}
    cpu_runs: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hyper-bench-") as tmp_name:
        tmp = Path(tmp_name)
        www = tmp / "www"
        www.mkdir()
        (www / "hello").write_bytes(HELLO)
        block = os.urandom(1 << 20)
        with (www / "big").open("wb") as f:
            for _ in range(args.download_mib):
                f.write(block)
        proc, port = start_nginx(tmp, NGINX_HTTP)
        try:
            for _ in range(args.rounds):
                for io_kind in ios:
                    for workload, _unit in WORKLOADS:
                        for tree, python in trees.items():
                            rate, cpu = run_cell(python, io_kind, port, workload, args)
                            key = (io_kind, workload, tree)
                            best[key] = max(best.get(key, 0.0), rate)
                            least_cpu[key] = min(least_cpu.get(key, float("inf")), cpu)
                            cpu_runs.setdefault(key, []).append(cpu)
        finally:
            stop_nginx(proc)
    print(
        f"\nsequential: {args.sequential} GETs on one connection; download: "
        f"{args.download_mib} MiB streamed (best of {args.rounds})"
    )
    print(
        "rate: best wall-clock rate; cpu: least client CPU time (us per request or "
        "per MiB), the steadier figure on a shared machine; med: the median CPU "
        "time; ratios: rate this/base, cpu and med base/this (above 1: this is faster)"
    )
    header = f"{'io':>6} {'workload':>10} " + " ".join(f"{t + ' rate':>12}" for t in trees)
    header += " " + " ".join(f"{t + ' cpu':>10}" for t in trees)
    if "base" in trees:
        header += f" {'rate':>7} {'cpu':>7} {'med':>7}"
    print(header)
    for io_kind in ios:
        for workload, unit in WORKLOADS:
            rates = {t: best[io_kind, workload, t] for t in trees}
            cpus = {t: least_cpu[io_kind, workload, t] for t in trees}
            row = f"{io_kind:>6} {workload:>10} " + " ".join(f"{rates[t]:>12,.1f}" for t in trees)
            row += " " + " ".join(f"{cpus[t]:>10,.1f}" for t in trees)
            if "base" in trees:
                med = {t: statistics.median(cpu_runs[io_kind, workload, t]) for t in trees}
                row += (
                    f" {rates['this'] / rates['base']:>6.2f}x {cpus['base'] / cpus['this']:>6.2f}x"
                    f" {med['base'] / med['this']:>6.2f}x"
                )
            print(f"{row}  ({unit})", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
