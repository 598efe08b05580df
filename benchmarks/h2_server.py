"""Side-by-side hello-world HTTP/2 (h2c) benchmark: hyper-core's server against hypercorn.

What belongs here: starting each HTTP/2 server, checking that it answers the
same response over h2c, loading it with h2load (many streams per
connection), stopping it, and reporting. The servers live in ``servers/``
(``h2_hyper.py``, ``h2_bare.py``, ``h2_hypercorn.py``). Process handling, CPU accounting and
pinning come from ``run.py``, the HTTP/1 benchmark, so both measure alike.

Strategy:

* One server at a time, a fresh process started with ``taskset -c 1`` on
  127.0.0.1 and a free port, while h2load runs with ``taskset -c 0`` and one
  thread: ``h2load -c 16 -m 10 -n N`` (16 connections, 10 concurrent streams
  each, h2c with prior knowledge).
* A probe first sends two requests on one HTTP/2 connection and checks each
  answer (status 200, ``content-type: text/plain``, body ``Hello, World!``);
  a short warm-up load precedes the measured one.
* Reported per server: requests/s, failed and errored streams (h2load's
  counts; a server with any is flagged), non-2xx answers, and the server's
  CPU time per request (read from ``/proc`` around the measured run, which
  holds up better than requests/s when something else takes the CPU).
  ``--rounds`` interleaves several rounds and keeps each server's median.
* ``hyper`` listens with ``hyper_util.rt.create_tcp_listener`` and keeps
  its default IO path, which is what a user of hyper-util's ``serve()`` or
  auto builder gets: hyper-util's asyncio transport stream
  (``AsyncioSocketStream``) on asyncio, anyio socket streams on trio
  (``hyper-trio``). hypercorn runs on its own asyncio streams.
* The baseline ``h2-bare`` is a bare h2 loop answering inline (no
  per-stream tasks) on anyio socket streams: what h2 with plain anyio I/O
  costs. hyper-core's server drives h2 through fast paths of its own
  (``proto/h2/_common.py``), so it can cost less than this baseline.
* Every process is stopped by its PID (the process group this script
  created) in a ``finally``; h2load runs under a timeout and the whole run
  has a time budget, so it always ends.

Run: ``.venv/bin/python benchmarks/h2_server.py [--requests 100000]
[--rounds 3] [--only hyper,hypercorn,h2-bare]``; ``--help`` lists every option.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import h2.config
import h2.connection
import h2.events

# run.py sits next to this file (the script's directory is on sys.path).
from run import (
    HOST,
    PROBE_TIMEOUT,
    PYTHON,
    SERVERS_DIR,
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    BenchError,
    free_port,
    group_cpu_seconds,
    log_tail,
    missing_module,
    pinned,
    stop,
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
# The target for hyper-core against hypercorn, in requests/s.
TARGETS = {"hypercorn": 3.0}


@dataclass(frozen=True)
class Server:
    """A server under test and how to start it on a given port."""

    name: str
    description: str
    script: str
    extra: tuple[str, ...]
    requires: tuple[str, ...]
    is_hyper: bool = False

    def command(self, port: int) -> list[str]:
        return [PYTHON, str(SERVERS_DIR / self.script), "--port", str(port), *self.extra]


SERVERS: tuple[Server, ...] = (
    Server(
        "hyper",
        "hyper-core http2.Builder().serve_connection, hyper_util.rt listener "
        "(default IO: asyncio transport stream), asyncio",
        "h2_hyper.py",
        ("--backend", "asyncio"),
        ("hyper_core.server.conn.http2",),
        is_hyper=True,
    ),
    Server(
        "hyper-trio",
        "the same hyper-core server on trio (default IO there: anyio streams)",
        "h2_hyper.py",
        ("--backend", "trio"),
        ("hyper_core.server.conn.http2", "trio"),
        is_hyper=True,
    ),
    Server(
        "hypercorn",
        "hypercorn.asyncio.serve (h2c prior knowledge), one process",
        "h2_hypercorn.py",
        (),
        ("hypercorn",),
    ),
    Server(
        "h2-bare",
        "baseline: bare h2 loop answering inline, anyio on asyncio",
        "h2_bare.py",
        ("--backend", "asyncio"),
        ("h2", "anyio"),
    ),
    Server(
        "h2-bare-trio",
        "baseline: the same bare h2 loop on trio",
        "h2_bare.py",
        ("--backend", "trio"),
        ("h2", "anyio", "trio"),
    ),
)


@dataclass
class Result:
    """One measured (or skipped, or failed) server in one round."""

    name: str
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


def run_h2load(port: int, requests: int, args: argparse.Namespace) -> dict[str, float]:
    """Load ``port`` with h2load for ``requests`` requests; return its counts."""
    command = [
        *pinned(args.client_cpu, args.nice), H2LOAD, "-t1", f"-c{args.clients}",
        f"-m{args.streams}", f"-n{requests}", f"http://{HOST}:{port}/",
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


def measure(server: Server, args: argparse.Namespace, deadline: float) -> Result:
    """Start one server, probe, warm up, load and stop it; never raises BenchError."""
    result = Result(server.name)
    missing = missing_module(server.requires)
    if missing is not None:
        result.status = "skipped"
        result.notes.append(f"{missing} is not installed")
        return result
    if time.monotonic() > deadline:
        result.status = "skipped"
        result.notes.append("the run's time budget is spent")
        return result
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix=f"bench-{server.name}-", suffix=".log") as log:
        proc = subprocess.Popen(
            [*pinned(args.server_cpu, args.nice), *server.command(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=HERE.parent,
        )
        report = None
        cpu = 0.0
        try:
            wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
            probe(port)
            if args.warmup:
                run_h2load(port, args.warmup, args)
            cpu_before = group_cpu_seconds(proc.pid)
            report = run_h2load(port, args.requests, args)
            cpu = group_cpu_seconds(proc.pid) - cpu_before
        except BenchError as exc:
            result.status = "failed"
            result.notes.append(str(exc))
        finally:
            stop(proc)
        lines, tail = log_tail(Path(log.name))
    if report is None:
        if tail:
            result.notes.append("server log:\n    " + tail.replace("\n", "\n    "))
        return result
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
    if lines:
        result.notes.append(f"server logged {lines} lines: {tail.splitlines()[0]}")
    return result


# --- report ------------------------------------------------------------------


def pick_median(rounds: list[Result]) -> Result:
    """The round whose requests/s is the median (the lower one for an even count)."""
    measured = sorted(
        (r for r in rounds if r.status in ("ok", "errors")), key=lambda r: r.requests_per_second
    )
    return measured[(len(measured) - 1) // 2] if measured else rounds[-1]


def print_report(results: Sequence[Result], all_rounds: dict[str, list[Result]]) -> None:
    header = (
        f"{'server':<14} {'req/s':>8} {'ok':>8} {'failed':>6} {'errored':>7} {'non-2xx':>7} "
        f"{'us CPU/req':>10} {'srv CPU':>7}  note"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.status not in ("ok", "errors"):
            print(f"{r.name:<14} {r.status.upper():>8}  {'; '.join(r.notes)}")
            continue
        notes = list(r.notes)
        rps = [x.requests_per_second for x in all_rounds[r.name] if x.status != "failed"]
        if len(rps) > 1:
            cpu = [x.server_cpu_us_per_request for x in all_rounds[r.name] if x.status != "failed"]
            notes.insert(
                0,
                f"rounds {min(rps):.0f}..{max(rps):.0f} req/s, "
                f"median CPU {statistics.median(cpu):.0f} us",
            )
        if r.status == "errors":
            notes.insert(0, "ERRORS")
        print(
            f"{r.name:<14} {r.requests_per_second:>8.0f} {r.succeeded:>8} {r.failed:>6} "
            f"{r.errored:>7} {r.non_2xx:>7} {r.server_cpu_us_per_request:>10.1f} "
            f"{r.server_cpu_percent:>6.0f}%  {'; '.join(notes)}"
        )
    hyper_names = {s.name for s in SERVERS if s.is_hyper}
    measured = {r.name: r for r in results if r.status in ("ok", "errors")}
    lines = []
    for mine in (r for r in measured.values() if r.name in hyper_names):
        for peer in (r for r in measured.values() if r.name not in hyper_names):
            throughput = mine.requests_per_second / peer.requests_per_second
            efficiency = peer.server_cpu_us_per_request / max(1e-9, mine.server_cpu_us_per_request)
            target = TARGETS.get(peer.name) if mine.name == "hyper" else None
            verdict = ""
            if target is not None:
                verdict = f"  target >= {target}x: {'met' if throughput >= target else 'NOT met'}"
            lines.append(
                f"  {mine.name}/{peer.name} = {throughput:.2f}x ({efficiency:.2f}x){verdict}"
            )
    if lines:
        print("\nhyper against each peer: requests/s ratio (server CPU per request ratio)")
        print("\n".join(lines))


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SERVERS]
    parser = argparse.ArgumentParser(
        description="Hello-world h2c load with h2load against hyper-core and hypercorn.",
        epilog="servers: " + ", ".join(names),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", "-n", type=int, default=100_000, help="measured requests")
    parser.add_argument("--warmup", type=int, default=5_000, help="requests before (0: none)")
    parser.add_argument("--clients", "-c", type=int, default=16, help="h2load connections")
    parser.add_argument("--streams", "-m", type=int, default=10, help="streams per connection")
    parser.add_argument("--rounds", type=int, default=1, help="run the list N times, report median")
    parser.add_argument("--only", default="", help="comma-separated server names")
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU the servers are pinned to")
    parser.add_argument("--client-cpu", type=int, default=0, help="CPU h2load is pinned to")
    parser.add_argument("--nice", type=int, default=0, help="niceness of servers and h2load")
    args = parser.parse_args(argv)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(names)}")
        args.servers = [s for s in SERVERS if s.name in wanted]
    else:
        args.servers = list(SERVERS)
    if args.requests < 1 or args.warmup < 0 or args.clients < 1 or args.streams < 1:
        parser.error("--requests, --clients and --streams must be >= 1, --warmup >= 0")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in (H2LOAD, "taskset"):
        if shutil.which(tool) is None:
            fail(f"{tool} is not on PATH (Debian: apt-get install nghttp2-client util-linux)")
    usable = os.sched_getaffinity(0)
    if args.server_cpu == args.client_cpu or not {args.server_cpu, args.client_cpu} <= usable:
        fail(f"need two distinct usable CPUs for server and client; usable: {sorted(usable)}")

    # A SIGTERM must still run the finally blocks that stop the servers.
    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    servers: list[Server] = args.servers
    h2load_bound = max(
        H2LOAD_MIN_TIMEOUT, H2LOAD_SECONDS_PER_KREQ * (args.requests + args.warmup) / 1000
    )
    per_server = STARTUP_TIMEOUT + PROBE_TIMEOUT + 2 * h2load_bound + 2 * STOP_TIMEOUT
    deadline = time.monotonic() + args.rounds * len(servers) * per_server
    version = subprocess.run([H2LOAD, "--version"], capture_output=True, timeout=10, check=False)
    print(
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}  "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {version.stdout.decode().strip()}"
    )
    print(
        f"h2load -t1 -c{args.clients} -m{args.streams} -n{args.requests} (after "
        f"{args.warmup} warm-up requests) pinned to CPU {args.client_cpu}; each server "
        f"pinned to CPU {args.server_cpu}; {args.rounds} round(s)\n"
    )
    all_rounds: dict[str, list[Result]] = {s.name: [] for s in servers}
    for round_number in range(1, args.rounds + 1):
        for server in servers:
            label = f"[round {round_number}/{args.rounds}] " if args.rounds > 1 else ""
            print(f"{label}{server.name}: {server.description} ...", flush=True)
            result = measure(server, args, deadline)
            all_rounds[server.name].append(result)
            if result.status in ("ok", "errors"):
                print(
                    f"    {result.requests_per_second:.0f} req/s, "
                    f"{result.server_cpu_us_per_request:.0f} us CPU/req, "
                    f"{result.failed} failed, {result.errored} errored",
                    flush=True,
                )
            else:
                print(f"    {result.status}: {'; '.join(result.notes)}", flush=True)
    print()
    print_report([pick_median(all_rounds[s.name]) for s in servers], all_rounds)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
