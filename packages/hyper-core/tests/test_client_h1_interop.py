"""Interop: our HTTP/1 client against real servers started by the test.

Peers: uvicorn and hypercorn (test dependencies, run from this venv) serving a
small ASGI app, and nginx (``/usr/sbin/nginx``, Debian's package) with a
generated config. Each runs as a subprocess on 127.0.0.1 for the whole
module, and is killed by PID when the module is done. A missing peer is a
test failure that says what to install, never a skip.

The ASGI servers get a socket the test bound to port 0 (``--fd`` / ``fd://``),
so there is no port race. nginx cannot take a socket that way in
single-process mode, so the test finds a free port and retries if another
process grabs it first.

Checked against each peer: several GETs reuse one connection (the server
reports which connection served each request), a streamed POST body of
unknown length arrives intact (chunked), and a chunked response is read
whole.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from hyper_core.body import StreamBody, collect
from hyper_core.client.conn import http1
from hyper_core.http import Request

pytestmark = pytest.mark.anyio

NGINX = "/usr/sbin/nginx"
STARTUP_TIMEOUT = 30.0  # seconds a peer gets to answer its first request
UPLOAD = bytes(range(256)) * 4096  # 1 MiB

ASGI_APP = '''
"""The ASGI app the interop tests run under uvicorn and hypercorn."""
import hashlib


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    client_port = str(scope["client"][1]).encode()
    if path == "/upload":
        digest, size = hashlib.sha256(), 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            if not message.get("more_body"):
                break
        body = b"%d %s" % (size, digest.hexdigest().encode())
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(100):
            await send({"type": "http.response.body", "body": b"line %d\\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        headers = [(b"content-length", b"5"), (b"x-connection", client_port)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})
'''

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
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
        location = /upload {{
            # Keep each request body in a file under bodies/ for the test to read.
            client_body_in_file_only on;
            client_max_body_size 16m;
            proxy_pass http://127.0.0.1:{port}/stored;
        }}
        location = /stored {{ return 200 "stored\\n"; }}
        location /gz/ {{
            alias {tmp}/www/;
            gzip on;
            gzip_types text/plain;
            gzip_min_length 0;
        }}
    }}
}}
"""


