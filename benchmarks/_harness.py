"""What every benchmark here shares: processes, pinning, CPU accounting, wrk, nginx.

What belongs here: starting a server on a free port, waiting until it
accepts, stopping it by its process group, reading CPU time from ``/proc``,
running wrk with the reporting hook, starting nginx for the client
benchmarks, raising the open-file limit, and the one line that says which
build of hyper-core (compiled or pure Python) a run measured. The scripts
(``run.py``, ``h2_server.py``, ``asgi.py``, ``memory.py``, the client
benchmarks) hold only their workloads and reports.

Strategy: every wait has a bound, every process this harness starts is
stopped by its PID (a server is started as a session leader, so its PID is
also the id of a process group holding it and whatever it forked, and of
nothing else), and nothing is ever stopped by name.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
LUA_SCRIPT = HERE / "wrk_report.lua"
PYTHON = sys.executable
HOST = "127.0.0.1"
NGINX = "/usr/sbin/nginx"

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
# Seconds for a probe's socket operations.
PROBE_TIMEOUT = 5.0
# Before a load: seconds of sampling, and the busy share of each pinned CPU
# below which the machine counts as idle (see wait_for_idle).
IDLE_SAMPLE = 0.5
IDLE_THRESHOLD = 0.15
# Lines of a failed server's log shown in a report.
LOG_TAIL_LINES = 15


class BenchError(Exception):
    """A server could not be measured; the message says why."""


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def stop_on_sigterm() -> None:
    """Turn SIGTERM (nox, a CI timeout) into SystemExit, so ``finally`` blocks stop servers."""

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def check_cpus(server_cpu: int, client_cpu: int) -> None:
    usable = os.sched_getaffinity(0)
    if server_cpu == client_cpu or not {server_cpu, client_cpu} <= usable:
        fail(f"need two distinct usable CPUs for server and client; usable: {sorted(usable)}")


def require_tools(*tools: str) -> None:
    for tool in tools:
        if not any(os.access(Path(d) / tool, os.X_OK) for d in os.environ["PATH"].split(":")):
            fail(f"{tool} is not on PATH (Debian: apt-get install wrk nghttp2-client util-linux)")


# --- which build, which machine ------------------------------------------------


def hyper_build(python: str = PYTHON) -> str:
    """``compiled`` or ``pure``: which hyper-core ``python`` imports (mypyc extensions or .py)."""
    check = "import hyper_core.proto.h1._parse as m; print(m.__file__)"
    done = subprocess.run([python, "-c", check], capture_output=True, timeout=60, check=False)
    path = done.stdout.decode().strip()
    if not path:
        return "missing"
    return "pure" if path.endswith(".py") else "compiled"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def banner(extra: str = "", python: str = PYTHON) -> str:
    """One line naming the date, the machine, Python and hyper-core's build (of ``python``)."""
    import datetime

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    line = (
        f"{now}  {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"hyper-core {hyper_build(python)}"
    )
    return f"{line}{', ' + extra if extra else ''}"


# --- processes -------------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
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


def pinned(cpu: int, nice: int = 0) -> list[str]:
    """The command prefix that runs a program on one CPU, at a niceness if not 0."""
    prefix = ["nice", "-n", str(nice)] if nice else []
    return [*prefix, "taskset", "-c", str(cpu)]


def add_cpu_arguments(parser: argparse.ArgumentParser) -> None:
    """``--server-cpu`` (1) and ``--client-cpu`` (0): a client benchmark's pinning."""
    parser.add_argument("--server-cpu", type=int, default=1, help="CPU the server is pinned to")
    parser.add_argument("--client-cpu", type=int, default=0, help="CPU the clients run on")


def pin_clients(cpu: int) -> None:
    """Pin this process (the clients under test) to ``cpu``.

    As run.py pins server and wrk, so that the clients and nginx each have
    a core of their own in every round rather than wherever the scheduler
    put them. It fixes placement, not the host's noise.
    """
    os.sched_setaffinity(0, {cpu})


