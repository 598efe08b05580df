"""HTTP/2 client interop: our client against real servers (nghttpd, hypercorn).

What belongs here: exchanges with independent HTTP/2 implementations over
loopback TCP, h2c with prior knowledge: nghttp2's ``nghttpd`` (Debian
``nghttp2-server``) serving a docroot and echoing uploads, and hypercorn
serving a small ASGI app.

Strategy: each server is a subprocess bound to 127.0.0.1 port 0; its real
port is read from ``/proc`` (the listening socket among the process's file
descriptors), since neither prints it. Processes are stopped by their PID
in the fixture's teardown. A missing server binary fails the test: these
are the checks that keep us honest, never skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from hyper_core.body import Full, collect
from hyper_core.client.conn import http2
from hyper_core.http import Request

pytestmark = pytest.mark.anyio

VENV_BIN = Path(sys.executable).parent


def listening_port(pid: int, timeout: float = 10.0) -> int:
    """Return the TCP port process ``pid`` listens on (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:  # 0A = LISTEN
                    return int(parts[1].rsplit(":", 1)[1], 16)
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not listen within {timeout} s")


def start(cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


BIG = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32)  # 3 MiB


@pytest.fixture
def nghttpd(tmp_path: Path) -> Iterator[int]:
    """nghttpd on 127.0.0.1 (h2c), docroot with index.html and big.bin; yields its port."""
    binary = shutil.which("nghttpd", path="/usr/sbin:/usr/bin")
    if binary is None:
        pytest.fail("nghttpd is not installed (Debian package nghttp2-server)")
    docroot = tmp_path / "htdocs"
    docroot.mkdir()
    (docroot / "index.html").write_bytes(b"hello from nghttpd\n")
    (docroot / "big.bin").write_bytes(BIG)
    proc = start(
        [
            binary,
            "--no-tls",
            "-a",
            "127.0.0.1",
            "-d",
            str(docroot),
            "--echo-upload",
            "-m",
            "64",
            "0",
        ],
        tmp_path,
    )
    try:
        yield listening_port(proc.pid)
    finally:
        stop(proc)


APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [(b"content-type", b"text/plain")]
    seen = b",".join(name for name, _ in scope["headers"])
    headers.append((b"x-seen", seen))
    headers.append((b"x-version", scope["http_version"].encode()))
    reply = body if scope["method"] in ("POST", "PUT") else b"Hello, " + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})
