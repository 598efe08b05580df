"""Starlette and FastAPI applications on hyper_util.asgi, over HTTP/1.1, h2c and TLS.

What belongs here: the checks a user of those frameworks would make: JSON
routes, form upload, streaming and file responses, background tasks,
lifespan state and a WebSocket echo, each over HTTP/1.1 and HTTP/2 (h2c and
TLS with ALPN), with httpx and curl as clients and ``websockets`` as the
WebSocket client, on every backend (asyncio, trio, uvloop).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets.sync.client
from asgi_apps import APPS, FILE_PATH
from asgi_helpers import TlsSetup, running

pytestmark = pytest.mark.anyio

FRAMEWORKS = sorted(APPS)
#: (label, httpx client options, serve options); "tls" is filled per test.
PROTOCOLS = ["h1", "h2c", "h1-tls", "h2-tls"]


def _client(protocol: str, tls: TlsSetup | None) -> httpx.AsyncClient:
    verify: Any = tls.client_context() if tls is not None else True
    if protocol == "h2c":
        return httpx.AsyncClient(http1=False, http2=True, timeout=10)
    return httpx.AsyncClient(http2=protocol == "h2-tls", verify=verify, timeout=10)


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_every_route(framework: str, protocol: str, tmp_path: Path) -> None:
    app = APPS[framework]
    tls = TlsSetup(tmp_path) if protocol.endswith("tls") else None
    expected_version = "2" if protocol.startswith("h2") else "1.1"
    async with running(app, tls=tls.hook if tls else None) as url, _client(protocol, tls) as client:
        response = await client.get(f"{url}/json", params={"name": "hyper"})
        assert response.status_code == 200
        assert response.http_version == ("HTTP/2" if expected_version == "2" else "HTTP/1.1")
        assert response.json() == {
            "name": "hyper",
            "greeting": "hello from lifespan",
            "http_version": expected_version,
            "scheme": "https" if tls else "http",
        }

        payload = bytes(range(256)) * 64  # 16 KiB
        response = await client.post(f"{url}/echo", content=payload)
        assert response.content == payload

        response = await client.post(
            f"{url}/form",
            data={"field": "value"},
            files={"file": ("a.txt", b"uploaded contents", "text/plain")},
        )
        assert response.json() == {"field": "value", "file": "uploaded contents", "size": 17}

        async with client.stream("GET", f"{url}/stream") as streamed:
            lines = [line async for line in streamed.aiter_lines()]
        assert lines == [f"line {i}" for i in range(5)]

        response = await client.get(f"{url}/file")
        assert response.content == FILE_PATH.read_bytes()
        assert response.headers["content-length"] == str(FILE_PATH.stat().st_size)

        marker = f"{framework}-{protocol}".encode()
        response = await client.post(f"{url}/background", content=marker)
        assert response.content == b"accepted"
        # The answer came first; the task runs after it (poll what it recorded).
        for _ in range(500):
            if marker.decode() in (await client.get(f"{url}/background")).json():
                break
            await anyio.sleep(0.01)
        else:
            raise AssertionError("the background task never ran")


def _websocket_echo(ws_url: str) -> None:
    # websockets' client runs on its own (asyncio) loop in a thread: the
    # server under test runs on whichever backend the test has.
    with websockets.sync.client.connect(ws_url, subprotocols=["echo"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "echo"
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=5) == b"\x00\x01binary"
        big = "x" * 200_000
        ws.send(big)
        assert ws.recv(timeout=5) == big


async def test_websocket_echo_with_the_websockets_library(framework: str) -> None:
    async with running(APPS[framework]) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        await anyio.to_thread.run_sync(_websocket_echo, ws_url)


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2c"])
async def test_curl_as_the_client(framework: str, http2: bool) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is an interop peer: install it (apt curl)"
    async with running(APPS[framework]) as url:
        args = [curl, "-sS", "--max-time", "10"]
        if http2:
            args.append("--http2-prior-knowledge")
        result = await anyio.run_process([*args, f"{url}/json?name=curl"], check=False)
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        assert body["name"] == "curl"
        assert body["http_version"] == ("2" if http2 else "1.1")
        result = await anyio.run_process(
            [*args, "-X", "POST", "--data-binary", "@-", f"{url}/echo"],
            input=b"curl body" * 1000,
            check=False,
        )
        assert result.stdout == b"curl body" * 1000
        result = await anyio.run_process([*args, "-N", f"{url}/stream"], check=False)
        assert result.stdout == b"".join(b"line %d\n" % i for i in range(5))


def test_apps_module_is_importable_without_a_loop() -> None:
    # The apps are plain module-level objects, as `hyper-util run` imports them.
    assert callable(APPS["fastapi"])
    assert subprocess is not None
