"""hyper-core's HTTP/1 hello world on the anyio stream path against the asyncio fast path.

What belongs here: the measurement behind hyper_util.rt's choice of IO path
on asyncio, with uvicorn (``--http h11``) and hypercorn in the same run as
reference points. The full peer comparison is ``run.py``.

Strategy: this file is both the driver and the hyper server (``--serve
anyio|fast``: ``hyper_util.rt.create_tcp_listener(fast=...)`` and
``http1.Builder().serve_connection`` per connection, the service of
``servers/hyper_h1.py``). Each server is a fresh subprocess pinned to CPU 1
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
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "servers"
PYTHON = sys.executable
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0  # seconds for a server to accept connections
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
WRK_GRACE = 15.0  # seconds wrk may run past its duration before it is killed


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


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


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError("server did not listen within the startup timeout")


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


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


def wrk(port: int, duration: float, connections: int) -> float:
    cmd = [
        "taskset",
        "-c",
        "0",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:g}s",
        f"http://{HOST}:{port}/",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration + WRK_GRACE, check=True
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  wrk reported errors:\n{out}", file=sys.stderr)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")
    return float(match.group(1))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(name: str, duration: float, connections: int) -> tuple[float, float]:
    """Return (requests/s, server CPU microseconds per request)."""
    port = free_port()
    # taskset execs the server, so the PID is the server's own.
    cmd = ["taskset", "-c", "1", *commands(port)[name]]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        probe(port)
        wrk(port, 2, connections)  # warm-up
        before = cpu_seconds(proc.pid)
        rps = wrk(port, duration, connections)
        cpu = cpu_seconds(proc.pid) - before
        return rps, cpu / (rps * duration) * 1e6
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["anyio", "fast"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
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
