"""Side-by-side hello-world HTTP/1.1 keep-alive benchmark: hyper-core against its peers.

What belongs here: starting each server, checking that it answers the same
response, loading it with wrk, stopping it, and reporting. The servers
themselves live in ``servers/``, one small file each, and the wrk reporting
hook in ``wrk_report.lua``.

Strategy:

* One server at a time, each a fresh process started by this script with
  ``taskset -c 1`` (the server CPU) on 127.0.0.1 and a free port, while wrk
  runs with ``taskset -c 0`` (the client CPU) and one thread. Both sides get a
  core of their own, so requests/s measures one core's worth of server, and the
  CPU time each side used is reported to show which side was the bottleneck.
* Before the load, a probe sends two requests on one connection and checks
  the answers (status 200, ``Content-Type: text/plain``, body
  ``Hello, World!``, the connection kept alive), so every server is measured
  doing the same work. A short warm-up run precedes the measured run.
* wrk's ``done()`` hook (``wrk_report.lua``) prints raw counts and latency
  percentiles in microseconds as one JSON line; errors (non-2xx/3xx answers
  and socket errors) are counted and a server with any is flagged.
* CPU time is read from ``/proc`` around the measured run: the server's
  (all processes of its group), wrk's, and each pinned CPU's total, so the
  report shows server CPU per request (its efficiency, steadier than
  requests/s) and how much CPU other processes took on each core. On a
  shared machine the run waits for a quiet moment before each server
  (``--idle-wait``), can run at a higher priority (``--nice``), and can
  interleave several rounds and report each server's median
  (``--rounds``).
* Every process is stopped by its PID (its process group, which this script
  created, so that forked workers go too) in a ``finally``; every wait has a
  timeout and the whole run has a time budget, so it always ends.

Run: ``nox -s bench`` or ``.venv/bin/python benchmarks/run.py [--duration 10]
[--connections 50] [--only hyper,uvicorn-h11] [--rounds 1] [--json FILE]``;
``--help`` lists every option and the server names.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import h11

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
LUA_SCRIPT = HERE / "wrk_report.lua"
PYTHON = sys.executable
HOST = "127.0.0.1"
EXPECTED_BODY = b"Hello, World!"
EXPECTED_CONTENT_TYPE = b"text/plain"

# Seconds a server gets to accept connections after it is started; granian
# and hypercorn import a lot, and a cold disk cache makes that slow.
STARTUP_TIMEOUT = 30.0
# Seconds between SIGTERM and SIGKILL when stopping a server.
STOP_TIMEOUT = 5.0
# Seconds wrk may run past its -d duration before it is killed (it waits up
# to its own --timeout for the last responses).
WRK_GRACE = 15.0
# wrk's per-request timeout, seconds: a response slower than this counts as
# a timeout error instead of stalling the run.
WRK_REQUEST_TIMEOUT = 5
# Seconds for the probe's socket operations.
PROBE_TIMEOUT = 5.0
# Before each server: seconds of sampling, and the busy share of each pinned
# CPU below which the machine counts as idle (see wait_for_idle).
IDLE_SAMPLE = 0.5
IDLE_THRESHOLD = 0.15
# Lines of a failed server's log shown in the report.
LOG_TAIL_LINES = 15

# The targets for hyper-core, peer name -> ratio; they were set for
# the h11 codec (hyper-h11) and are shown for the default codec too.
TARGETS = {"hypercorn": 2.0, "uvicorn-h11": 1.1}
TARGETED = ("hyper", "hyper-h11")


class BenchError(Exception):
    """A server could not be measured; the message says why."""


@dataclass(frozen=True)
class Server:
    """A server under test and how to start it on a given port."""

    name: str
    description: str
    command: Callable[[int], list[str]]
    # Modules that must be importable by PYTHON, else the server is skipped.
    requires: tuple[str, ...]
    is_hyper: bool = False
    # Where the required modules come from, said when they are missing.
    install_hint: str = ""
    # Extra environment for the server process, as (name, value) pairs.
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class Result:
    """One measured (or skipped, or failed) server in one round."""

    name: str
    status: str = "ok"  # ok | errors | failed | skipped
    notes: list[str] = field(default_factory=list)
    requests_per_second: float = 0.0
    requests: int = 0
    duration_s: float = 0.0
    bytes_per_response: float = 0.0
    latency_us: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    # Share of one CPU, in percent, over the measured run: the server's
    # processes, wrk, and everything else that ran on each of the two CPUs
    # (other users of a shared machine; a high "other" makes the run noisy).
    server_cpu_percent: float = 0.0
    wrk_cpu_percent: float = 0.0
    other_on_server_cpu_percent: float = 0.0
    other_on_client_cpu_percent: float = 0.0
    # Server CPU time per request, microseconds: the server's efficiency,
    # which holds up better than requests/s when other load steals its CPU.
    server_cpu_us_per_request: float = 0.0
    server_affinity: list[int] = field(default_factory=list)
    response_headers: list[list[str]] = field(default_factory=list)
    server_log_lines: int = 0

    @property
    def note(self) -> str:
        return "; ".join(self.notes)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _script(filename: str, *extra: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [PYTHON, str(SERVERS_DIR / filename), "--port", str(port), *extra]

    return command


def _uvicorn(http: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            PYTHON, "-m", "uvicorn", "--app-dir", str(SERVERS_DIR), "asgi_hello:app",
            "--host", HOST, "--port", str(port), "--http", http, "--loop", "asyncio",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    return command


def _granian(port: int) -> list[str]:
    return [
        PYTHON, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", "asyncio", "--http", "1", "--no-ws", "--no-access-log",
        "--log-level", "warning", "--working-dir", str(SERVERS_DIR), "asgi_hello:app",
    ]  # fmt: skip


SERVERS: tuple[Server, ...] = (
    Server(
        "hyper",
        "hyper-core http1.Builder().serve_connection on an anyio listener, asyncio",
        _script("hyper_h1.py", "--backend", "asyncio"),
        ("hyper_core.server.conn.http1",),
        is_hyper=True,
    ),
    Server(
        "hyper-fast",
        "the same hyper-core server on hyper_util.rt.create_tcp_listener(fast=True), asyncio",
        _script("hyper_h1.py", "--backend", "asyncio", "--io", "fast"),
        ("hyper_core.server.conn.http1", "hyper_util.rt"),
        is_hyper=True,
    ),
    Server(
        "hyper-h11",
        "the same hyper-core server on the h11 codec (HYPER_CORE_H1_CODEC=h11), asyncio",
        _script("hyper_h1.py", "--backend", "asyncio"),
        ("hyper_core.server.conn.http1", "h11"),
        is_hyper=True,
        env=(("HYPER_CORE_H1_CODEC", "h11"),),
    ),
    Server(
        "hyper-trio",
        "the same hyper-core server on trio",
        _script("hyper_h1.py", "--backend", "trio"),
        ("hyper_core.server.conn.http1", "trio"),
        is_hyper=True,
    ),
    Server(
        "uvicorn-h11",
        "uvicorn --http h11 --loop asyncio --no-access-log",
        _uvicorn("h11"),
        ("uvicorn", "h11"),
    ),
    Server(
        "uvicorn-httptools",
        "uvicorn --http httptools --loop asyncio --no-access-log",
        _uvicorn("httptools"),
        ("uvicorn", "httptools"),
        install_hint="pip install httptools, or uvicorn[standard]",
    ),
    Server(
        "hypercorn",
        "hypercorn.asyncio.serve, one process, no access log",
        _script("hypercorn_serve.py"),
        ("hypercorn",),
    ),
    Server(
        "granian",
        "granian --interface asgi --workers 1 --loop asyncio --http 1",
        _granian,
        ("granian",),
        install_hint="uv sync --group bench",
    ),
    Server(
        "aiohttp",
        "aiohttp.web.run_app, no access log",
        _script("aiohttp_hello.py"),
        ("aiohttp",),
        install_hint="uv sync --group bench",
    ),
    Server(
        "h11-protocol",
        "baseline: bare h11 loop on an asyncio Protocol",
        _script("h11_protocol.py"),
        ("h11",),
    ),
    Server(
        "h11-anyio",
        "baseline: bare h11 loop on anyio streams, asyncio",
        _script("h11_anyio.py", "--backend", "asyncio"),
        ("h11", "anyio"),
    ),
    Server(
        "h11-anyio-trio",
        "baseline: bare h11 loop on anyio streams, trio",
        _script("h11_anyio.py", "--backend", "trio"),
        ("h11", "anyio", "trio"),
    ),
)


# --- processes ---------------------------------------------------------------


def free_port() -> int:
    """A TCP port on HOST that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def missing_module(names: Sequence[str]) -> str | None:
    """The first of ``names`` that PYTHON cannot import, or None."""
    for name in names:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ImportError:  # a parent package is missing
            return name
    return None


