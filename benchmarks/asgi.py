"""Side-by-side ASGI benchmark: one application on hyper, uvicorn, hypercorn and granian.

What belongs here: starting each ASGI server on the same application
(``servers/asgi_app.py``), checking its answers, loading it with five
scenarios, stopping it, and reporting per scenario with hyper's ratio
against each peer and the issue's targets. Process handling, pinning and
CPU accounting come from ``_harness.py``, so every benchmark here measures alike;
the WebSocket load is ``ws_client.py``.

Strategy:

* Scenarios: ``hello`` (wrk, keep-alive ``GET /``), ``headers`` (wrk, ``GET
  /headers``: a 4 KiB body with ten response header fields), ``json`` (wrk,
  ``GET /json``, a ``json.dumps`` per request), ``post`` (wrk, ``POST /echo`` of a
  16 KiB body, echoed back), ``ws`` (``ws_client.py``: 20 connections, each
  a text message of 32 bytes and its echo at a time; messages/s).
* Servers, all with the access log off, on ``--loop asyncio`` or
  ``uvloop``: ``hyper`` is ``python -m hyper_util run`` (hyper_util.asgi);
  ``hyper-trio`` is the same on ``--loop trio`` whatever ``--loop`` says
  (its ratio to ``hyper`` is the trio target);
  uvicorn with httptools and with h11 for HTTP, and with its three
  WebSocket implementations (websockets' Sans-I/O core, its default; the
  legacy websockets protocol; wsproto) for ``ws``; hypercorn in one process;
  granian (``--interface asgi``, Rust) with one worker. A server takes part
  in the scenarios it is listed for.
* Each server is a fresh process per round, started with ``taskset`` on
  the server CPU; the load runs on the client CPU. Before each scenario a
  probe checks the answer (status, content type, body; the echo of a 16 KiB
  body; one WebSocket echo), then a warm-up load, then the measured one.
  Server CPU time is read from ``/proc`` around the measured window (for
  ``ws`` the client marks the window's start and end on its stdout), so CPU
  per request or message is reported beside the rate: it holds up better
  than the rate when other work shares the machine.
* ``--rounds N`` interleaves the servers N times; each (server, scenario)
  reports its median round. A missing peer is skipped with a note; a
  missing ``hyper_util.asgi`` fails the hyper row with a message saying so.
* Every wait is bounded and every process is stopped by its PID (the
  process group this script created) in a ``finally``.

Run: ``.venv/bin/python benchmarks/asgi.py [--loop asyncio|uvloop]
[--only hyper,uvicorn-httptools] [--scenarios hello,ws] [--rounds 3]
[--duration 10]``; ``--help`` lists every option.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from _harness import (
    HOST,
    PROBE_TIMEOUT,
    PYTHON,
    SERVERS_DIR,
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    WRK_GRACE,
    BenchError,
    CpuSample,
    banner,
    check_cpus,
    free_port,
    log_tail,
    missing_module,
    pinned,
    process_cpu_seconds,
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

HERE = Path(__file__).resolve().parent
WS_CLIENT = HERE / "ws_client.py"
APP = "asgi_app:app"
SCENARIOS = ("hello", "headers", "json", "post", "ws")
HTTP_SCENARIOS = frozenset(("hello", "headers", "json", "post"))
# The issues' targets for hyper, per scenario: peer -> least ratio of rates
# (issue 10: 1.0x uvicorn-httptools, 4x hypercorn, 1.0x uvicorn for ws;
# issue 13: 1.2x uvicorn-httptools, 0.9x granian, trio 0.8x asyncio).
_HTTP_TARGETS: dict[str, float] = {
    "uvicorn-httptools": 1.2,
    "hypercorn": 4.0,
    "granian": 0.9,
    "hyper-trio": 0.8,  # read the other way: hyper-trio/hyper
}
TARGETS: dict[str, dict[str, float]] = {
    "hello": _HTTP_TARGETS,
    "headers": _HTTP_TARGETS,
    "post": _HTTP_TARGETS,
    "ws": {"uvicorn-ws-sansio": 1.0, "uvicorn-websockets": 1.0, "uvicorn-wsproto": 1.0},
}
HYPER_MISSING = (
    "hyper_util.asgi is not importable: `python -m hyper_util run` (the ASGI adapter) "
    "is not on this branch yet"
)


@dataclass(frozen=True)
class AsgiServer:
    """An ASGI server under test: how to start it, and which scenarios it runs."""

    name: str
    description: str
    command: Callable[[int, str], list[str]]  # (port, loop) -> argv
    requires: tuple[str, ...]
    scenarios: frozenset[str]
    is_hyper: bool = False
    install_hint: str = ""


def _hyper(port: int, loop: str) -> list[str]:
    return [
        PYTHON, "-m", "hyper_util", "run", "--app-dir", str(SERVERS_DIR), APP,
        "--host", HOST, "--port", str(port), "--loop", loop,
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def _hyper_trio(port: int, loop: str) -> list[str]:
    return _hyper(port, "trio")


def _baseline(server: AsgiServer, checkout: Path) -> AsgiServer:
    """``server`` on another checkout's sources (first on ``PYTHONPATH``)."""
    packages = checkout.resolve() / "packages"
    path = f"{packages / 'hyper-core' / 'src'}:{packages / 'hyper-util' / 'src'}"

    def command(port: int, loop: str) -> list[str]:
        return ["env", f"PYTHONPATH={path}", *server.command(port, loop)]

    return replace(
        server,
        name=f"{server.name}-base",
        description=f"{server.description} ({checkout})",
        command=command,
        is_hyper=False,
    )


