"""Real peers for interop tests: nginx, hypercorn and ``python -m hyper_util serve``.

What belongs here: context managers that start a peer on 127.0.0.1 and a
free port, wait (bounded) until it answers, yield its port, and stop it by
PID: :func:`run_nginx` (Debian's ``/usr/sbin/nginx`` in the foreground,
from a config written to a temporary folder), :func:`run_hypercorn` (an
ASGI app given as source, on a socket bound here and passed as ``fd://``),
:func:`run_serve` (our own command line, which prints its address).

A missing peer fails the test with what to install, never skips it.
"""

from __future__ import annotations

import importlib.util
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NGINX = "/usr/sbin/nginx"
STARTUP_TIMEOUT = 30.0  # seconds a peer gets to answer its first request

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/bodies;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{h2_port} http2;
        root {tmp}/www;
        add_header x-connection $connection always;
        {locations}
    }}
}}
"""


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_answer(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"the peer exited with {proc.returncode} at startup: {text[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                if probe.recv(5) == b"HTTP/":
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the peer did not answer within {STARTUP_TIMEOUT} s")


@contextmanager
def run_nginx(tmp: Path, locations: str = "") -> Iterator[tuple[int, int]]:
    """nginx serving ``tmp/www``; yields (HTTP/1.1 port, h2c prior-knowledge port)."""
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"nginx not found at {NGINX}: install Debian's nginx-light package")
    (tmp / "www").mkdir(exist_ok=True)
    (tmp / "bodies").mkdir(exist_ok=True)
    for attempt in range(5):
        port, h2_port = free_port(), free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, h2_port=h2_port, locations=locations))
        stderr_path = tmp / f"stderr-{attempt}.log"
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [NGINX, "-c", str(conf), "-p", str(tmp)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            time.sleep(0.05)
            if proc.poll() is not None and "in use" in stderr_path.read_text(errors="replace"):
                continue  # another process took the port in between
            wait_for_answer(proc, port, tmp / "error.log")
            yield port, h2_port
            return
        finally:
            stop(proc)
    pytest.fail("nginx could not bind free ports in 5 attempts")


@contextmanager
def run_hypercorn(tmp: Path, app_source: str, module: str) -> Iterator[int]:
    """hypercorn serving ``module:app`` (written from ``app_source``): HTTP/1.1 and h2c."""
    if importlib.util.find_spec("hypercorn") is None:
        pytest.fail("hypercorn is not installed: it is a test dependency (uv sync)")
    (tmp / f"{module}.py").write_text(app_source)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    log = tmp / "hypercorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hypercorn",
                "--bind",
                f"fd://{fd}",
                "--log-level",
                "warning",
                f"{module}:app",
            ],
            cwd=tmp,
            pass_fds=[fd],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    listener.close()
    try:
        wait_for_answer(proc, port, log)
        yield port
    finally:
        stop(proc)


@contextmanager
def run_serve(*args: str) -> Iterator[str]:
    """``python -m hyper_util serve`` with ``args``; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyper_util", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT)
        assert ready, "the server did not print its address in time"
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on "), line
        yield line.split()[2].rstrip("/")
    finally:
        stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()
