"""``run_workers``: real supervisor and worker processes on one shared socket.

What belongs here: black-box tests of :mod:`hyper_util.server`'s
supervisor through ``supervised_app.py`` (started with ``sys.executable``
in a session of its own, so the test can signal the supervisor, or the
whole group as a terminal's Ctrl-C does): both workers serve, a killed
worker is replaced, SIGTERM and SIGINT lose no request in flight, SIGHUP
and ``--reload`` replace workers without failing a request, a worker that
fails to start stops the supervisor or backs off, workers follow a dead
supervisor, ``limit_requests`` retires a worker after N requests.

Strategy: requests are plain blocking HTTP/1.1 over ``socket`` (one
connection each, ``Connection: close``) from the test's own thread or a
thread pool, each with a timeout. Responses carry the serving worker's
PID. To see two workers deterministically, one request blocks its
worker's event loop (``/block``), so the next connection can only be
accepted by the other one. Every process is killed by its group id (the
supervisor's PID, a session the test created) in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

APP = Path(__file__).with_name("supervised_app.py")
STARTUP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 10.0
EXIT_TIMEOUT = 20.0

pytestmark = pytest.mark.timeout(120)


@dataclass
class Supervised:
    proc: subprocess.Popen[bytes]
    address: str
    log: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # when each log line arrived

    def log_text(self) -> str:
        return "\n".join(self.log)

    def wait_exit(self) -> int:
        return self.proc.wait(EXIT_TIMEOUT)

    def wait_for_log(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                match = re.search(pattern, line)
                if match:
                    return match
            time.sleep(0.05)
        raise AssertionError(f"no log line matched {pattern!r}:\n{self.log_text()}")


@contextlib.contextmanager
def supervised(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[Supervised]:
    proc = subprocess.Popen(
        [sys.executable, str(APP), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd=cwd,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    log: list[str] = []
    times: list[float] = []
    stderr = proc.stderr

    def collect() -> None:
        # Appended line by line, as it comes: tests poll the log while it grows.
        for line in stderr:
            times.append(time.monotonic())
            log.append(line.decode(errors="replace").rstrip())

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on "), line
        yield Supervised(proc, line.split()[2], log, times)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(EXIT_TIMEOUT)
        reader.join(EXIT_TIMEOUT)
        proc.stdout.close()
        stderr.close()


def connect(address: str) -> socket.socket:
    if address.startswith("/"):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(REQUEST_TIMEOUT)
        sock.connect(address)
        return sock
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT)


def get(address: str, target: str = "/") -> int:
    """One request on a new connection; the PID in the 200 response."""
    with connect(address) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), data
    return int(body)


def wait_serving(address: str) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            return get(address)
        except (OSError, AssertionError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def two_workers(address: str) -> set[int]:
    """The PIDs of two different workers: one blocked, the other answering meanwhile."""
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(get, address, "/block?1.5")
        time.sleep(0.5)  # the blocking request is being served
        other = get(address)
        return {blocked.result(REQUEST_TIMEOUT), other}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(params=["asyncio", "trio", "uvloop"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def test_two_workers_serve_and_a_killed_one_is_replaced(backend: str) -> None:
    with supervised("--workers", "2", "--backend", backend) as server:
        wait_serving(server.address)
        first = two_workers(server.address)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log(rf"worker {victim} was killed by SIGKILL; starting a new one")
        # The survivor answers while the replacement starts; then both serve.
        served = {get(server.address) for _ in range(5)}
        assert victim not in served
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            now = two_workers(server.address)
            if len(now) == 2 and victim not in now and now != first:
                break
            assert time.monotonic() < deadline, now
        assert len(now - first) == 1  # one survivor, one replacement
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.wait_exit() == 0


def test_sigterm_finishes_requests_in_flight(backend: str) -> None:
    graceful_stop(backend, "SIGTERM")


def test_sigint_to_the_group_finishes_requests_in_flight() -> None:
    graceful_stop("asyncio", "SIGINT")


def graceful_stop(backend: str, how: str) -> None:
    with supervised("--workers", "2", "--backend", backend) as server:
        wait_serving(server.address)
        pids = two_workers(server.address)
        with ThreadPoolExecutor(6) as pool:
            slow = [pool.submit(get, server.address, "/slow?1.5") for _ in range(6)]
            time.sleep(0.7)  # all accepted and in the service
            if how == "SIGTERM":
                os.kill(server.proc.pid, signal.SIGTERM)
            else:  # Ctrl-C in a terminal: every process of the group gets SIGINT
                os.killpg(server.proc.pid, signal.SIGINT)
            answers = [future.result(REQUEST_TIMEOUT) for future in slow]
        assert set(answers) <= pids
        assert server.wait_exit() == 0
        for pid in pids:
            assert not alive(pid)
        assert "closing every connection now" not in server.log_text()
        with pytest.raises(ConnectionRefusedError):
            get(server.address)


def test_stop_kills_a_worker_that_outlives_the_timeout() -> None:
    args = ("--workers", "1", "--shutdown-timeout", "30", "--stop-timeout", "1")
    with supervised(*args) as server:
        wait_serving(server.address)
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(get, server.address, "/slow?20")
            time.sleep(0.5)
            started = time.monotonic()
            os.kill(server.proc.pid, signal.SIGTERM)
            assert server.wait_exit() == 0
            assert time.monotonic() - started < 5
            with pytest.raises((OSError, AssertionError, ValueError)):
                slow.result(REQUEST_TIMEOUT)
        server.wait_for_log(r"did not stop within 1 s; killing it")


def test_sighup_replaces_every_worker_without_failing_a_request() -> None:
    with supervised("--workers", "2") as server:
        wait_serving(server.address)
        old = two_workers(server.address)
        stop = threading.Event()
        answered: list[int] = []

        def load() -> None:
            while not stop.is_set():
                answered.append(get(server.address))

        with ThreadPoolExecutor(2) as pool:
            clients = [pool.submit(load) for _ in range(2)]
            time.sleep(0.3)
            os.kill(server.proc.pid, signal.SIGHUP)
            for pid in old:
                server.wait_for_log(rf"worker {pid} stopped: it exited with code 0")
            time.sleep(0.3)
            stop.set()
            for client in clients:
                client.result(REQUEST_TIMEOUT)  # raises if any request failed
        new = two_workers(server.address)
        assert len(new) == 2
        assert not new & old
        assert set(answered) & old
        assert set(answered) & new


def test_limit_requests_replaces_the_worker_and_loses_nothing() -> None:
    with supervised("--workers", "1", "--max-requests", "3") as server:
        wait_serving(server.address)  # request 1
        answers = [get(server.address) for _ in range(8)]
    # The probe and two more by the first worker, then three each by the next two.
    assert len(set(answers)) == 3
    assert [len({*answers[:2]}), len({*answers[2:5]}), len({*answers[5:8]})] == [1, 1, 1]


def test_startup_failure_stops_the_supervisor_with_status_3() -> None:
    with supervised("--workers", "2", "--fail", "startup") as server:
        assert server.wait_exit() == 3
        assert "could not start (it exited with code 3); stopping" in server.log_text()


def test_crash_loop_backs_off() -> None:
    with supervised("--workers", "1", "--fail", "crash") as server:
        server.wait_for_log(r"restarting in 0\.8 s")
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.wait_exit() == 0
    # 0.1 s after the first failed start, doubling after each: never a spin.
    delays = [float(d) for d in re.findall(r"restarting in ([\d.]+) s", server.log_text())]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8], server.log_text()
    # And each wait is kept: from "restarting in D s" to the next start.
    lines = list(zip(server.times, server.log, strict=True))
    for index, (when, line) in enumerate(lines):
        found = re.search(r"restarting in ([\d.]+) s", line)
        later = [t for t, text in lines[index:] if re.search(r"worker \d+ started", text)]
        if found and later:
            assert later[0] - when >= float(found[1]) - 0.05, server.log_text()


def test_workers_stop_when_the_supervisor_dies() -> None:
    with supervised("--workers", "2") as server:
        wait_serving(server.address)
        pids = two_workers(server.address)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(EXIT_TIMEOUT)
        deadline = time.monotonic() + EXIT_TIMEOUT
        while any(alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.1)


def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    with supervised("--workers", "2", "--uds", path) as server:
        assert server.address == path
        wait_serving(path)
        assert len(two_workers(path)) == 2
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.wait_exit() == 0
    assert not os.path.exists(path)


APP_VERSION = """\
from hyper_core.body import Full
from hyper_core.http import Response