@dataclass
class Peer:
    name: str
    port: int
    log: Path
    tmp: Path

    def diagnostics(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return f"{self.name} on port {self.port}; its log:\n{text[-3000:]}"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_for_answer(proc: subprocess.Popen[bytes], port: int, peer: Peer) -> None:
    """Block until the peer answers an HTTP request (or fail, with its log)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"{peer.name} exited with {proc.returncode} at startup. {peer.diagnostics()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.settimeout(max(0.1, deadline - time.monotonic()))
                probe.sendall(b"GET /hello HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                if probe.recv(5) == b"HTTP/":
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{peer.name} did not answer within {STARTUP_TIMEOUT} s. {peer.diagnostics()}")


def _asgi_server(name: str, tmp: Path) -> Iterator[Peer]:
    if importlib.util.find_spec(name) is None:
        pytest.fail(
            f"{name} is not installed in this environment: it is a test dependency (uv sync)"
        )
    (tmp / "interop_app.py").write_text(ASGI_APP)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    if name == "uvicorn":
        args = ["-m", "uvicorn", "--fd", str(fd), "--http", "h11", "--log-level", "warning"]
    else:
        args = ["-m", "hypercorn", "--bind", f"fd://{fd}", "--log-level", "warning"]
    peer = Peer(name, port, tmp / "server.log", tmp)
    with peer.log.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args, "interop_app:app"],
            cwd=tmp,
            pass_fds=[fd],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    listener.close()  # the server holds its own copy
    try:
        _wait_for_answer(proc, port, peer)
        yield peer
    finally:
        _kill(proc)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _nginx(tmp: Path) -> Iterator[Peer]:
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"nginx not found at {NGINX}: install Debian's nginx package (.ci/run does)")
    (tmp / "www").mkdir()
    (tmp / "bodies").mkdir()
    (tmp / "www" / "hello").write_bytes(b"hello")
    (tmp / "www" / "lines.txt").write_bytes(b"".join(b"line %d\n" % i for i in range(2000)))
    for attempt in range(5):
        port = _free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
        peer = Peer("nginx", port, tmp / "error.log", tmp)
        stderr_path = tmp / f"stderr-{attempt}.log"
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [NGINX, "-c", str(conf), "-p", str(tmp)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            time.sleep(0.05)
            startup_errors = stderr_path.read_text(errors="replace") + peer.diagnostics()
            if proc.poll() is not None and "Address already in use" in startup_errors:
                continue  # another process took the port in between: try another
            _wait_for_answer(proc, port, peer)
            yield peer
            return
        finally:
            _kill(proc)
    pytest.fail("nginx could not bind a free port in 5 attempts")


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn", "nginx"])
def peer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Peer]:
    name: str = request.param
    tmp = tmp_path_factory.mktemp(name)
    if name == "nginx":
        yield from _nginx(tmp)
    else:
        yield from _asgi_server(name, tmp)


@asynccontextmanager
async def connect(peer: Peer) -> AsyncIterator[http1.SendRequest]:
    stream = await anyio.connect_tcp("127.0.0.1", peer.port)
    sender, connection = await http1.handshake(stream)
    with anyio.fail_after(STARTUP_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(connection.serve)
            yield sender
            await sender.aclose()


def host(peer: Peer) -> tuple[str, str]:
    return ("host", f"127.0.0.1:{peer.port}")


async def test_get_keep_alive_reuse(peer: Peer) -> None:
    connections: set[str] = set()
    async with connect(peer) as sender:
        for i in range(5):
            assert sender.is_ready(), f"request {i}: the connection is not reusable"
            response = await sender.send_request(Request("GET", "/hello", headers=[host(peer)]))
            assert response.status == 200, peer.diagnostics()
            assert (await collect(response.body)).to_bytes() == b"hello"
            connections.add(response.headers["x-connection"])
            if peer.name == "nginx":
                assert response.headers["x-connection-requests"] == str(i + 1)
        assert sender.is_ready()
    # The server saw every request on the same connection.
    assert len(connections) == 1


async def test_post_streaming_body(peer: Peer) -> None:
    pulled = 0

    async def upload() -> AsyncIterator[bytes]:
        nonlocal pulled
        for offset in range(0, len(UPLOAD), 16384):
            pulled += 1
            yield UPLOAD[offset : offset + 16384]

    before = set(os.listdir(peer.tmp / "bodies")) if peer.name == "nginx" else set()
    async with connect(peer) as sender:
        request = Request("POST", "/upload", headers=[host(peer)], body=StreamBody(upload()))
        response = await sender.send_request(request)
        body = (await collect(response.body)).to_bytes()
        assert response.status == 200, (body, peer.diagnostics())
        assert pulled == len(UPLOAD) // 16384
        if peer.name == "nginx":
            assert body == b"stored\n"
            stored = set(os.listdir(peer.tmp / "bodies")) - before
            assert len(stored) == 1
            assert (peer.tmp / "bodies" / stored.pop()).read_bytes() == UPLOAD
        else:
            assert body == b"%d %s" % (len(UPLOAD), hashlib.sha256(UPLOAD).hexdigest().encode())
        # The connection is still good afterwards. The response can end
        # before the body's task has seen its last write return (the server
        # answers once the bytes arrive), so wait for readiness, as
        # send_request's contract asks, instead of racing that task.
        with anyio.fail_after(5):
            await sender.ready()
        response = await sender.send_request(Request("GET", "/hello", headers=[host(peer)]))
        assert (await collect(response.body)).to_bytes() == b"hello"


async def test_chunked_response(peer: Peer) -> None:
    async with connect(peer) as sender:
        if peer.name == "nginx":
            # nginx streams a gzipped static file with chunked framing.
            headers = [host(peer), ("accept-encoding", "gzip")]
            response = await sender.send_request(Request("GET", "/gz/lines.txt", headers=headers))
            assert response.headers["content-encoding"] == "gzip"
            expected = (peer.tmp / "www" / "lines.txt").read_bytes()
        else:
            response = await sender.send_request(Request("GET", "/chunked", headers=[host(peer)]))
            expected = b"".join(b"line %d\n" % i for i in range(100))
        assert response.status == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        assert response.body.size_hint().exact is None
        body = (await collect(response.body)).to_bytes()
        if peer.name == "nginx":
            body = gzip.decompress(body)
        assert body == expected
        assert sender.is_ready()
