"""``ProxyHeadersMiddleware`` in front of a real ASGI server, over TCP, a Unix socket and WebSocket.

What belongs here: the middleware under a server no one here wrote
(uvicorn, its own proxy handling off: ``--no-proxy-headers``), reached by
httpx and the ``websockets`` client, with the allow list from
``$FORWARDED_ALLOW_IPS``. ``hyper_util.asgi`` is not on main yet when this
is written; once it is, the same checks belong on ``python -m hyper_util run
--proxy-headers`` too (see the lead's note on issue 10).

Strategy: uvicorn runs as a process (``sys.executable -m uvicorn``) on
127.0.0.1 port 0 or a Unix socket; the test reads the bound address from
its log, and kills it by PID in a ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect, unix_connect

HERE = Path(__file__).parent
STARTUP_TIMEOUT = 30.0


@contextlib.contextmanager
def uvicorn(allow: str, *where: str) -> Iterator[str]:
    """Run proxy_app under uvicorn; yield the ``Uvicorn running on ...`` address."""
    command = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "proxy_app:app",
        "--no-proxy-headers", "--lifespan", "off", "--no-access-log", *where,
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        env={**os.environ, "FORWARDED_ALLOW_IPS": allow},
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            found = re.search(r"running on (?:unix socket )?(\S+)", line)
            if found:
                yield found.group(1)
                return
            assert line, "uvicorn exited before it listened"
        raise AssertionError("uvicorn did not listen in time")
    finally:
        proc.kill()
        proc.wait(STARTUP_TIMEOUT)
        if proc.stderr is not None:
            proc.stderr.close()


def seen(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200
    return json.loads(response.content)  # type: ignore[no-any-return]


def test_tcp_from_a_trusted_and_an_untrusted_peer() -> None:
    headers = {
        "x-forwarded-for": "6.6.6.6, 203.0.113.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "example.com",
    }
    with uvicorn("127.0.0.1", "--host", "127.0.0.1", "--port", "0") as url:
        got = seen(httpx.get(url, headers=headers))
        assert got == {"client": ["203.0.113.7", 0], "scheme": "https", "host": ["example.com"]}
    with uvicorn("192.0.2.1", "--host", "127.0.0.1", "--port", "0") as url:
        got = seen(httpx.get(url, headers=headers))
        assert got["client"][0] == "127.0.0.1"
        assert got["scheme"] == "http"
        assert got["host"] == [url.removeprefix("http://")]


def test_unix_socket_peer_trusted_with_unix(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    headers = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
    with uvicorn("unix:", "--uds", path):
        with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
            got = seen(client.get("http://localhost/", headers=headers))
        assert got["client"] == ["203.0.113.7", 0]
        assert got["scheme"] == "https"
    with uvicorn("127.0.0.1", "--uds", path):
        with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
            got = seen(client.get("http://localhost/", headers=headers))
        assert got["client"] is None
        assert got["scheme"] == "http"


@pytest.mark.parametrize("ws", ["websockets", "wsproto"])
def test_websocket_scheme_becomes_wss(ws: str, tmp_path: Path) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    tcp = ("--host", "127.0.0.1", "--port", "0", "--ws", ws)
    with (
        uvicorn("127.0.0.1", *tcp) as url,
        connect(url.replace("http", "ws", 1), additional_headers=headers) as socket,
    ):
        got = json.loads(socket.recv(timeout=10))
    assert got["client"] == ["203.0.113.7", 0]
    assert got["scheme"] == "wss"
    path = str(tmp_path / "ws.sock")
    with (
        uvicorn("unix:", "--uds", path, "--ws", ws),
        unix_connect(path, "ws://localhost/", additional_headers=headers) as socket,
    ):
        got = json.loads(socket.recv(timeout=10))
    assert got["client"] == ["203.0.113.7", 0]
    assert got["scheme"] == "wss"