async def service(request):
    return Response(200, body=Full(b"{version}"))
"""


def get_text(address: str) -> bytes:
    with connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def wait_for_text(address: str, text: bytes) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while (got := get_text(address)) != text:
        assert time.monotonic() < deadline, got
        time.sleep(0.1)


def test_reload_on_a_file_change(tmp_path: Path) -> None:
    module = tmp_path / "reload_app.py"
    module.write_text(APP_VERSION.format(version="1"))
    args = ("--workers", "1", "--reload", "--app-dir", str(tmp_path))
    # Bytecode written, as it is for most users, and each edit below keeps
    # the file's size and mtime (as a quick edit within the same second
    # does): a cached .pyc, checked by those two, would serve the old code.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    first = module.stat()

    def edit(version: str) -> None:
        module.write_text(APP_VERSION.format(version=version))
        os.utime(module, ns=(first.st_atime_ns, first.st_mtime_ns))

    with supervised(*args, env=env) as server:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            with contextlib.suppress(OSError):
                if get_text(server.address) == b"1":
                    break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        edit("2")
        wait_for_text(server.address, b"2")
        server.wait_for_log(r"reload_app\.py changed; reloading")
        # Broken code: the new worker fails, the old one keeps serving.
        module.write_text("this is not Python\n")
        server.wait_for_log(r"new worker \d+ exited with code 1 before it was ready")
        assert get_text(server.address) == b"2"
        edit("3")
        wait_for_text(server.address, b"3")
        # A change outside the .py files does not reload.
        reloads = server.log_text().count("changed; reloading")
        (tmp_path / "notes.txt").write_text("x")
        time.sleep(1.0)
        assert server.log_text().count("changed; reloading") == reloads
        os.kill(server.proc.pid, signal.SIGTERM)
        assert server.wait_exit() == 0