def start_server(
    command: Sequence[str],
    log: IO[bytes],
    *,
    env: dict[str, str] | None = None,
    nofile: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server as the leader of a new session, its output to ``log``.

    ``nofile`` raises the child's open-file limit first, as far as allowed.
    """

    def raise_limit() -> None:
        if nofile is not None:
            raise_nofile(nofile)

    return subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=HERE.parent,
        env={**os.environ, **(env or {})},
        preexec_fn=raise_limit if nofile is not None else None,
    )


@contextlib.contextmanager
def server_log(name: str) -> Iterator[IO[bytes]]:
    with tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log") as log:
        yield log


def wait_until_accepting(
    proc: subprocess.Popen[bytes], port: int, deadline: float, host: str = HOST
) -> None:
    """Return once ``port`` accepts a connection; raise if the server dies or is late."""
    while True:
        code = proc.poll()
        if code is not None:
            raise BenchError(f"server exited with code {code} before accepting connections")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"server did not accept connections within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started by ``start_server``: SIGTERM, then SIGKILL, by its process group."""
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


def log_tail(path: str | Path) -> tuple[int, str]:
    """How many lines a server wrote to its log, and the last few of them."""
    lines = Path(path).read_text(errors="replace").splitlines()
    return len(lines), "\n".join(lines[-LOG_TAIL_LINES:])


def raise_nofile(limit: int) -> int:
    """Raise this process's open-file limit to ``limit`` if allowed; return the soft limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with contextlib.suppress(ValueError, OSError):  # not root: keep what is allowed
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(hard, limit)))
        return limit
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    """Resident memory of one process, KiB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for PID {pid}")


# --- CPU accounting --------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # Fields after the command name, which is in parentheses and may hold spaces.
    return stat[stat.rindex(b")") + 2 :].split()


def group_cpu_seconds(pgid: int) -> float:
    """User plus system CPU seconds used so far by the live processes of a process group."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry.name)
        except OSError:  # exited meanwhile
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds one live process has used."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def wakeup_interrupts(cpu: int) -> int:
    """Interrupts that woke ``cpu`` from another CPU so far (``CAL`` + ``RES`` in /proc/interrupts).

    Per operation, this is how often the load generator's CPU had gone idle
    and had to be woken by the server's writes: on a virtual machine whose
    idle CPUs halt at once, each one costs the writer a hypervisor exit.
    """
    total = 0
    with open("/proc/interrupts") as f:
        ncpu = len(f.readline().split())
        for line in f:
            fields = line.split()
            if fields and fields[0] in ("CAL:", "RES:") and len(fields) > ncpu:
                total += int(fields[1 + cpu])
    return total


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
    """CPU seconds used so far by the server, by the load generator, and on each pinned CPU."""

    server: float
    wrk: float
    server_cpu_busy: float
    client_cpu_busy: float
    client_wakeups: int = 0

    @classmethod
    def take(cls, pgid: int, server_cpu: int, client_cpu: int) -> CpuSample:
        return cls(
            group_cpu_seconds(pgid),
            children_cpu_seconds(),
            cpu_busy_seconds(server_cpu),
            cpu_busy_seconds(client_cpu),
            wakeup_interrupts(client_cpu),
        )

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            self.server - other.server,
            self.wrk - other.wrk,
            self.server_cpu_busy - other.server_cpu_busy,
            self.client_cpu_busy - other.client_cpu_busy,
            self.client_wakeups - other.client_wakeups,
        )


# --- wrk ---------------------------------------------------------------------------


def wrk_script(directory: str | Path, name: str, method: str = "GET", body_size: int = 0) -> Path:
    """A wrk Lua script: the request (``method``, ``body_size`` bytes), then the report hook."""
    prefix = ""
    if method != "GET" or body_size:
        prefix = f'wrk.method = "{method}"\n'
    if body_size:
        prefix += (
            f'wrk.body = string.rep("x", {body_size})\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        )
    script = Path(directory) / f"{name}.lua"
    script.write_text(prefix + LUA_SCRIPT.read_text())
    return script


def run_wrk(
    url: str,
    seconds: int,
    *,
    connections: int,
    cpu: int,
    nice: int = 0,
    script: Path = LUA_SCRIPT,
) -> dict[str, float]:
    """Load ``url`` with one wrk thread for ``seconds``; return wrk_report.lua's numbers."""
    command = [
        *pinned(cpu, nice), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        f"--timeout={WRK_REQUEST_TIMEOUT}s", "-s", str(script), url,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=seconds + WRK_GRACE, check=False
        )
    except subprocess.TimeoutExpired as exc:  # run() has killed wrk already
        raise BenchError(f"wrk did not finish within {seconds + WRK_GRACE:.0f} s") from exc
    out = done.stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            report: dict[str, float] = json.loads(line.removeprefix("WRK_JSON "))
            return report
    err = done.stderr.decode(errors="replace")
    raise BenchError(f"wrk exited {done.returncode} without a report: {out.strip()} {err.strip()}")


# --- nginx (the client benchmarks' peer) ---------------------------------------------

NGINX_COMMON = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path {tmp}/bodies;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    {http}
}}
"""


def start_nginx(
    tmp: Path, http_block: str, attempts: int = 5, cpu: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Run nginx in the foreground from ``tmp`` with ``http_block`` (``{port}``, ``{tmp}`` filled).

    ``cpu``: pin nginx to that CPU. Returns the process (stop it with
    :func:`stop_nginx`) and the port it answers on.
    """
    proc, port, _ = start_nginx_two_ports(tmp, http_block, attempts, cpu)
    return proc, port


def start_nginx_two_ports(
    tmp: Path, http_block: str, attempts: int = 5, cpu: int | None = None
) -> tuple[subprocess.Popen[bytes], int, int]:
    """As :func:`start_nginx`, with a second free port for ``{h2_port}``; returns both."""
    if not os.access(NGINX, os.X_OK):
        fail(f"nginx not found at {NGINX}: install Debian's nginx-light")
    (tmp / "bodies").mkdir(exist_ok=True)
    for _ in range(attempts):
        port, second = free_port(), free_port()
        conf = tmp / "nginx.conf"
        http = http_block.format(tmp=tmp, port=port, h2_port=second)
        conf.write_text(NGINX_COMMON.format(tmp=tmp, http=http))
        proc = subprocess.Popen(
            [*([] if cpu is None else pinned(cpu)), NGINX, "-c", str(conf), "-p", str(tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return proc, port, second
            except OSError:
                time.sleep(0.05)
        stop_nginx(proc)  # the port was taken in between, or it is slow: try another
    log = (
        (tmp / "error.log").read_text(errors="replace")[-2000:]
        if (tmp / "error.log").exists()
        else ""
    )
    fail(f"nginx could not start in {attempts} attempts: {log}")


def stop_nginx(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