def _uvicorn(http: str, ws: str) -> Callable[[int, str], list[str]]:
    def command(port: int, loop: str) -> list[str]:
        return [
            PYTHON, "-m", "uvicorn", "--app-dir", str(SERVERS_DIR), APP,
            "--host", HOST, "--port", str(port), "--http", http, "--ws", ws, "--loop", loop,
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    return command


def _hypercorn(port: int, loop: str) -> list[str]:
    script = str(SERVERS_DIR / "hypercorn_serve.py")
    return [PYTHON, script, "--port", str(port), "--app", APP, "--loop", loop]


def _granian(port: int, loop: str) -> list[str]:
    return [
        PYTHON, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", loop, "--http", "1", "--ws", "--no-access-log",
        "--log-level", "warning", "--working-dir", str(SERVERS_DIR), APP,
    ]  # fmt: skip


ALL = frozenset(SCENARIOS)
WS = frozenset(("ws",))
SERVERS: tuple[AsgiServer, ...] = (
    AsgiServer("hyper", "python -m hyper_util run", _hyper, ("hyper_util.asgi",), ALL, True),
    AsgiServer(
        "hyper-trio",
        "python -m hyper_util run --loop trio",
        _hyper_trio,
        ("hyper_util.asgi", "trio"),
        ALL,
        True,
    ),
    AsgiServer(
        "uvicorn-httptools",
        "uvicorn --http httptools",
        _uvicorn("httptools", "none"),
        ("uvicorn", "httptools"),
        HTTP_SCENARIOS,
        install_hint="uv sync --group bench",
    ),
    AsgiServer(
        "uvicorn-h11", "uvicorn --http h11", _uvicorn("h11", "none"), ("uvicorn",), HTTP_SCENARIOS
    ),
    AsgiServer(
        "uvicorn-ws-sansio",
        "uvicorn --ws websockets-sansio (its default)",
        _uvicorn("httptools", "websockets-sansio"),
        ("uvicorn", "httptools", "websockets"),
        WS,
        install_hint="uv sync --group bench",
    ),
    AsgiServer(
        "uvicorn-websockets",
        "uvicorn --ws websockets (legacy protocol)",
        _uvicorn("httptools", "websockets"),
        ("uvicorn", "httptools", "websockets"),
        WS,
        install_hint="uv sync --group bench",
    ),
    AsgiServer(
        "uvicorn-wsproto",
        "uvicorn --ws wsproto",
        _uvicorn("httptools", "wsproto"),
        ("uvicorn", "httptools", "wsproto"),
        WS,
        install_hint="uv sync --group bench",
    ),
    AsgiServer("hypercorn", "hypercorn.asyncio.serve", _hypercorn, ("hypercorn",), ALL),
    AsgiServer(
        "granian",
        "granian --interface asgi --workers 1",
        _granian,
        ("granian",),
        ALL,
        install_hint="uv sync --group bench",
    ),
)


@dataclass
class Result:
    """One (server, scenario) in one round: measured, or why not."""

    server: str
    scenario: str
    status: str = "ok"  # ok | errors | failed | skipped
    notes: list[str] = field(default_factory=list)
    rate: float = 0.0  # requests/s, or messages/s for ws
    operations: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    errors: int = 0
    server_cpu_us_per_op: float = 0.0
    server_cpu_percent: float = 0.0
    client_cpu_percent: float = 0.0
    other_on_server_cpu_percent: float = 0.0
    other_on_client_cpu_percent: float = 0.0
    client_wakeups_per_op: float = 0.0  # interrupts that woke the load's CPU


# --- probes -----------------------------------------------------------------


def _http(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=PROBE_TIMEOUT)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        conn.close()


def probe(port: int, scenario: str, args: argparse.Namespace) -> None:
    """Check that the server answers this scenario as the app does; raise BenchError if not."""
    if scenario == "ws":
        from websockets.sync.client import connect

        message = "x" * args.ws_size
        with connect(f"ws://{HOST}:{port}/ws", compression=None, open_timeout=PROBE_TIMEOUT) as ws:
            ws.send(message)
            if ws.recv(timeout=PROBE_TIMEOUT) != message:
                raise BenchError("probe: the WebSocket echo differs")
        return
    if scenario == "hello":
        expected = (200, "text/plain", b"Hello, World!")
        got = _http(port, "GET", "/")
    elif scenario == "headers":
        expected = (200, "text/plain", b"x" * 4096)
        got = _http(port, "GET", "/headers")
    elif scenario == "json":
        got = _http(port, "GET", "/json")
        expected = (200, "application/json", got[2])
        if json.loads(got[2]) != {"message": "Hello, World!", "id": 1, "ok": True}:
            raise BenchError(f"probe: /json answered {got[2]!r}")
    else:
        body = os.urandom(args.post_size)
        expected = (200, "application/octet-stream", body)
        got = _http(port, "POST", "/echo", body)
    if got != expected:
        raise BenchError(f"probe {scenario}: {got[:2]}, {len(got[2])} bytes; wanted {expected[:2]}")


# --- loads --------------------------------------------------------------------


def scenario_script(scenario: str, args: argparse.Namespace, directory: str) -> Path:
    """The wrk Lua script of a scenario (the POST body for ``post``)."""
    if scenario == "post":
        return wrk_script(directory, scenario, "POST", args.post_size)
    return wrk_script(directory, scenario)


def load_wrk(port: int, scenario: str, seconds: int, args: argparse.Namespace) -> dict[str, float]:
    path = {"json": "/json", "headers": "/headers", "post": "/echo"}.get(scenario, "/")
    return run_wrk(
        f"http://{HOST}:{port}{path}",
        seconds,
        connections=args.connections,
        cpu=args.client_cpu,
        nice=args.nice,
        script=args.scripts[scenario],
    )


def _read_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError("the WebSocket client did not finish in time")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            line = proc.stdout.readline().decode(errors="replace")
            if not line:
                raise BenchError(f"the WebSocket client exited with {proc.wait(STOP_TIMEOUT)}")
            return line


def run_ws(
    port: int, seconds: float, args: argparse.Namespace, pgid: int
) -> tuple[dict[str, float], CpuSample | None]:
    """Run ws_client.py; the report and the CPU used between its window marks."""
    command = [
        *pinned(args.client_cpu, args.nice), PYTHON, str(WS_CLIENT), f"ws://{HOST}:{port}/ws",
        "--connections", str(args.ws_connections), "--size", str(args.ws_size),
        "--duration", str(seconds), "--warmup", "0.5", "--marks",
    ]  # fmt: skip
    deadline = time.monotonic() + seconds + 0.5 + 2 * WRK_GRACE
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def sample() -> CpuSample:
        # The client is still running, so its CPU time comes from /proc, not
        # from the waited-for children's usage that CpuSample reads.
        taken = CpuSample.take(pgid, args.server_cpu, args.client_cpu)
        return replace(taken, wrk=process_cpu_seconds(proc.pid))

    try:
        before = after = None
        while True:
            line = _read_line(proc, deadline)
            if line.startswith("WS_START"):
                before = sample()
            elif line.startswith("WS_END"):
                after = sample()
            elif line.startswith("WS_JSON "):
                report: dict[str, float] = json.loads(line.removeprefix("WS_JSON "))
                proc.wait(STOP_TIMEOUT)
                cpu = after - before if before is not None and after is not None else None
                return report, cpu
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


def load(
    proc: subprocess.Popen[bytes], port: int, scenario: str, args: argparse.Namespace
) -> Result:
    result = Result("", scenario)
    probe(port, scenario, args)
    if scenario == "ws":
        if args.warmup:
            run_ws(port, args.warmup, args, proc.pid)
        report, cpu = run_ws(port, args.duration, args, proc.pid)
        if cpu is None:
            raise BenchError("the WebSocket client did not mark its window")
        operations, seconds = int(report["messages"]), report["duration_us"] / 1e6
        result.errors = int(report["errors"])
    else:
        if args.warmup:
            load_wrk(port, scenario, args.warmup, args)
        before = CpuSample.take(proc.pid, args.server_cpu, args.client_cpu)
        report = load_wrk(port, scenario, args.duration, args)
        cpu = CpuSample.take(proc.pid, args.server_cpu, args.client_cpu) - before
        operations, seconds = int(report["requests"]), report["duration_us"] / 1e6
        result.errors = sum(int(v) for k, v in report.items() if k.startswith("errors_"))
    result.operations = operations
    result.rate = operations / seconds
    result.latency_p50_ms = report["latency_p50_us"] / 1000
    result.latency_p99_ms = report["latency_p99_us"] / 1000
    result.server_cpu_us_per_op = 1e6 * cpu.server / max(1, operations)
    result.client_wakeups_per_op = cpu.client_wakeups / max(1, operations)
    result.server_cpu_percent = 100 * cpu.server / seconds
    result.client_cpu_percent = 100 * cpu.wrk / seconds
    other_server, other_client = cpu.server_cpu_busy - cpu.server, cpu.client_cpu_busy - cpu.wrk
    result.other_on_server_cpu_percent = max(0.0, 100 * other_server / seconds)
    result.other_on_client_cpu_percent = max(0.0, 100 * other_client / seconds)
    if result.errors:
        result.status = "errors"
        result.notes.append(f"{result.errors} errors")
    return result


def hyper_asgi_available() -> bool:
    """Whether PYTHON has hyper_util.asgi with its serve() (the run command's engine)."""
    check = "import hyper_util.asgi as a, sys; sys.exit(0 if hasattr(a, 'serve') else 1)"
    done = subprocess.run([PYTHON, "-c", check], capture_output=True, timeout=60, check=False)
    return done.returncode == 0


def measure(server: AsgiServer, args: argparse.Namespace) -> list[Result]:
    """Start one server, run its scenarios, stop it; never raises BenchError."""
    scenarios = [s for s in args.scenarios if s in server.scenarios]
    if server.is_hyper and not hyper_asgi_available():
        return [Result(server.name, s, "failed", [HYPER_MISSING]) for s in scenarios]
    missing = missing_module(server.requires)
    if missing is not None:
        hint = f" ({server.install_hint})" if server.install_hint else ""
        note = f"{missing} is not installed{hint}"
        return [Result(server.name, s, "skipped", [note]) for s in scenarios]
    results = []
    port = free_port()
    with server_log(server.name) as log:
        proc = start_server(
            [*pinned(args.server_cpu, args.nice), *server.command(port, args.loop)], log
        )
        try:
            wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
            for scenario in scenarios:
                if args.idle_wait:
                    wait_for_idle((args.server_cpu, args.client_cpu), args.idle_wait)
                try:
                    result = load(proc, port, scenario, args)
                except BenchError as exc:
                    result = Result(server.name, scenario, "failed", [str(exc)])
                result.server = server.name
                results.append(result)
        except BenchError as exc:
            results = [Result(server.name, s, "failed", [str(exc)]) for s in scenarios]
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


# --- report -------------------------------------------------------------------


def median(rounds: list[Result]) -> Result:
    measured = sorted((r for r in rounds if r.status in ("ok", "errors")), key=lambda r: r.rate)
    return measured[(len(measured) - 1) // 2] if measured else rounds[-1]


def print_report(table: dict[tuple[str, str], list[Result]], args: argparse.Namespace) -> None:
    for scenario in args.scenarios:
        unit = "msg/s" if scenario == "ws" else "req/s"
        rows = [(name, rs) for (name, s), rs in table.items() if s == scenario]
        if not rows:
            continue
        print(f"\n{scenario} ({unit}, --loop {args.loop})")
        header = (
            f"{'server':<19} {unit:>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
            f"{'us CPU/op':>9} {'srv CPU':>7} {'other':>5} {'cli CPU':>7} {'other':>5} "
            f"{'wake/op':>7}  note"
        )
        print(header)
        print("-" * len(header))
        best: dict[str, Result] = {}
        for name, rounds in rows:
            r = median(rounds)
            if r.status not in ("ok", "errors"):
                print(f"{name:<19} {r.status.upper():>8}  {'; '.join(r.notes)}")
                continue
            best[name] = r
            notes = list(r.notes)
            rates = [x.rate for x in rounds if x.status in ("ok", "errors")]
            if len(rates) > 1:
                notes.insert(0, f"rounds {min(rates):.0f}..{max(rates):.0f}")
            print(
                f"{name:<19} {r.rate:>8.0f} {r.latency_p50_ms:>7.2f} {r.latency_p99_ms:>7.2f} "
                f"{r.errors:>6} {r.server_cpu_us_per_op:>9.1f} {r.server_cpu_percent:>6.0f}% "
                f"{r.other_on_server_cpu_percent:>4.0f}% {r.client_cpu_percent:>6.0f}% "
                f"{r.other_on_client_cpu_percent:>4.0f}% {r.client_wakeups_per_op:>7.3f}  "
                f"{'; '.join(notes)}"
            )
        mine = best.get("hyper")
        if mine is None:
            continue
        print("hyper against each peer: rate ratio (server CPU per operation ratio)")
        for name, peer in best.items():
            if name == "hyper":
                continue
            # hyper-trio is measured against hyper (trio against asyncio).
            top, bottom, label = (
                (peer, mine, "hyper-trio/hyper")
                if name == "hyper-trio"
                else (mine, peer, f"hyper/{name}")
            )
            ratio = top.rate / bottom.rate
            cpu = bottom.server_cpu_us_per_op / max(1e-9, top.server_cpu_us_per_op)
            target = TARGETS.get(scenario, {}).get(name)
            verdict = ""
            if target is not None:
                verdict = f"  target >= {target}x: {'met' if ratio >= target else 'NOT met'}"
            print(f"  {label} = {ratio:.2f}x ({cpu:.2f}x){verdict}")
        trio, trio_base = best.get("hyper-trio"), best.get("hyper-trio-base")
        if trio is not None and trio_base is not None:
            ratio = trio.rate / trio_base.rate
            cpu = trio_base.server_cpu_us_per_op / max(1e-9, trio.server_cpu_us_per_op)
            print(f"  hyper-trio/hyper-trio-base = {ratio:.2f}x ({cpu:.2f}x)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SERVERS]
    parser = argparse.ArgumentParser(
        description="One ASGI app on hyper, uvicorn, hypercorn and granian: HTTP and WebSocket.",
        epilog="servers: " + ", ".join(names) + "; scenarios: " + ", ".join(SCENARIOS),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--only", default="", help="comma-separated server names")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=1, help="run the list N times, report median")
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before (0: none)")
    parser.add_argument("--connections", type=int, default=50, help="wrk keep-alive connections")
    parser.add_argument("--ws-connections", type=int, default=20, help="WebSocket connections")
    parser.add_argument("--ws-size", type=int, default=32, help="WebSocket message bytes")
    parser.add_argument("--post-size", type=int, default=16384, help="POST body bytes")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU the servers are pinned to")
    parser.add_argument("--client-cpu", type=int, default=0, help="CPU the load runs on")
    parser.add_argument(
        "--idle-wait", type=float, default=5.0, help="seconds to wait for idle CPUs before a load"
    )
    parser.add_argument("--nice", type=int, default=0, help="niceness of servers and load")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of this repository (e.g. `git archive main` unpacked) to compare "
        "against: adds hyper-base (and hyper-trio-base) rows running its hyper-core and "
        "hyper-util sources, in the same rounds",
    )
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    args.servers = [s for s in SERVERS if s.name in wanted]
    if args.baseline is not None:
        args.servers += [_baseline(s, args.baseline) for s in list(args.servers) if s.is_hyper]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if bad := sorted(set(args.scenarios) - set(SCENARIOS)):
        parser.error(f"unknown scenario(s) {', '.join(bad)}; choose from {', '.join(SCENARIOS)}")
    if args.duration < 1 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration, --connections and --rounds must be >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_tools("wrk", "taskset")
    check_cpus(args.server_cpu, args.client_cpu)
    stop_on_sigterm()
    started = datetime.datetime.now(datetime.UTC)
    print(banner(f"--loop {args.loop}"))
    print(
        f"servers pinned to CPU {args.server_cpu}, load (wrk -t1 -c{args.connections}; "
        f"{args.ws_connections} WebSocket connections) to CPU {args.client_cpu}; "
        f"{args.duration} s measured after {args.warmup} s warm-up; {args.rounds} round(s)"
    )
    table: dict[tuple[str, str], list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-asgi-") as scripts:
        args.scripts = {s: scenario_script(s, args, scripts) for s in HTTP_SCENARIOS}
        for number in range(1, args.rounds + 1):
            for server in args.servers:
                if not server.scenarios & set(args.scenarios):
                    continue
                label = f"[round {number}/{args.rounds}] " if args.rounds > 1 else ""
                print(f"{label}{server.name}: {server.description} ...", flush=True)
                for result in measure(server, args):
                    table.setdefault((server.name, result.scenario), []).append(result)
                    if result.status in ("ok", "errors"):
                        shown = f"{result.rate:.0f}/s, {result.server_cpu_us_per_op:.0f} us CPU"
                    else:
                        shown = f"{result.status}: {result.notes[0] if result.notes else ''}"
                    print(f"    {result.scenario}: {shown}", flush=True)
    print_report(table, args)
    if args.json:
        document = {
            "date": started.isoformat(timespec="seconds"),
            "loop": args.loop,
            "results": {f"{n}/{s}": [asdict(r) for r in rs] for (n, s), rs in table.items()},
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
