"""HTTP/1.1 client connection per IO path: hyper-core's one read path on every stream.

What belongs here: the cost of the HTTP/1 client's read path over each kind
of stream it runs on, so a change to it is measured where it matters most:

* ``fast``: hyper-util's ``AsyncioSocketStream`` on asyncio (the receive-watch
  capability is the stream's own);
* ``anyio``: anyio's TCP stream on asyncio, and ``trio``: anyio's TCP stream
  on trio (the connection wraps them in ``hyper_core.rt.ReceiveWatcher``);
* ``fast-rw`` (not by default, and only in a tree that has
  ``ReceiveWatcher``): the ``fast`` stream read through a
  ``ReceiveWatcher``, the general twin of the stream's own watch.

Workloads on one ``hyper_core.client.conn.http1`` connection (no pool):
``sequential`` (``--sequential`` GETs of a 13-byte file, one after the
other, each body read whole) and ``download`` (``--download-mib`` MiB
streamed and counted). With ``--against PYTHON`` (another tree's
interpreter, e.g. a worktree of ``main``) every cell is measured with both
trees, rounds interleaved, and the table gives this tree / that tree.

With ``--instructions`` the cells are instruction counts instead (the
steady figure on a shared machine, as ``instructions.py`` counts a
server's): each worker runs under ``valgrind --tool=cachegrind`` twice,
with ``--small`` and ``--large`` requests (or MiB for the download); the
difference over the difference in work is the client's instructions per
request (per MiB), without start-up and warm-up.

Strategy: nginx (Debian's, ``_harness.start_nginx``) serves the files on
127.0.0.1 and a free port. Each cell runs in a fresh subprocess of the
given interpreter (``--worker``), which prints one number; the best of
``--rounds`` is kept. nginx is stopped by its PID at the end; every
subprocess has a timeout.

Run: ``.venv/bin/python benchmarks/client_h1_io.py [--against ../base/.venv/bin/python]
[--sequential 5000] [--download-mib 50] [--rounds 3] [--only fast,anyio,trio]
[--instructions [--small 200] [--large 1200]]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import PYTHON, banner, start_nginx, stop_nginx
from client_h1 import HELLO, NGINX_HTTP  # the same site as the pooled-client benchmark

IOS = ("fast", "anyio", "trio")
WORKLOADS = (("sequential", "req/s"), ("download", "MB/s"))
WORKER_TIMEOUT = 300.0


async def _measure(
    io_kind: str, port: int, workload: str, count: int, mib: int
) -> tuple[float, float]:
    import anyio

    from hyper_core.body import collect
    from hyper_core.client.conn import http1
    from hyper_core.http import Request
    from hyper_util.rt import connect_tcp

    stream: Any
    if io_kind.startswith("fast"):
        stream = await connect_tcp("127.0.0.1", port, fast=True)
    else:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    watcher = None
    if io_kind == "fast-rw":
        # The asyncio stream read through the general ReceiveWatcher instead
        # of its own watch: the twin the stream's capability is measured against.
        from hyper_core.rt import ReceiveWatcher

        stream = watcher = ReceiveWatcher(stream)
    sender, connection = await http1.handshake(stream)
    headers = {"host": "bench.test"}
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        if watcher is not None:
            tg.start_soon(watcher.run)

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
            response = await sender.send_request(Request("GET", f"/mib{mib}", headers=headers))
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


def count_instructions(python: str, io_kind: str, port: int, workload: str, amount: int) -> int:
    """Instructions one worker process runs in all, for ``amount`` requests (or MiB)."""
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        python, __file__, "--worker", "--io", io_kind, "--port", str(port),
        "--workload", workload, "--sequential", str(amount), "--download-mib", str(amount),
    ]  # fmt: skip
    out = subprocess.run(
        command, check=True, capture_output=True, timeout=WORKER_TIMEOUT * 4,
        cwd=Path(__file__).parent,
    )  # fmt: skip
    match = re.search(rb"I\s+refs:\s+([\d,]+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from cachegrind:\n{out.stderr.decode()[-2000:]}")
    return int(match.group(1).replace(b",", b""))


def instructions(
    trees: dict[str, str], ios: list[str], port: int, args: argparse.Namespace
) -> None:
    """Print instructions per request (per MiB) for each IO and workload, per tree."""
    print(
        f"\ninstructions per request (sequential) and per MiB (download): "
        f"(runs of {args.large} and {args.small} requests, {args.large_mib} and "
        f"{args.small_mib} MiB) under cachegrind; ratio: base/this (above 1: this is leaner)"
    )
    header = f"{'io':>6} {'workload':>10} " + " ".join(f"{t:>12}" for t in trees)
    if "base" in trees:
        header += f" {'ratio':>7}"
    print(header, flush=True)
    for io_kind in ios:
        for workload, _unit in WORKLOADS:
            per: dict[str, float] = {}
            low, high = (
                (args.small, args.large)
                if workload == "sequential"
                else (args.small_mib, args.large_mib)
            )
            for tree, python in trees.items():
                small = count_instructions(python, io_kind, port, workload, low)
                large = count_instructions(python, io_kind, port, workload, high)
                per[tree] = (large - small) / (high - low)
            row = f"{io_kind:>6} {workload:>10} " + " ".join(f"{per[t]:>12,.0f}" for t in trees)
            if "base" in trees:
                row += f" {per['base'] / per['this']:>6.3f}x"
            print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=None, help="another tree's Python interpreter")
    parser.add_argument("--sequential", type=int, default=5000)
    parser.add_argument("--download-mib", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(IOS))
    parser.add_argument("--instructions", action="store_true", help="count instructions")
    parser.add_argument("--small", type=int, default=200, help="--instructions: first run")
    parser.add_argument("--large", type=int, default=1200, help="--instructions: second run")
    parser.add_argument("--small-mib", type=int, default=2, help="--instructions: download")
    parser.add_argument("--large-mib", type=int, default=12, help="--instructions: download")
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
        sizes = {args.small_mib, args.large_mib} if args.instructions else {args.download_mib}
        for size in sizes:
            with (www / f"mib{size}").open("wb") as f:
                for _ in range(size):
                    f.write(block)
        proc, port = start_nginx(tmp, NGINX_HTTP)
        try:
            if args.instructions:
                instructions(trees, ios, port, args)
                return
            for round_no in range(args.rounds):
                # The trees take turns going first: the first of a pair
                # measured slower by up to 25% on this machine, either tree.
                order = list(trees.items())
                if round_no % 2:
                    order.reverse()
                for io_kind in ios:
                    for workload, _unit in WORKLOADS:
                        for tree, python in order:
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
