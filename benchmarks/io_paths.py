"""hyper-core's HTTP/1 hello world on the anyio stream path against the asyncio fast path.

What belongs here: the measurement behind hyper_util.rt's choice of IO path
on asyncio, with uvicorn (``--http h11``) and hypercorn in the same run as
reference points. The full peer comparison is ``run.py``.

Strategy: this file is both the driver and the hyper server (``--serve
anyio|fast``: ``hyper_util.rt.create_tcp_listener(fast=...)`` and
``http1.Builder().serve_connection`` per connection, the service of
``servers/hyper_serve.py``'s hello). Each server is a fresh subprocess pinned to CPU 1
(``taskset -c 1``), started on 127.0.0.1 and a free port; the driver waits
(at most 30 s) until the port accepts, checks one answer, runs
``taskset -c 0 wrk -t1 -c50 -d10s`` (after a 2 s warm-up) and stops the
server by its PID (SIGTERM, then SIGKILL) in a ``finally``. ``--rounds N``
interleaves the servers N times and reports each one's median.

Run: ``.venv/bin/python benchmarks/io_paths.py [--duration 10] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import time
from pathlib import Path

from _harness import (
    HOST,
    PYTHON,
    SERVERS_DIR,
    STARTUP_TIMEOUT,
    free_port,
    group_cpu_seconds,
    pinned,
    run_wrk,
    server_log,
    start_server,
    stop,
    wait_until_accepting,
)

SERVERS = SERVERS_DIR


# -- the hyper server (run as a subprocess of the driver) --------------------


def serve(path: str, port: int) -> None:
    import anyio
    import anyio.abc

    from hyper_core.body import Full, Incoming
    from hyper_core.error import HyperError
    from hyper_core.http import Headers, Request, Response
    from hyper_core.server.conn import http1
    from hyper_util.rt import create_tcp_listener

    builder = http1.Builder()

    async def hello(request: Request[Incoming]) -> Response[Full]:
        return Response(
            200, headers=Headers({"content-type": "text/plain"}), body=Full(b"Hello, World!")
        )

    async def handle(stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(HyperError):
            await builder.serve_connection(stream, hello)

    async def main() -> None:
        listener = await create_tcp_listener(HOST, port, fast=path == "fast")
        await listener.serve(handle)

    anyio.run(main)


# -- the driver ----------------------------------------------------------------


def commands(port: int) -> dict[str, list[str]]:
    me = str(Path(__file__).resolve())
    return {
        "hyper-anyio": [PYTHON, me, "--serve", "anyio", "--port", str(port)],
        "hyper-fast": [PYTHON, me, "--serve", "fast", "--port", str(port)],
        "uvicorn-h11": [
            PYTHON,
            "-m",
            "uvicorn",
            "--app-dir",
            str(SERVERS),
            "--host",
            HOST,
            "--port",
            str(port),
            "--http",
            "h11",
            "--loop",
            "asyncio",
            "--no-access-log",
            "--log-level",
            "warning",
            "asgi_hello:app",
        ],
        "hypercorn": [PYTHON, str(SERVERS / "hypercorn_serve.py"), "--port", str(port)],
    }


def probe(port: int) -> None:
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        for _ in range(100):  # bounded: the answer is about 130 bytes
            if b"Hello, World!" in data:
                return
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    raise RuntimeError(f"unexpected answer: {data!r}")


def measure(name: str, duration: int, connections: int) -> tuple[float, float]:
    """Return (requests/s, server CPU microseconds per request)."""
    port = free_port()
    url = f"http://{HOST}:{port}/"
    with server_log(name) as log:
        proc = start_server(pinned(1) + commands(port)[name], log)
        try:
            wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
            probe(port)
            run_wrk(url, 2, connections=connections, cpu=0)  # warm-up
            before = group_cpu_seconds(proc.pid)
            report = run_wrk(url, duration, connections=connections, cpu=0)
            cpu = group_cpu_seconds(proc.pid) - before
        finally:
            stop(proc)
    errors = sum(v for k, v in report.items() if k.startswith("errors_"))
    if errors:
        print(f"  wrk reported {errors:.0f} errors", file=sys.stderr)
    return report["requests"] / (report["duration_us"] / 1e6), cpu / report["requests"] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["anyio", "fast"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; median kept")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return

    names = ["hyper-anyio", "hyper-fast", "uvicorn-h11", "hypercorn"]
    results: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(args.rounds):
        for name in names:
            rps, us = measure(name, args.duration, args.connections)
            results[name].append(rps)
            cpu[name].append(us)
            print(f"round {round_no + 1} {name:12} {rps:10,.0f} req/s {us:6.0f} us CPU/req")
            sys.stdout.flush()
    median = {name: statistics.median(values) for name, values in results.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    print(
        f"\nserver on CPU 1, `taskset -c 0 wrk -t1 -c{args.connections} "
        f"-d{args.duration:g}s`, median of {args.rounds} round(s):"
    )
    for name in names:
        print(f"  {name:12} {median[name]:10,.0f} req/s {median_cpu[name]:6.0f} us CPU/req")
    print("\nrequests/s ratio (inverse ratio of server CPU per request in parentheses):")
    pairs = [("hyper-fast", "hyper-anyio")] + [
        (base, peer)
        for base in ("hyper-anyio", "hyper-fast")
        for peer in ("uvicorn-h11", "hypercorn")
    ]
    for base, peer in pairs:
        ratio = median[base] / median[peer]
        cpu_ratio = median_cpu[peer] / median_cpu[base]
        print(f"  {base:11} / {peer:11} = {ratio:.2f}x ({cpu_ratio:.2f}x)")


if __name__ == "__main__":
    main()
