"""Interop: the pooled Client against nginx and hypercorn, started by the test.

nginx (``/usr/sbin/nginx``, Debian's package) runs in the foreground
(``daemon off; master_process off;``) from a config written to the test's
temporary directory, on 127.0.0.1; hypercorn runs as a subprocess on a socket
the test bound to port 0 (``fd://``), serving a small ASGI app, and speaks
both HTTP/1.1 and h2c with prior knowledge on that port. Both are stopped by
PID. A missing peer is a test failure that says what to install, never a
skip.

Checked: keep-alive reuse as the server reports it (nginx's
``$connection`` / ``$connection_requests``; hypercorn: the client port the
app sees), a large static file, a chunked response, a streamed upload, and
many concurrent requests (HTTP/1.1: several connections; h2c: one).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from hyper_core.body import StreamBody, collect
from hyper_core.http import Request, Version
from hyper_util.client.legacy import Client

pytestmark = pytest.mark.anyio

NGINX = "/usr/sbin/nginx"
STARTUP_TIMEOUT = 30.0  # seconds a peer gets to answer its first request
BIG = os.urandom(3 << 20)  # 3 MiB

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/bodies;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        add_header x-connection $connection always;
        add_header x-connection-requests $connection_requests always;
        location /gz/ {{
            alias {tmp}/www/;
            gzip on;
            gzip_types text/plain;
            gzip_min_length 0;
        }}
    }}
}}
"""

ASGI_APP = """
import hashlib


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    digest, size = hashlib.sha256(), 0
    while True:
        message = await receive()
        digest.update(message.get("body", b""))
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    text = "%s %s %d %s %s" % (
        scope["http_version"], scope["path"], size, digest.hexdigest(), scope["client"][1]
    )
    body = text.encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_for_answer(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"the peer exited with {proc.returncode} at startup: {text[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /hello HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                if probe.recv(5) == b"HTTP/":
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the peer did not answer within {STARTUP_TIMEOUT} s")


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"nginx not found at {NGINX}: install Debian's nginx package")
    tmp = tmp_path_factory.mktemp("nginx")
    (tmp / "www").mkdir()
    (tmp / "bodies").mkdir()
    (tmp / "www" / "hello").write_bytes(b"hello")
    (tmp / "www" / "big").write_bytes(BIG)
    (tmp / "www" / "lines.txt").write_bytes(b"".join(b"line %d\n" % i for i in range(5000)))
    for attempt in range(5):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
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
            yield port
            return
        finally:
            kill(proc)
    pytest.fail("nginx could not bind a free port in 5 attempts")


@pytest.fixture(scope="module")
def hypercorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if importlib.util.find_spec("hypercorn") is None:
        pytest.fail("hypercorn is not installed: it is a test dependency (uv sync)")
    tmp = tmp_path_factory.mktemp("hypercorn")
    (tmp / "client_interop_app.py").write_text(ASGI_APP)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    log = tmp / "server.log"
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
                "client_interop_app:app",
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
        kill(proc)


async def upload_chunks() -> AsyncIterator[bytes]:
    for i in range(64):
        yield bytes([i]) * 16384


UPLOAD = b"".join(bytes([i]) * 16384 for i in range(64))


# -- nginx -----------------------------------------------------------------------------


async def test_nginx_reuses_one_connection(nginx: int) -> None:
    async with Client() as client:
        seen = []
        for _ in range(5):
            response = await client.get(f"http://127.0.0.1:{nginx}/hello")
            assert (await collect(response.body)).data == b"hello"
            seen.append(
                (response.headers["x-connection"], response.headers["x-connection-requests"])
            )
        assert client.statistics().connections_opened == 1
    assert len({connection for connection, _ in seen}) == 1
    assert [int(count) for _, count in seen] == [1, 2, 3, 4, 5]


async def test_nginx_large_chunked_and_concurrent(nginx: int) -> None:
    async with Client() as client:
        response = await client.get(f"http://127.0.0.1:{nginx}/big")
        assert hashlib.sha256((await collect(response.body)).data).digest() == (
            hashlib.sha256(BIG).digest()
        )
        response = await client.get(
            f"http://127.0.0.1:{nginx}/gz/lines.txt", headers={"accept-encoding": "gzip"}
        )
        assert response.headers.get("transfer-encoding") == "chunked"
        assert response.headers.get("content-encoding") == "gzip"
        await collect(response.body)
        connections: set[str] = set()

        async def one() -> None:
            r = await client.get(f"http://127.0.0.1:{nginx}/hello")
            assert (await collect(r.body)).data == b"hello"
            connections.add(r.headers["x-connection"])

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(one)
        stats = client.statistics()
        # Concurrent HTTP/1.1 requests need connections of their own; the
        # idle one from before is among them.
        assert 1 < len(connections) == stats.connections_opened
        assert stats.open_connections == stats.idle_connections == len(connections)


# -- hypercorn ---------------------------------------------------------------------------


async def test_hypercorn_http1_upload_and_reuse(hypercorn: int) -> None:
    async with Client() as client:
        ports = set()
        for _ in range(3):
            response = await client.post(
                f"http://127.0.0.1:{hypercorn}/up", StreamBody(upload_chunks())
            )
            version, path, size, digest, port = (await collect(response.body)).data.split()
            assert (version, path) == (b"1.1", b"/up")
            assert int(size) == len(UPLOAD)
            assert digest.decode() == hashlib.sha256(UPLOAD).hexdigest()
            ports.add(port)
        assert len(ports) == 1
        assert client.statistics().connections_opened == 1


async def test_hypercorn_h2c_prior_knowledge_shares_one_connection(hypercorn: int) -> None:
    async with Client(http2_only=True) as client:
        ports = set()

        async def one(i: int) -> None:
            request = Request("POST", f"http://127.0.0.1:{hypercorn}/h2/{i}", body=None)
            response = await client.request(request)
            assert response.version is Version.HTTP_2
            version, path, size, _, port = (await collect(response.body)).data.split()
            assert (version, path, size) == (b"2", f"/h2/{i}".encode(), b"0")
            ports.add(port)

        async with anyio.create_task_group() as tg:
            for i in range(25):
                tg.start_soon(one, i)
        response = await client.post(
            f"http://127.0.0.1:{hypercorn}/up", StreamBody(upload_chunks())
        )
        _, _, size, digest, _ = (await collect(response.body)).data.split()
        assert int(size) == len(UPLOAD)
        assert digest.decode() == hashlib.sha256(UPLOAD).hexdigest()
        assert client.statistics().connections_opened == 1
    assert len(ports) == 1
