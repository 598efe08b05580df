"""Side-by-side HTTP/1.1 server benchmark: ``hyper_util.server.serve()`` against its peers.

What belongs here: the HTTP/1 workloads of issue 13, the peer servers, the
probe that proves every server does the same work, and the ratio table.
The servers live in ``servers/`` (``hyper_serve.py``, ``asgi_hello.py``,
``aiohttp_hello.py``, ``hypercorn_serve.py``; the bytes of each workload in
``_workloads.py``); processes, pinning, CPU accounting and wrk come from
``_harness.py``.

Strategy:

* Workloads: ``hello`` (``GET /``, 13 bytes), ``headers`` (``GET
  /headers``, a 4 KiB body with ten response header fields), ``upload``
  (``POST /upload`` of 16 KiB that the service reads whole). Each is loaded
  with ``wrk -t1 -c64`` (requests/s, latency p50/p99, server CPU per
  request) and with ``wrk -t1 -c1`` (latency p50/p99 of one client alone).
* Servers: ``hyper`` (``serve()``: the asyncio transport IO on asyncio and
  uvloop, the trio stream on trio), uvicorn with httptools and with h11,
  granian (Rust), aiohttp (C parser) and hypercorn, each with its access log
  off, on ``--loops`` (asyncio, uvloop; trio for hyper only).
* One server process per (server, loop, round), pinned with ``taskset`` to
  the server CPU, wrk to the client CPU: requests/s is one core's worth of
  server. Before the loads a probe checks every workload's answer (status,
  content type, body, the ten header fields, the kept-alive connection).
  Each load has a warm-up, then the measured run.
* Report: per workload, every (server, loop) row; then hyper against each
  peer on the same loop (requests/s ratio, server CPU per request ratio in
  parentheses) with issue 13's targets checked (1.5x uvicorn-httptools,
  1.0x granian; latency no worse than uvicorn-httptools; trio at least 0.8x
  asyncio). ``--rounds N`` interleaves N rounds and keeps each row's median.
* Every wait is bounded and every process is stopped by its PID (its
  process group) in a ``finally``.

Run: ``nox -s bench`` or ``flock /tmp/bench.lock .venv/bin/python
benchmarks/run.py [--loops asyncio,uvloop,trio] [--workloads
hello,headers,upload] [--only hyper,granian] [--rounds 3] [--duration 5]
[--json FILE]``; ``--help`` lists every option.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _harness import (
    HOST,
    PROBE_TIMEOUT,
    PYTHON,
    SERVERS_DIR,
    STARTUP_TIMEOUT,
    BenchError,
    CpuSample,
    banner,
    check_cpus,
    free_port,
    hyper_build,
    log_tail,
    missing_module,
    pinned,
    require_tools,
    run_wrk,
    server_log,
    start_server,
    stop,
    stop_on_sigterm,
    wait_for_idle,
    wait_until_accepting,
    wrk_script,
)

sys.path.insert(0, str(SERVERS_DIR))
from _workloads import EXTRA_HEADERS, HELLO, PAGE, UPLOAD_SIZE

WORKLOADS = {"hello": ("GET", "/"), "headers": ("GET", "/headers"), "upload": ("POST", "/upload")}
LOOPS = ("asyncio", "uvloop", "trio")
# Issue 13's targets: hyper's requests/s over the peer's, on the same loop.
TARGETS = {"uvicorn-httptools": 1.5, "granian": 1.0}
# ... and hyper on trio over hyper on asyncio.
TRIO_TARGET = 0.8


@dataclass(frozen=True)
class Server:
    """A server under test: how to start it on a port and loop, and where it runs."""

    name: str
    description: str
    command: Callable[[int, str], list[str]]  # (port, loop) -> argv
    requires: tuple[str, ...]
    loops: tuple[str, ...] = ("asyncio", "uvloop")
    is_hyper: bool = False
    install_hint: str = "uv sync --group bench"


def _script(filename: str, python: str = PYTHON) -> Callable[[int, str], list[str]]:
    def command(port: int, loop: str) -> list[str]:
        return [python, str(SERVERS_DIR / filename), "--port", str(port), "--loop", loop]

    return command


def compiled_hyper(python: str) -> Server:
    """``hyper`` again, run by another interpreter whose hyper-core is the compiled build."""
    return Server(
        "hyper-compiled",
        f"the same serve(), hyper-core compiled by mypyc ({python})",
        _script("hyper_serve.py", python),
        (),
        LOOPS,
        is_hyper=True,
    )


def _uvicorn(http: str) -> Callable[[int, str], list[str]]:
    def command(port: int, loop: str) -> list[str]:
        return [
            PYTHON, "-m", "uvicorn", "--app-dir", str(SERVERS_DIR), "asgi_hello:app",
            "--host", HOST, "--port", str(port), "--http", http, "--loop", loop,
            "--ws", "none", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    return command


def _granian(port: int, loop: str) -> list[str]:
    return [
        PYTHON, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", loop, "--http", "1", "--no-ws", "--no-access-log",
        "--log-level", "warning", "--working-dir", str(SERVERS_DIR), "asgi_hello:app",
    ]  # fmt: skip


SERVERS: tuple[Server, ...] = (
    Server(
        "hyper",
        "hyper_util.server.serve(), defaults",
        _script("hyper_serve.py"),
        ("hyper_util.server",),
        LOOPS,
        is_hyper=True,
    ),
    Server(
        "uvicorn-httptools",
        "uvicorn --http httptools",
        _uvicorn("httptools"),
        ("uvicorn", "httptools"),
    ),
    Server("uvicorn-h11", "uvicorn --http h11", _uvicorn("h11"), ("uvicorn", "h11")),
    Server("granian", "granian --interface asgi --workers 1 --http 1", _granian, ("granian",)),
    Server("aiohttp", "aiohttp.web.run_app", _script("aiohttp_hello.py"), ("aiohttp",)),
    Server(
        "hypercorn",
        "hypercorn.asyncio.serve, one process",
        _script("hypercorn_serve.py"),
        ("hypercorn",),
    ),
)


@dataclass
class Load:
    """One wrk run: rate, latency, CPU."""

    requests_per_second: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    server_cpu_us: float = 0.0  # per request
    server_cpu_percent: float = 0.0
    other_cpu_percent: float = 0.0  # taken by other processes on both pinned CPUs
    client_wakeups: float = 0.0  # per request: interrupts that woke wrk's CPU


@dataclass
class Result:
    """One (server, loop, workload) in one round."""

    server: str
    loop: str
    workload: str
    status: str = "ok"  # ok | errors | failed | skipped
    notes: list[str] = field(default_factory=list)
    many: Load = field(default_factory=Load)  # -c connections
    one: Load | None = None  # -c1


# --- probe ---------------------------------------------------------------------


def probe(port: int, workload: str) -> None:
    """Two requests of ``workload`` on one connection, each answer checked; raise BenchError."""
    method, path = WORKLOADS[workload]
    conn = http.client.HTTPConnection(HOST, port, timeout=PROBE_TIMEOUT)
    try:
        for _ in (1, 2):
            body = b"u" * UPLOAD_SIZE if method == "POST" else None
            conn.request(method, path, body=body)
            response = conn.getresponse()
            data = response.read()
            expected = {"hello": HELLO, "headers": PAGE, "upload": str(UPLOAD_SIZE).encode()}
            if response.status != 200 or data != expected[workload]:
                raise BenchError(f"probe {workload}: {response.status}, {data[:40]!r}")
            if response.getheader("content-type") != "text/plain":
                kind = response.getheader("content-type")
                raise BenchError(f"probe {workload}: content-type {kind}")
            if workload == "headers":
                for name, value in EXTRA_HEADERS:
                    if response.getheader(name.decode()) != value.decode():
                        raise BenchError(f"probe headers: {name.decode()} missing or different")
            if response.will_close:
                raise BenchError(f"probe {workload}: the server does not keep the connection alive")
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError(f"probe {workload}: {exc!r}") from exc
    finally:
        conn.close()


# --- measuring -------------------------------------------------------------------


def load(port: int, pgid: int, workload: str, connections: int, args: argparse.Namespace) -> Load:
    url = f"http://{HOST}:{port}{WORKLOADS[workload][1]}"
    script = args.scripts[workload]
    wrk = {"connections": connections, "cpu": args.client_cpu, "nice": args.nice, "script": script}
    if args.warmup:
        run_wrk(url, args.warmup, **wrk)
    if args.idle_wait:
        wait_for_idle((args.server_cpu, args.client_cpu), args.idle_wait)
    before = CpuSample.take(pgid, args.server_cpu, args.client_cpu)
    report = run_wrk(url, args.duration, **wrk)
    cpu = CpuSample.take(pgid, args.server_cpu, args.client_cpu) - before
    seconds = report["duration_us"] / 1e6
    requests = max(1, int(report["requests"]))
    other = (cpu.server_cpu_busy - cpu.server) + (cpu.client_cpu_busy - cpu.wrk)
    return Load(
        requests_per_second=report["requests"] / seconds,
        p50_ms=report["latency_p50_us"] / 1000,
        p99_ms=report["latency_p99_us"] / 1000,
        errors=int(sum(v for k, v in report.items() if k.startswith("errors_"))),
        server_cpu_us=1e6 * cpu.server / requests,
        server_cpu_percent=100 * cpu.server / seconds,
        other_cpu_percent=max(0.0, 100 * other / seconds),
        client_wakeups=cpu.client_wakeups / requests,
    )


def measure(server: Server, loop: str, args: argparse.Namespace) -> list[Result]:
    """Start one server on one loop, probe and load every workload, stop it."""
    results = [Result(server.name, loop, w) for w in args.workloads]
    missing = missing_module(server.requires)
    if loop == "uvloop" and missing is None:
        missing = missing_module(("uvloop",))
    if missing is not None:
        for r in results:
            r.status = "skipped"
            r.notes.append(f"{missing} is not installed ({server.install_hint})")
        return results
    port = free_port()
    with server_log(f"{server.name}-{loop}") as log:
        proc = start_server([*pinned(args.server_cpu, args.nice), *server.command(port, loop)], log)
        try:
            wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
            for result in results:
                try:
                    probe(port, result.workload)
                    result.many = load(port, proc.pid, result.workload, args.connections, args)
                    if args.c1:
                        result.one = load(port, proc.pid, result.workload, 1, args)
                except BenchError as exc:
                    result.status = "failed"
                    result.notes.append(str(exc))
                    continue
                errors = result.many.errors + (result.one.errors if result.one else 0)
                if errors:
                    result.status = "errors"
                    result.notes.append(f"{errors} errors")
        except BenchError as exc:
            for result in results:
                result.status = "failed"
                result.notes.append(str(exc))
        finally:
            stop(proc)
        lines, tail = log_tail(log.name)
    if lines:
        for result in results:
            if result.status == "failed":
                result.notes.append("server log:\n    " + tail.replace("\n", "\n    "))
            else:
                result.notes.append(f"server logged {lines} lines: {tail.splitlines()[0][:80]}")
    return results


# --- report --------------------------------------------------------------------------


def median(rounds: list[Result]) -> Result:
    """The round whose requests/s is the median (the lower one for an even count)."""
    done = sorted(
        (r for r in rounds if r.status in ("ok", "errors")),
        key=lambda r: r.many.requests_per_second,
    )
    return done[(len(done) - 1) // 2] if done else rounds[-1]


def _verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"  target >= {target}x: {'met' if ratio >= target else 'NOT met'}"


def print_report(table: dict[tuple[str, str, str], list[Result]], args: argparse.Namespace) -> None:
    c = args.connections
    for workload in args.workloads:
        method, path = WORKLOADS[workload]
        print(f"\n{workload} ({method} {path})")
        header = (
            f"{'server':<18} {'loop':<8} {f'req/s c{c}':>10} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'us CPU/req':>10} {'srv CPU':>7} {'other':>6} {'wake/req':>8} {'req/s c1':>9} "
            f"{'p50 ms':>7} {'p99 ms':>7}  note"
        )
        print(header)
        print("-" * len(header))
        best: dict[tuple[str, str], Result] = {}
        for (name, loop, w), rounds in table.items():
            if w != workload:
                continue
            r = median(rounds)
            if r.status not in ("ok", "errors"):
                print(f"{name:<18} {loop:<8} {r.status.upper():>10}  {'; '.join(r.notes)}")
                continue
            best[name, loop] = r
            notes = list(r.notes)
            rates = [x.many.requests_per_second for x in rounds if x.status in ("ok", "errors")]
            if len(rates) > 1:
                notes.insert(0, f"rounds {min(rates):.0f}..{max(rates):.0f}")
            one = r.one or Load()
            m = r.many
            print(
                f"{name:<18} {loop:<8} {m.requests_per_second:>10.0f} {m.p50_ms:>7.2f} "
                f"{m.p99_ms:>7.2f} {m.server_cpu_us:>10.1f} {m.server_cpu_percent:>6.0f}% "
                f"{m.other_cpu_percent:>5.0f}% {m.client_wakeups:>8.3f} "
                f"{one.requests_per_second:>9.0f} "
                f"{one.p50_ms:>7.2f} {one.p99_ms:>7.2f}  {'; '.join(notes)}"
            )
        print_ratios(best, args)


def print_ratios(best: dict[tuple[str, str], Result], args: argparse.Namespace) -> None:
    hyper = {s.name for s in args.servers if s.is_hyper}
    lines = []
    for (name, loop), mine in best.items():
        if name not in hyper:
            continue
        for (peer, peer_loop), theirs in best.items():
            if peer in hyper or peer_loop != loop:
                continue
            ratio = mine.many.requests_per_second / theirs.many.requests_per_second
            cpu = theirs.many.server_cpu_us / max(1e-9, mine.many.server_cpu_us)
            verdict = _verdict(ratio, TARGETS.get(peer))
            line = f"  {name}/{peer} ({loop}) = {ratio:.2f}x ({cpu:.2f}x){verdict}"
            if peer == "uvicorn-httptools":
                worse = [
                    f"{label} {mine_ms:.3f} > {peer_ms:.3f} ms"
                    for label, mine_ms, peer_ms in latency_pairs(mine, theirs, args.connections)
                    if mine_ms > peer_ms
                ]
                line += "; latency: " + ("no worse" if not worse else "WORSE " + ", ".join(worse))
            lines.append(line)
        if name == "hyper-compiled" and ("hyper", loop) in best:
            pure = best["hyper", loop].many
            ratio = mine.many.requests_per_second / pure.requests_per_second
            cpu = pure.server_cpu_us / max(1e-9, mine.many.server_cpu_us)
            lines.append(f"  hyper-compiled/hyper ({loop}) = {ratio:.2f}x ({cpu:.2f}x)")
        if loop == "trio" and (name, "asyncio") in best:
            base = best[name, "asyncio"].many.requests_per_second
            ratio = mine.many.requests_per_second / base
            lines.append(f"  {name} trio/asyncio = {ratio:.2f}x{_verdict(ratio, TRIO_TARGET)}")
    if lines:
        print(f"hyper against each peer on the same loop: requests/s at c{args.connections} "
              "(server CPU per request ratio)")  # fmt: skip
        print("\n".join(lines))


def latency_pairs(mine: Result, theirs: Result, c: int) -> list[tuple[str, float, float]]:
    pairs = [
        (f"p50 c{c}", mine.many.p50_ms, theirs.many.p50_ms),
        (f"p99 c{c}", mine.many.p99_ms, theirs.many.p99_ms),
    ]
    if mine.one and theirs.one:
        pairs += [("p50 c1", mine.one.p50_ms, theirs.one.p50_ms)]
        pairs += [("p99 c1", mine.one.p99_ms, theirs.one.p99_ms)]
    return pairs


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SERVERS]
    parser = argparse.ArgumentParser(
        description="HTTP/1.1 workloads with wrk against hyper's serve() and its peers.",
        epilog=f"servers: {', '.join(names)}; workloads: {', '.join(WORKLOADS)}",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--only", default="", help="comma-separated server names")
    parser.add_argument("--loops", default=",".join(LOOPS), help="comma-separated event loops")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--duration", type=int, default=5, help="seconds of measured load")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of load before (0: none)")
    parser.add_argument("--connections", type=int, default=64, help="wrk keep-alive connections")
    parser.add_argument("--no-c1", dest="c1", action="store_false", help="skip the -c1 latency run")
    parser.add_argument("--rounds", type=int, default=1, help="run the list N times, report median")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU the servers are pinned to")
    parser.add_argument("--client-cpu", type=int, default=0, help="CPU wrk is pinned to")
    parser.add_argument(
        "--idle-wait", type=float, default=2.0, help="seconds to wait for idle CPUs before a load"
    )
    parser.add_argument("--nice", type=int, default=0, help="niceness of servers and wrk")
    parser.add_argument(
        "--compiled",
        metavar="PYTHON",
        help="add a hyper-compiled row: serve() run by this interpreter, whose hyper-core "
        "is the compiled build (e.g. the one nox -s bench_compiled made)",
    )
    args = parser.parse_args(argv)
    servers = list(SERVERS)
    if args.compiled:
        if hyper_build(args.compiled) != "compiled":
            parser.error(f"--compiled {args.compiled}: its hyper-core is not the compiled build")
        servers.insert(1, compiled_hyper(args.compiled))
        names.insert(1, "hyper-compiled")
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or names
    args.loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    args.workloads = [x.strip() for x in args.workloads.split(",") if x.strip()]
    for kind, given, known in (
        ("server", wanted, names),
        ("loop", args.loops, LOOPS),
        ("workload", args.workloads, list(WORKLOADS)),
    ):
        if unknown := sorted(set(given) - set(known)):
            parser.error(f"unknown {kind}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    args.servers = [s for s in servers if s.name in wanted]
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration, --connections and --rounds must be >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_tools("wrk", "taskset")
    check_cpus(args.server_cpu, args.client_cpu)
    stop_on_sigterm()
    print(banner())
    print(
        f"wrk -t1 -c{args.connections} and -c1, {args.duration} s after {args.warmup} s "
        f"warm-up, on CPU {args.client_cpu}; each server on CPU {args.server_cpu}; "
        f"{args.rounds} round(s)"
    )
    table: dict[tuple[str, str, str], list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scripts:
        args.scripts = {
            "hello": wrk_script(scripts, "hello"),
            "headers": wrk_script(scripts, "headers"),
            "upload": wrk_script(scripts, "upload", "POST", UPLOAD_SIZE),
        }
        for number in range(1, args.rounds + 1):
            for server in args.servers:
                for loop in (x for x in args.loops if x in server.loops):
                    label = f"[round {number}/{args.rounds}] " if args.rounds > 1 else ""
                    print(f"{label}{server.name} on {loop}: {server.description} ...", flush=True)
                    for result in measure(server, loop, args):
                        table.setdefault((server.name, loop, result.workload), []).append(result)
                        if result.status in ("ok", "errors"):
                            m = result.many
                            shown = (
                                f"{m.requests_per_second:.0f} req/s, {m.server_cpu_us:.0f} us CPU, "
                                f"p99 {m.p99_ms:.2f} ms"
                            )
                        else:
                            shown = f"{result.status}: {result.notes[0] if result.notes else ''}"
                        print(f"    {result.workload}: {shown}", flush=True)
    print_report(table, args)
    if args.json:
        document: dict[str, Any] = {
            "banner": banner(),
            "settings": {
                k: v for k, v in vars(args).items() if k not in ("servers", "scripts", "json")
            },
            "results": {"/".join(key): [asdict(r) for r in rs] for key, rs in table.items()},
        }
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