"""


@pytest.fixture
def hypercorn(tmp_path: Path) -> Iterator[int]:
    """hypercorn serving a small ASGI app on 127.0.0.1 (h2c prior knowledge); yields its port."""
    binary = VENV_BIN / "hypercorn"
    if not binary.exists():
        pytest.fail("hypercorn is not installed in the venv")
    (tmp_path / "h2app.py").write_text(APP)
    proc = start([str(binary), "--bind", "127.0.0.1:0", "h2app:app"], tmp_path)
    try:
        yield listening_port(proc.pid)
    finally:
        stop(proc)


async def connect(port: int, **options: object) -> tuple[http2.SendRequest, http2.Connection]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    return await http2.Builder(**options).handshake(stream)  # type: ignore[arg-type]


# ----------------------------------------------------------------- nghttpd


async def test_nghttpd_get_small_and_large(nghttpd: int) -> None:
    sender, connection = await connect(nghttpd)
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        base = f"http://127.0.0.1:{nghttpd}"
        response = await sender.send_request(Request("GET", f"{base}/index.html"))
        assert response.status == 200
        assert (await collect(response.body)).to_bytes() == b"hello from nghttpd\n"
        response = await sender.send_request(Request("GET", f"{base}/big.bin"))
        assert response.body.size_hint().exact == len(BIG)
        assert (await collect(response.body)).to_bytes() == BIG
        missing = await sender.send_request(Request("GET", f"{base}/nope"))
        assert missing.status == 404
        await collect(missing.body)
        await sender.aclose()


async def test_nghttpd_many_concurrent_streams_beyond_its_limit(nghttpd: int) -> None:
    sender, connection = await connect(nghttpd)
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        url = f"http://127.0.0.1:{nghttpd}/index.html"
        bodies: list[bytes] = []

        async def one() -> None:
            response = await sender.send_request(Request("GET", url))
            bodies.append((await collect(response.body)).to_bytes())

        await one()  # the answer comes after nghttpd's SETTINGS: its limit is known
        assert sender.current_max_send_streams == 64  # nghttpd -m 64
        async with anyio.create_task_group() as requests:
            for _ in range(200):
                requests.start_soon(one)
        assert bodies == [b"hello from nghttpd\n"] * 201
        await sender.aclose()


async def test_nghttpd_burst_before_settings_is_refused_retryably(nghttpd: int) -> None:
    # 100 streams may go out before nghttpd's SETTINGS (limit 64) arrive, as in
    # hyper; the ones it refuses fail as not processed and succeed on retry.
    sender, connection = await connect(nghttpd)
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        url = f"http://127.0.0.1:{nghttpd}/index.html"
        retried = 0

        async def one() -> None:
            nonlocal retried
            for _ in range(3):
                try:
                    response = await sender.send_request(Request("GET", url))
                except http2.RequestNotProcessedError:
                    retried += 1
                    continue
                assert (await collect(response.body)).to_bytes() == b"hello from nghttpd\n"
                return
            raise AssertionError("still refused after 3 tries")

        async with anyio.create_task_group() as requests:
            for _ in range(100):
                requests.start_soon(one)
        assert 0 <= retried <= 100 - 64
        await sender.aclose()


async def test_nghttpd_echo_upload_large_bodies_small_windows(nghttpd: int) -> None:
    sender, connection = await connect(
        nghttpd, initial_stream_window_size=8192, initial_connection_window_size=65_535
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        url = f"http://127.0.0.1:{nghttpd}/echo"

        async def one(i: int) -> None:
            payload = bytes([i]) * (512 * 1024 + i)
            response = await sender.send_request(Request("POST", url, body=Full(payload)))
            assert response.status == 200
            assert (await collect(response.body)).to_bytes() == payload

        async with anyio.create_task_group() as requests:
            for i in range(4):
                requests.start_soon(one, i)
        await sender.aclose()


async def test_nghttpd_adaptive_window(nghttpd: int) -> None:
    sender, connection = await connect(nghttpd, adaptive_window=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        for _ in range(3):
            response = await sender.send_request(
                Request("GET", f"http://127.0.0.1:{nghttpd}/big.bin")
            )
            assert (await collect(response.body)).to_bytes() == BIG
        await sender.aclose()


# --------------------------------------------------------------- hypercorn


async def test_hypercorn_h2c_prior_knowledge(hypercorn: int) -> None:
    sender, connection = await connect(hypercorn)
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        base = f"http://127.0.0.1:{hypercorn}"
        response = await sender.send_request(
            Request("GET", f"{base}/hi", headers={"connection": "keep-alive", "x-custom": "1"})
        )
        assert response.status == 200
        assert response.headers["x-version"] == "2"
        seen = response.headers["x-seen"].split(",")
        assert "x-custom" in seen
        assert "connection" not in seen
        assert (await collect(response.body)).to_bytes() == b"Hello, /hi"
        payload = b"0123456789" * 50_000
        response = await sender.send_request(Request("POST", f"{base}/echo", body=Full(payload)))
        assert (await collect(response.body)).to_bytes() == payload
        await sender.aclose()


async def test_hypercorn_concurrent_streams(hypercorn: int) -> None:
    sender, connection = await connect(hypercorn)
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.serve)
        base = f"http://127.0.0.1:{hypercorn}"
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            response = await sender.send_request(
                Request("POST", f"{base}/{i}", body=Full(b"%d" % i * 1000))
            )
            results[i] = (await collect(response.body)).to_bytes()

        async with anyio.create_task_group() as requests:
            for i in range(120):
                requests.start_soon(one, i)
        assert results == {i: b"%d" % i * 1000 for i in range(120)}
        await sender.aclose()
