"""The gunicorn worker class: ``gunicorn -k hyper_util.asgi.gunicorn.HyperWorker module:app``.

What belongs here: gunicorn (a test dependency) running an app with two
workers of ours, on asyncio and on trio: both protocols served, lifespan
state in each worker, SIGTERM stops everything with exit status 0, and a
failed startup stops gunicorn instead of respawning forever.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

APP = textwrap.dedent(
    """
    import os

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["pid"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = ("%s %s" % (scope["state"]["pid"], scope["http_version"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def failing(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no config"})
    """
)


def _gunicorn(tmp_path: Path, worker: str, spec: str) -> subprocess.Popen[str]:
    (tmp_path / "gapp.py").write_text(APP)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            f"hyper_util.asgi.gunicorn.{worker}",
            "-w",
            "2",
            "-b",
            "127.0.0.1:0",
            "--chdir",
            str(tmp_path),
            "--graceful-timeout",
            "5",
            spec,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("worker", ["HyperWorker", "HyperTrioWorker"])
def test_two_workers_serve_both_protocols_and_stop_on_sigterm(tmp_path: Path, worker: str) -> None:
    proc = _gunicorn(tmp_path, worker, "gapp:app")
    assert proc.stderr is not None
    try:
        address = ""
        booted = 0
        for line in proc.stderr:
            match = re.search(r"Listening at: http://(\S+)", line)
            if match:
                address = match.group(1)
            booted += "Booting worker" in line
            if address and booted == 2:
                break
        assert address, f"gunicorn did not start (exit {proc.poll()})"
        pids = set()
        for _ in range(20):
            with httpx.Client(timeout=10) as client:
                pid, version = client.get(f"http://{address}/").text.split()
            assert version == "1.1"
            pids.add(pid)
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            assert client.get(f"http://{address}/").text.split()[1] == "2"
        assert pids  # each answer came from a worker's own lifespan state
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_failed_startup_stops_gunicorn(tmp_path: Path) -> None:
    proc = _gunicorn(tmp_path, "HyperWorker", "gapp:failing")
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "application startup failed: no config" in stderr
