"""Side-by-side HTTP/2 (h2c) server benchmark: hyper's serve() against hypercorn and granian.

What belongs here: starting each HTTP/2 server, checking that it answers the
same response over h2c, loading it with h2load in the two shapes of issue
13 (``-c16 -m10``: many connections, a few streams each; ``-c1 -m100``: one
connection, many streams), stopping it, and reporting ratios. The servers
live in ``servers/`` (``hyper_serve.py``, ``h2_hyper.py``, ``h2_bare.py``,
``h2_hypercorn.py``); processes, pinning and CPU accounting come from
``_harness.py``.

Strategy:

* Servers: ``hyper`` is ``hyper_util.server.serve()`` (the auto builder
  sniffs the h2c preface; the asyncio transport IO on asyncio and uvloop),
  ``hyper-conn`` hyper-core's ``http2.Builder().serve_connection`` per
  connection on hyper-util's listener, ``hypercorn`` in one process (its
  per-connection request cap raised), ``granian --http 2`` (Rust), and the
  baseline ``h2-bare``, a bare h2 loop answering inline on anyio streams.
  ``--loop`` picks asyncio or uvloop for all of them; ``hyper-trio`` is
  ``serve()`` on trio.
* One server process per (server, round), pinned with ``taskset`` to the
  server CPU; h2load runs with one thread on the client CPU. A probe first
  sends two requests on one connection and checks each answer; each shape
  gets a warm-up, then the measured run of ``--requests`` requests.
* Reported per (server, shape): requests/s, failed and errored streams
  (h2load's counts; a server with any is flagged), non-2xx answers, and the
  server's CPU time per request (from ``/proc``, steadier than requests/s on
  a shared machine); then hyper's ratios with issue 13's targets (10x
  hypercorn, 0.5x granian). ``--rounds`` keeps each row's median.
* Every process is stopped by its PID (its process group) in a
  ``finally``; h2load runs under a timeout, so the run always ends.

Run: ``flock /tmp/bench.lock .venv/bin/python benchmarks/h2_server.py
[--requests 100000] [--rounds 3] [--loop uvloop] [--only hyper,granian]``;
``--help`` lists every option.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
from _harness import (
    HOST,
    PROBE_TIMEOUT,
    PYTHON,
    SERVERS_DIR,
    STARTUP_TIMEOUT,
    BenchError,
    banner,
    check_cpus,
    fail,
    free_port,
    group_cpu_seconds,
    log_tail,
    missing_module,
    pinned,
    server_log,
    start_server,
    stop,
    stop_on_sigterm,
    wait_until_accepting,
)

HERE = Path(__file__).resolve().parent
H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"
EXPECTED_BODY = b"Hello, World!"
EXPECTED_CONTENT_TYPE = b"text/plain"
# Seconds h2load may take per 1,000 requests before it is killed (hypercorn
# runs ~5,000 requests/s here, so this leaves a wide margin), plus a floor.
H2LOAD_SECONDS_PER_KREQ = 2.0
H2LOAD_MIN_TIMEOUT = 30.0
# Issue 13's targets for hyper against each peer, in requests/s.
TARGETS = {"hypercorn": 10.0, "granian": 0.5}
# The two load shapes: (connections, concurrent streams per connection).
SHAPES = {"c16m10": (16, 10), "c1m100": (1, 100)}


@dataclass(frozen=True)
class Server:
    """A server under test and how to start it on a given port and loop."""

    name: str
    description: str
    command: Callable[[int, str], list[str]]  # (port, loop) -> argv
    requires: tuple[str, ...]
    is_hyper: bool = False
    # The loop it always runs on (trio rows), else the run's --loop.
    fixed_loop: str | None = None


def _script(filename: str, *extra: str) -> Callable[[int, str], list[str]]:
    def command(port: int, loop: str) -> list[str]:
        return [PYTHON, str(SERVERS_DIR / filename), "--port", str(port), "--loop", loop, *extra]

    return command


def _granian(port: int, loop: str) -> list[str]:
    return [
        PYTHON, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", loop, "--http", "2", "--no-ws", "--no-access-log",
        "--log-level", "warning", "--working-dir", str(SERVERS_DIR), "asgi_hello:app",
    ]  # fmt: skip


SERVERS: tuple[Server, ...] = (
    Server("hyper", "hyper_util.server.serve(), defaults (auto: h2c by its preface)",
           _script("hyper_serve.py"), ("hyper_util.server",), is_hyper=True),
    Server("hyper-trio", "the same serve() on trio", _script("hyper_serve.py"),
           ("hyper_util.server", "trio"), is_hyper=True, fixed_loop="trio"),
    Server("hyper-conn", "hyper-core http2.Builder().serve_connection on hyper-util's listener",
           _script("h2_hyper.py"), ("hyper_core.server.conn.http2",), is_hyper=True),
    Server("hypercorn", "hypercorn.asyncio.serve (h2c prior knowledge), one process",
           _script("h2_hypercorn.py"), ("hypercorn",)),
    Server("granian", "granian --interface asgi --workers 1 --http 2", _granian, ("granian",)),
    Server("h2-bare", "baseline: bare h2 loop answering inline, anyio streams",
           _script("h2_bare.py"), ("h2", "anyio")),
)  # fmt: skip


@dataclass
class Result:
    """One (server, shape) in one round."""

    name: str
    shape: str
    status: str = "ok"  # ok | errors | failed | skipped
    notes: list[str] = field(default_factory=list)
    requests_per_second: float = 0.0
    succeeded: int = 0
    failed: int = 0
    errored: int = 0
    timeout: int = 0
    non_2xx: int = 0
    duration_s: float = 0.0
    server_cpu_us_per_request: float = 0.0
    server_cpu_percent: float = 0.0


# --- probe and load ----------------------------------------------------------


def probe(port: int) -> None:
    """Two requests on one h2c connection, each answer checked.

    Raises:
        BenchError: an answer differs from the benchmark's response.
    """
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT) as sock:
        for _ in (1, 2):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(
                sid,
                [
                    (b":method", b"GET"),
                    (b":scheme", b"http"),
                    (b":authority", f"{HOST}:{port}".encode()),
                    (b":path", b"/"),
                ],
                end_stream=True,
            )
            sock.sendall(conn.data_to_send())
            headers: dict[bytes, bytes] = {}
            body = b""
            ended = False
            for _ in range(1000):  # bounded: a handful of reads is the norm
                data = sock.recv(65536)
                if not data:
                    raise BenchError("probe: the server closed the connection")
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived) and event.stream_id == sid:
                        headers = dict(event.headers or ())
                    elif isinstance(event, h2.events.DataReceived) and event.stream_id == sid:
                        body += event.data or b""
                        conn.acknowledge_received_data(event.flow_controlled_length or 0, sid)
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
                        ended = True
                    elif isinstance(event, h2.events.StreamReset) and event.stream_id == sid:
                        raise BenchError(f"probe: stream reset ({event.error_code})")
                sock.sendall(conn.data_to_send())
                if ended:
                    break
            if headers.get(b":status") != b"200":
                raise BenchError(f"probe: status {headers.get(b':status')!r}, expected 200")
            if headers.get(b"content-type") != EXPECTED_CONTENT_TYPE:
                raise BenchError(f"probe: content-type {headers.get(b'content-type')!r}")
            if body != EXPECTED_BODY:
                raise BenchError(f"probe: body {body!r}, expected {EXPECTED_BODY!r}")


_FINISHED = re.compile(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def run_h2load(port: int, requests: int, shape: str, args: argparse.Namespace) -> dict[str, float]:
    """Load ``port`` with h2load in ``shape`` for ``requests`` requests; return its counts."""
    clients, streams = SHAPES[shape]
    command = [
        *pinned(args.client_cpu, args.nice), H2LOAD, "-t1", f"-c{clients}",
        f"-m{streams}", f"-n{requests}", f"http://{HOST}:{port}/",
    ]  # fmt: skip
    timeout = max(H2LOAD_MIN_TIMEOUT, H2LOAD_SECONDS_PER_KREQ * requests / 1000)
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:  # run() has killed h2load already
        raise BenchError(f"h2load did not finish within {timeout:.0f} s") from exc
    out = done.stdout.decode(errors="replace")
    finished = _FINISHED.search(out)
    counts = _REQUESTS.search(out)
    status = _STATUS.search(out)
    if finished is None or counts is None or status is None:
        err = done.stderr.decode(errors="replace").strip()
        raise BenchError(f"h2load exited {done.returncode} without a report: {out[-500:]} {err}")
    return {
        "duration_s": float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1),
        "requests_per_second": float(finished.group(3)),
        "succeeded": int(counts.group(4)),
        "failed": int(counts.group(5)),
        "errored": int(counts.group(6)),
        "timeout": int(counts.group(7)),
        "non_2xx": sum(int(status.group(i)) for i in (2, 3, 4)),
    }


def measure(server: Server, args: argparse.Namespace) -> list[Result]:
    """Start one server, probe it, load it in every shape, stop it."""
    results = [Result(server.name, shape) for shape in args.shapes]
    missing = missing_module(server.requires)
    loop = server.fixed_loop or args.loop
    if missing is None and loop == "uvloop":
        missing = missing_module(("uvloop",))
    if missing is not None:
        for result in results:
            result.status = "skipped"
            result.notes.append(f"{missing} is not installed")
        return results
    port = free_port()
    with server_log(server.name) as log:
        proc = start_server([*pinned(args.server_cpu, args.nice), *server.command(port, loop)], log)
        try:
            wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
            probe(port)
            for result in results:
                try:
                    if args.warmup:
                        run_h2load(port, args.warmup, result.shape, args)
                    cpu_before = group_cpu_seconds(proc.pid)
                    report = run_h2load(port, args.requests, result.shape, args)
                    cpu = group_cpu_seconds(proc.pid) - cpu_before
                except BenchError as exc:
                    result.status = "failed"
                    result.notes.append(str(exc))
                    continue
                fill(result, report, cpu)
        except BenchError as exc:
            for result in results:
                result.status = "failed"
                result.notes.append(str(exc))
        finally:
            stop(proc)
        lines, tail = log_tail(log.name)
    for result in results:
        if result.status == "failed" and tail:
            result.notes.append("server log:\n    " + tail.replace("\n", "\n    "))
        elif lines:
            result.notes.append(f"server logged {lines} lines: {tail.splitlines()[0][:80]}")
    return results


def fill(result: Result, report: dict[str, float], cpu: float) -> None:
    result.requests_per_second = report["requests_per_second"]
    result.duration_s = report["duration_s"]
    result.succeeded = int(report["succeeded"])
    result.failed = int(report["failed"])
    result.errored = int(report["errored"])
    result.timeout = int(report["timeout"])
    result.non_2xx = int(report["non_2xx"])
    result.server_cpu_us_per_request = 1e6 * cpu / max(1, result.succeeded)
    result.server_cpu_percent = 100 * cpu / max(1e-9, result.duration_s)
    if result.failed or result.errored or result.timeout or result.non_2xx:
        result.status = "errors"


# --- report ------------------------------------------------------------------


def pick_median(rounds: list[Result]) -> Result:
    """The round whose requests/s is the median (the lower one for an even count)."""
    measured = sorted(
        (r for r in rounds if r.status in ("ok", "errors")), key=lambda r: r.requests_per_second
    )
    return measured[(len(measured) - 1) // 2] if measured else rounds[-1]


def print_report(table: dict[tuple[str, str], list[Result]], args: argparse.Namespace) -> None:
    hyper_names = {s.name for s in SERVERS if s.is_hyper}
    for shape in args.shapes:
        clients, streams = SHAPES[shape]
        print(f"\nh2load -c{clients} -m{streams} -n{args.requests} (--loop {args.loop})")
        header = (
            f"{'server':<12} {'req/s':>8} {'ok':>8} {'failed':>6} {'errored':>7} {'non-2xx':>7} "
            f"{'us CPU/req':>10} {'srv CPU':>7}  note"
        )
        print(header)
        print("-" * len(header))
        best: dict[str, Result] = {}
        for (name, s), rounds in table.items():
            if s != shape:
                continue
            r = pick_median(rounds)
            if r.status not in ("ok", "errors"):
                print(f"{name:<12} {r.status.upper():>8}  {'; '.join(r.notes)}")
                continue
            best[name] = r
            notes = list(r.notes)
            done = [x for x in rounds if x.status in ("ok", "errors")]
            if len(done) > 1:
                rps = [x.requests_per_second for x in done]
                cpu = [x.server_cpu_us_per_request for x in done]
                notes.insert(
                    0,
                    f"rounds {min(rps):.0f}..{max(rps):.0f} req/s, "
                    f"median CPU {statistics.median(cpu):.0f} us",
                )
            if r.status == "errors":
                notes.insert(0, "ERRORS")
            print(
                f"{name:<12} {r.requests_per_second:>8.0f} {r.succeeded:>8} {r.failed:>6} "
                f"{r.errored:>7} {r.non_2xx:>7} {r.server_cpu_us_per_request:>10.1f} "
                f"{r.server_cpu_percent:>6.0f}%  {'; '.join(notes)}"
            )
        lines = []
        for mine in (r for r in best.values() if r.name in hyper_names):
            for peer in (r for r in best.values() if r.name not in hyper_names):
                ratio = mine.requests_per_second / peer.requests_per_second
                cpu_ratio = peer.server_cpu_us_per_request / max(
                    1e-9, mine.server_cpu_us_per_request
                )
                target = TARGETS.get(peer.name) if mine.name == "hyper" else None
                verdict = ""
                if target is not None:
                    verdict = f"  target >= {target}x: {'met' if ratio >= target else 'NOT met'}"
                lines.append(
                    f"  {mine.name}/{peer.name} = {ratio:.2f}x ({cpu_ratio:.2f}x){verdict}"
                )
        if lines:
            print("hyper against each peer: requests/s ratio (server CPU per request ratio)")
            print("\n".join(lines))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SERVERS]
    parser = argparse.ArgumentParser(
        description="Hello-world h2c load with h2load against hyper's serve() and its peers.",
        epilog=f"servers: {', '.join(names)}; shapes: {', '.join(SHAPES)}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", "-n", type=int, default=100_000, help="measured requests")
    parser.add_argument("--warmup", type=int, default=5_000, help="requests before (0: none)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated load shapes")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--rounds", type=int, default=1, help="run the list N times, report median")
    parser.add_argument("--only", default="", help="comma-separated server names")
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU the servers are pinned to")
    parser.add_argument("--client-cpu", type=int, default=0, help="CPU h2load is pinned to")
    parser.add_argument("--nice", type=int, default=0, help="niceness of servers and h2load")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or names
    args.shapes = [x.strip() for x in args.shapes.split(",") if x.strip()]
    for kind, given, known in (("server", wanted, names), ("shape", args.shapes, list(SHAPES))):
        if unknown := sorted(set(given) - set(known)):
            parser.error(f"unknown {kind}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    args.servers = [s for s in SERVERS if s.name in wanted]
    if args.requests < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("--requests and --rounds must be >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(H2LOAD) is None or shutil.which("taskset") is None:
        fail("h2load or taskset is not on PATH (Debian: apt-get install nghttp2-client util-linux)")
    check_cpus(args.server_cpu, args.client_cpu)
    stop_on_sigterm()
    version = subprocess.run([H2LOAD, "--version"], capture_output=True, timeout=10, check=False)
    print(banner(version.stdout.decode().strip()))
    print(
        f"h2load -t1 (after {args.warmup} warm-up requests) on CPU {args.client_cpu}; each "
        f"server on CPU {args.server_cpu}; --loop {args.loop}; {args.rounds} round(s)"
    )
    table: dict[tuple[str, str], list[Result]] = {}
    for number in range(1, args.rounds + 1):
        for server in args.servers:
            label = f"[round {number}/{args.rounds}] " if args.rounds > 1 else ""
            print(f"{label}{server.name}: {server.description} ...", flush=True)
            for result in measure(server, args):
                table.setdefault((server.name, result.shape), []).append(result)
                if result.status in ("ok", "errors"):
                    shown = (
                        f"{result.requests_per_second:.0f} req/s, "
                        f"{result.server_cpu_us_per_request:.0f} us CPU/req, "
                        f"{result.failed} failed, {result.errored} errored"
                    )
                else:
                    shown = f"{result.status}: {'; '.join(result.notes)}"
                print(f"    {result.shape}: {shown}", flush=True)
    print_report(table, args)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