def wait_until_accepting(proc: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    """Return once ``port`` accepts a connection; raise if the server dies or is late."""
    while True:
        code = proc.poll()
        if code is not None:
            raise BenchError(f"server exited with code {code} before accepting connections")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"server did not accept connections within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started by ``start``: SIGTERM, then SIGKILL, by its process group.

    The server was started as a session leader, so its PID is also the id of
    a process group holding it and anything it forked (granian's worker), and
    of nothing else.
    """
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT)
    # The leader may be gone while a forked worker lingers; kill what is left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"warning: server PID {pgid} did not exit after SIGKILL", file=sys.stderr)


def group_cpu_seconds(pgid: int) -> float:
    """User plus system CPU seconds used so far by the live processes of a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # exited meanwhile
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def children_cpu_seconds() -> float:
    """User plus system CPU seconds of this script's waited-for children (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_busy_seconds(cpu: int) -> float:
    """Seconds one CPU has spent in user, nice and system mode since boot (all processes)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                user, nice, system = (int(x) for x in line.split()[1:4])
                return (user + nice + system) / os.sysconf("SC_CLK_TCK")
    raise BenchError(f"cpu{cpu} is not in /proc/stat")


def wait_for_idle(cpus: Sequence[int], max_wait: float) -> bool:
    """Wait up to ``max_wait`` seconds for a half second in which ``cpus`` are all near idle.

    On a shared machine other work on the pinned CPUs is the main source of
    noise; starting a measurement in a quiet moment helps, though it cannot
    keep the CPUs quiet. Returns whether a quiet moment came.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = [cpu_busy_seconds(cpu) for cpu in cpus]
        time.sleep(IDLE_SAMPLE)
        busy = [cpu_busy_seconds(cpu) - b for cpu, b in zip(cpus, before, strict=True)]
        if max(busy) <= IDLE_SAMPLE * IDLE_THRESHOLD:
            return True
        if time.monotonic() >= deadline:
            return False


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by the server, by wrk, and on each of the two CPUs."""

    server: float
    wrk: float
    server_cpu_busy: float
    client_cpu_busy: float

    @classmethod
    def take(cls, pgid: int, server_cpu: int, client_cpu: int) -> CpuSample:
        return cls(
            group_cpu_seconds(pgid),
            children_cpu_seconds(),
            cpu_busy_seconds(server_cpu),
            cpu_busy_seconds(client_cpu),
        )

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            self.server - other.server,
            self.wrk - other.wrk,
            self.server_cpu_busy - other.server_cpu_busy,
            self.client_cpu_busy - other.client_cpu_busy,
        )


# --- probe and load ----------------------------------------------------------


def _send(conn: h11.Connection, event: h11.Request | h11.EndOfMessage) -> bytes:
    data = conn.send(event)
    assert data is not None  # None is only for ConnectionClosed
    return data


def probe(port: int) -> list[list[str]]:
    """Send two requests on one connection and check both answers; return the headers.

    Raises:
        BenchError: an answer differs from the benchmark's response, or the
            server closed the connection after the first one.
    """
    conn = h11.Connection(h11.CLIENT)
    headers: list[list[str]] = []
    with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT) as sock:
        for attempt in (1, 2):
            request = h11.Request(method="GET", target="/", headers=[("Host", f"{HOST}:{port}")])
            sock.sendall(_send(conn, request) + _send(conn, h11.EndOfMessage()))
            response: h11.Response | None = None
            body = b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                elif isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise BenchError(f"probe: connection closed before response {attempt} ended")
            assert response is not None
            if response.status_code != 200:
                raise BenchError(f"probe: status {response.status_code}, expected 200")
            content_type = [v for k, v in response.headers if k == b"content-type"]
            if content_type != [EXPECTED_CONTENT_TYPE]:
                raise BenchError(f"probe: content-type {content_type!r}, expected text/plain")
            if body != EXPECTED_BODY:
                raise BenchError(f"probe: body {body!r}, expected {EXPECTED_BODY!r}")
            if attempt == 1:
                headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers]
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    raise BenchError("probe: the server does not keep the connection alive")
                conn.start_next_cycle()
    return headers


