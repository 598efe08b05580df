"""``python -m hyper_util run module:app``, as a user runs it: a real process.

What belongs here: the ``run`` command end to end: importing the app
(``--app-dir``, ``--factory``, the errors), every ``--loop``, ``--uds``,
``--root-path``, ``--http 2``, TLS, a failed startup (exit 3 and the app's
message), SIGTERM (exit 0 after a graceful shutdown), and ``--help``
naming every option. Each server listens on 127.0.0.1 port 0 (or a Unix
socket in a temporary folder) and is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

APP = textwrap.dedent(
    """
    import json
    import os

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            message = await receive()
            scope["state"]["started"] = True
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = json.dumps({
            "root_path": scope["root_path"],
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "state": scope.get("state"),
            "client": scope["client"],
            "pid": os.getpid(),
        }).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    def create_app():
        return app

    async def failing(scope, receive, send):
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP)
    return tmp_path


@contextmanager
def run(app_dir: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``run``; yield the process and the address from its startup line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyper_util", "run", "--app-dir", str(app_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        address = ""
        for line in proc.stderr:
            match = re.search(r"listening on (?:https?://)?(\S+)", line)
            if match:
                address = match.group(1)
                break
        assert address, f"no startup line; exit {proc.poll()}"
        yield proc, address
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "trio", "auto"])
def test_serves_the_app_on_every_loop(app_dir: Path, loop: str) -> None:
    with run(app_dir, "myapp:app", "--port", "0", "--loop", loop, "--root-path", "/api") as (
        proc,
        address,
    ):
        body = httpx.get(f"http://{address}/", timeout=10).json()
        assert body.pop("client")[0] == "127.0.0.1"
        assert body.pop("pid") == proc.pid
        assert body == {
            "root_path": "/api",
            "http_version": "1.1",
            "scheme": "http",
            "state": {"started": True},
        }
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            assert client.get(f"http://{address}/").json()["http_version"] == "2"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_factory_and_http2_only(app_dir: Path) -> None:
    with (
        run(app_dir, "myapp:create_app", "--factory", "--port", "0", "--http", "2") as (
            _,
            address,
        ),
        httpx.Client(http1=False, http2=True, timeout=10) as client,
    ):
        assert client.get(f"http://{address}/").json()["http_version"] == "2"


def test_unix_socket(app_dir: Path) -> None:
    path = app_dir / "s.sock"
    with run(app_dir, "myapp:app", "--uds", str(path), "--no-access-log"):
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport, timeout=10) as client:
            assert client.get("http://localhost/").json()["scheme"] == "http"


def test_https_with_certfile(app_dir: Path) -> None:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = app_dir / "c.pem", app_dir / "k.pem", app_dir / "ca.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(cert)
    leaf.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(ca_file)
    args = ("--port", "0", "--certfile", str(cert), "--keyfile", str(key))
    with run(app_dir, "myapp:app", *args) as (_, address):
        context = ssl.create_default_context(cafile=str(ca_file))
        with httpx.Client(verify=context, http2=True, timeout=10) as client:
            response = client.get(f"https://{address}/")
            assert response.http_version == "HTTP/2"
            assert response.json()["scheme"] == "https"


def test_failed_startup_exits_3_with_the_apps_message(app_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyper_util", "run", "--app-dir", str(app_dir), "myapp:failing"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert "application startup failed: database unreachable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing:app", "no module named 'missing'"),
        ("myapp:nothing", "module 'myapp' has no attribute 'nothing'"),
        ("myapp", "APP must be 'module:attribute'"),
        ("json:__doc__", "is not callable"),
    ],
)
def test_import_errors_are_one_clear_line(app_dir: Path, spec: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyper_util", "run", "--app-dir", str(app_dir), spec],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyper_util", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0
    for option in (
        "--host", "--port", "--uds", "--fd", "--http", "--loop", "--workers", "--reload",
        "--factory", "--app-dir", "--root-path", "--lifespan", "--proxy-headers",
        "--forwarded-allow-ips", "--log-level", "--access-log", "--no-access-log",
        "--timeout-keep-alive", "--timeout-graceful-shutdown", "--limit-concurrency",
        "--limit-max-requests", "--certfile", "--keyfile", "--ca-certs", "--ws-max-size",
        "--ws-ping-interval",
    ):  # fmt: skip
        pattern = rf"^\s+(-\S+, )*{re.escape(option)}\b"
        assert re.search(pattern, result.stdout, re.MULTILINE), option


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("hyper-util")
    result = subprocess.run([script, "run", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "module:attribute" in result.stdout
    assert json is not None


def test_workers_serve_from_worker_processes(app_dir: Path) -> None:
    args = ("myapp:app", "--port", "0", "--workers", "2", "--no-access-log")
    with run(app_dir, *args) as (proc, address):
        pids = set()
        for _ in range(20):
            with httpx.Client(timeout=10) as client:  # a new connection each time
                body = client.get(f"http://{address}/").json()
            assert body["state"] == {"started": True}
            pids.add(body["pid"])
        assert proc.pid not in pids  # the supervisor serves nothing itself
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_proxy_headers_from_a_trusted_peer_only(app_dir: Path) -> None:
    forwarded = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    args = ("myapp:app", "--port", "0", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1")
    with run(app_dir, *args) as (_, address):
        body = httpx.get(f"http://{address}/", headers=forwarded, timeout=10).json()
        assert body["client"] == ["203.0.113.7", 0]
        assert body["scheme"] == "https"
    args = ("myapp:app", "--port", "0", "--proxy-headers", "--forwarded-allow-ips", "10.0.0.1")
    with run(app_dir, *args) as (_, address):
        body = httpx.get(f"http://{address}/", headers=forwarded, timeout=10).json()
        assert body["client"][0] == "127.0.0.1"
        assert body["scheme"] == "http"