def pinned(cpu: int, nice: int) -> list[str]:
    """The command prefix that runs a program on one CPU, at a niceness if not 0."""
    prefix = ["nice", "-n", str(nice)] if nice else []
    return [*prefix, "taskset", "-c", str(cpu)]


def run_wrk(port: int, duration: int, args: argparse.Namespace) -> dict[str, float]:
    """Load ``port`` with wrk for ``duration`` seconds; return wrk_report.lua's numbers."""
    connections = args.connections
    command = [
        *pinned(args.client_cpu, args.nice), "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
        f"--timeout={WRK_REQUEST_TIMEOUT}s", "-s", str(LUA_SCRIPT), f"http://{HOST}:{port}/",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=duration + WRK_GRACE, check=False
        )
    except subprocess.TimeoutExpired as exc:  # run() has killed wrk already
        raise BenchError(f"wrk did not finish within {duration + WRK_GRACE:.0f} s") from exc
    out = done.stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            report: dict[str, float] = json.loads(line.removeprefix("WRK_JSON "))
            return report
    err = done.stderr.decode(errors="replace")
    raise BenchError(f"wrk exited {done.returncode} without a report: {out.strip()} {err.strip()}")


def log_tail(path: Path) -> tuple[int, str]:
    """How many lines a server wrote to its log, and the last few of them."""
    lines = path.read_text(errors="replace").splitlines()
    return len(lines), "\n".join(lines[-LOG_TAIL_LINES:])


def load(
    proc: subprocess.Popen[bytes], port: int, args: argparse.Namespace, result: Result
) -> tuple[dict[str, float], CpuSample]:
    """Probe, warm up and load a started server.

    Returns:
        wrk's report, and the CPU time used during the measured run.
    """
    wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
    result.server_affinity = sorted(os.sched_getaffinity(proc.pid))
    result.response_headers = probe(port)
    if args.warmup:
        run_wrk(port, args.warmup, args)
    before = CpuSample.take(proc.pid, args.server_cpu, args.client_cpu)
    report = run_wrk(port, args.duration, args)
    return report, CpuSample.take(proc.pid, args.server_cpu, args.client_cpu) - before


def time_per_server(args: argparse.Namespace) -> float:
    """The most seconds one server's measurement can take, each step at its bound."""
    load_s: float = args.warmup + args.duration + 2 * WRK_GRACE
    wait_s: float = args.idle_wait + IDLE_SAMPLE + STARTUP_TIMEOUT + PROBE_TIMEOUT
    return wait_s + load_s + 2 * STOP_TIMEOUT


def measure(server: Server, args: argparse.Namespace, deadline: float) -> Result:
    """Start one server, probe it, warm it up, load it, stop it; never raises BenchError."""
    result = Result(server.name)
    missing = missing_module(server.requires)
    if missing is not None:
        result.status = "skipped"
        hint = f" ({server.install_hint})" if server.install_hint else ""
        result.notes.append(f"{missing} is not installed{hint}")
        return result
    needed = (
        args.idle_wait
        + STARTUP_TIMEOUT
        + args.warmup
        + args.duration
        + 2 * WRK_GRACE
        + 2 * STOP_TIMEOUT
    )
    if time.monotonic() + needed > deadline:
        result.status = "skipped"
        result.notes.append("the run's time budget is spent")
        return result

    if args.idle_wait and not wait_for_idle((args.server_cpu, args.client_cpu), args.idle_wait):
        result.notes.append(f"CPUs still busy with other work after {args.idle_wait:.0f} s")
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix=f"bench-{server.name}-", suffix=".log") as log:
        proc = subprocess.Popen(
            [*pinned(args.server_cpu, args.nice), *server.command(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=HERE.parent,
            env={**os.environ, **dict(server.env)},
        )
        measured = None
        try:
            measured = load(proc, port, args, result)
        except BenchError as exc:
            result.status = "failed"
            result.notes.append(str(exc))
        finally:
            stop(proc)
        result.server_log_lines, tail = log_tail(Path(log.name))
    if measured is None:
        if tail:
            result.notes.append("server log:\n    " + tail.replace("\n", "\n    "))
        return result
    report, cpu = measured

    seconds = report["duration_us"] / 1e6
    result.requests = int(report["requests"])
    result.duration_s = seconds
    result.requests_per_second = report["requests"] / seconds
    result.bytes_per_response = report["bytes"] / max(1, report["requests"])
    result.latency_us = {
        key.removeprefix("latency_").removesuffix("_us"): value
        for key, value in report.items()
        if key.startswith("latency_")
    }
    result.errors = {
        key.removeprefix("errors_"): int(value)
        for key, value in report.items()
        if key.startswith("errors_")
    }
    result.server_cpu_percent = 100 * cpu.server / seconds
    result.wrk_cpu_percent = 100 * cpu.wrk / seconds
    # Clock-tick rounding can make these slightly negative.
    result.other_on_server_cpu_percent = max(
        0.0, 100 * (cpu.server_cpu_busy - cpu.server) / seconds
    )
    result.other_on_client_cpu_percent = max(0.0, 100 * (cpu.client_cpu_busy - cpu.wrk) / seconds)
    result.server_cpu_us_per_request = 1e6 * cpu.server / max(1, result.requests)
    if result.error_count:
        result.status = "errors"
        result.notes.append(", ".join(f"{k} {v}" for k, v in result.errors.items() if v))
    if result.server_log_lines:
        first = tail.splitlines()[0]
        result.notes.append(f"server logged {result.server_log_lines} lines: {first}")
    return result


# --- report ------------------------------------------------------------------


def pick_median(rounds: list[Result]) -> Result:
    """The round whose requests/s is the median (the lower one for an even count)."""
    measured = [r for r in rounds if r.status in ("ok", "errors")]
    if not measured:
        return rounds[-1]
    measured.sort(key=lambda r: r.requests_per_second)
    return measured[(len(measured) - 1) // 2]


@dataclass(frozen=True)
class Ratio:
    """hyper against one peer: how many times the peer's requests/s, and its CPU per request."""

    hyper: str
    peer: str
    throughput: float  # hyper's requests/s over the peer's
    efficiency: float  # the peer's server CPU per request over hyper's
    caveat: str


def ratios(results: Sequence[Result]) -> list[Ratio]:
    """A Ratio for every measured (hyper variant, peer) pair."""
    hyper_names = {s.name for s in SERVERS if s.is_hyper}
    measured = [r for r in results if r.status in ("ok", "errors")]
    pairs = []
    for mine in measured:
        if mine.name not in hyper_names:
            continue
        for peer in measured:
            if peer.name in hyper_names:
                continue
            caveat = ", ".join(f"{r.name} had errors" for r in (mine, peer) if r.error_count)
            pairs.append(
                Ratio(
                    mine.name,
                    peer.name,
                    mine.requests_per_second / peer.requests_per_second,
                    peer.server_cpu_us_per_request / max(1e-9, mine.server_cpu_us_per_request),
                    caveat,
                )
            )
    return pairs


def print_report(results: Sequence[Result], all_rounds: dict[str, list[Result]]) -> None:
    header = (
        f"{'server':<18} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'us CPU/req':>10} {'srv CPU':>7} {'other':>5} {'wrk CPU':>7} {'other':>5} "
        f"{'B/resp':>6}  note"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.status in ("ok", "errors"):
            notes = r.notes.copy()
            rounds = [x.requests_per_second for x in all_rounds[r.name] if x.status != "failed"]
            if len(rounds) > 1:
                notes.insert(0, f"rounds {min(rounds):.0f}..{max(rounds):.0f}")
            if r.status == "errors":
                notes.insert(0, "ERRORS")
            print(
                f"{r.name:<18} {r.requests_per_second:>8.0f} {r.latency_us['p50'] / 1000:>7.2f} "
                f"{r.latency_us['p99'] / 1000:>7.2f} {r.error_count:>6} "
                f"{r.server_cpu_us_per_request:>10.1f} {r.server_cpu_percent:>6.0f}% "
                f"{r.other_on_server_cpu_percent:>4.0f}% {r.wrk_cpu_percent:>6.0f}% "
                f"{r.other_on_client_cpu_percent:>4.0f}% "
                f"{r.bytes_per_response:>6.0f}  {'; '.join(notes)}"
            )
        else:
            print(f"{r.name:<18} {r.status.upper():>8}  {r.note}")
    print(
        "(srv CPU / wrk CPU: share of its CPU each used; other: CPU taken on that core by "
        "other processes during the run, a sign of noise)"
    )
    pairs = ratios(results)
    if pairs:
        print("\nhyper against each peer: requests/s ratio (server CPU per request ratio)")
        for ratio in pairs:
            target = TARGETS.get(ratio.peer) if ratio.hyper in TARGETED else None
            verdict = ""
            if target is not None:
                met = "met" if ratio.throughput >= target else "NOT met"
                verdict = f"  target >= {target}x: {met}"
            note = f"  [{ratio.caveat}]" if ratio.caveat else ""
            print(
                f"  {ratio.hyper}/{ratio.peer} = {ratio.throughput:.2f}x "
                f"({ratio.efficiency:.2f}x){verdict}{note}"
            )


def versions() -> dict[str, str]:
    found = {}
    for dist in ("hyper-core", "h11", "anyio", "trio", "uvicorn", "httptools", "hypercorn",
                 "granian", "aiohttp"):  # fmt: skip
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, timeout=10, check=False)
    found["wrk"] = (wrk.stdout or wrk.stderr).decode(errors="replace").split("\n")[0].strip()
    return found


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SERVERS]
    parser = argparse.ArgumentParser(
        description="Hello-world HTTP/1.1 keep-alive load with wrk against hyper-core and peers.",
        epilog="servers: " + ", ".join(names),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before (0: none)")
    parser.add_argument("--connections", type=int, default=50, help="wrk keep-alive connections")
    parser.add_argument("--rounds", type=int, default=1, help="run the list N times, report median")
    parser.add_argument("--only", default="", help="comma-separated server names")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU the servers are pinned to")
    parser.add_argument("--client-cpu", type=int, default=0, help="CPU wrk is pinned to")
    parser.add_argument(
        "--idle-wait",
        type=float,
        default=10.0,
        help="seconds to wait, before each server, for the two CPUs to go idle (0: no wait)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers and wrk at this niceness (negative, as root, to keep other "
        "processes on a shared machine from stealing the pinned CPUs)",
    )
    args = parser.parse_args(argv)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(names)}")
        args.servers = [s for s in SERVERS if s.name in wanted]
    else:
        args.servers = list(SERVERS)
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration, --connections and --rounds must be >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            fail(f"{tool} is not on PATH (Debian: apt-get install wrk util-linux)")
    usable = os.sched_getaffinity(0)
    if args.server_cpu == args.client_cpu or not {args.server_cpu, args.client_cpu} <= usable:
        fail(f"need two distinct usable CPUs for server and client; usable: {sorted(usable)}")

    # A SIGTERM (from nox or a CI timeout) must still run the finally blocks
    # that stop the servers.
    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)

    servers: list[Server] = args.servers
    per_server = (
        args.idle_wait
        + STARTUP_TIMEOUT
        + args.warmup
        + args.duration
        + 2 * WRK_GRACE
        + 2 * STOP_TIMEOUT
    )
    deadline = time.monotonic() + args.rounds * len(servers) * per_server + 60
    started = datetime.datetime.now(datetime.UTC)
    meta: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": versions(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "wrk_threads": 1,
            "rounds": args.rounds,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
            "nice": args.nice,
            "idle_wait_s": args.idle_wait,
        },
    }
    print(
        f"{meta['date']}  {meta['machine']['cpu']}, {meta['machine']['cpus']} CPUs, "
        f"Python {meta['machine']['python']}"
    )
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s (after {args.warmup} s warm-up) "
        f"pinned to CPU {args.client_cpu}; each server pinned to CPU {args.server_cpu}; "
        f"{args.rounds} round(s); niceness {args.nice}\n"
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
                    f"p99 {result.latency_us['p99'] / 1000:.2f} ms, "
                    f"{result.error_count} errors",
                    flush=True,
                )
            else:
                print(f"    {result.status}: {result.note}", flush=True)
    print()
    results = [pick_median(all_rounds[s.name]) for s in servers]
    print_report(results, all_rounds)

    if args.json:
        document = {
            **meta,
            "results": [asdict(r) for r in results],
            "rounds": {name: [asdict(r) for r in rs] for name, rs in all_rounds.items()},
            "ratios": [asdict(ratio) for ratio in ratios(results)],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
