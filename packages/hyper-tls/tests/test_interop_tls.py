"""Real peers over TLS: curl and nghttp against our server; our Client against nginx and hypercorn.

What belongs here: interop with external TLS stacks, each with certificates
made by trustme at test time. A missing peer binary fails the test: these
peers are part of the test environment.

Strategy: curl and nghttp run through ``anyio.run_process`` with a timeout;
nginx (``daemon off; master_process off;``) and hypercorn run as child
processes on a free 127.0.0.1 port, polled until they accept, and are
terminated by their PID.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from tls_helpers import CertFiles, running_tls_server

from hyper_core.body import collect
from hyper_tls import HttpsConnector, TlsAcceptor
from hyper_util.client.legacy import Client
from hyper_util.client.legacy.connect import Connected

pytestmark = pytest.mark.anyio


def tool(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    assert path is not None, f"{name} is required for the interop tests and was not found"
    return path


async def run_tool(*argv: str) -> str:
    with anyio.fail_after(60):
        result = await anyio.run_process(list(argv), check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


@pytest.mark.parametrize(
    ("flag", "expected"), [("--http1.1", "HTTP/1.1 0"), ("--http2", "HTTP/2 0")]
)
async def test_curl_against_our_tls_server(certs: CertFiles, flag: str, expected: str) -> None:
    async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
        out = await run_tool(
            tool("curl"), "-sS", flag, "--cacert", str(certs.cafile), f"https://localhost:{port}/"
        )
    assert out == expected


async def test_nghttp_against_our_tls_server(certs: CertFiles) -> None:
    # nghttp has no CA option; it does not verify, but it negotiates h2 by ALPN.
    async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
        out = await run_tool(tool("nghttp"), "-v", f"https://localhost:{port}/")
    assert "negotiated protocol: h2" in out
    assert out.rstrip().endswith("HTTP/2 0") or "HTTP/2 0" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    with anyio.fail_after(20):
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.05)
                continue
            await stream.aclose()
            return


@contextmanager
def child(argv: list[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log stderr error;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "nginx $server_protocol"; }}
        location /reused {{ return 200 "$ssl_protocol $ssl_session_reused"; }}
    }}
}}
"""


@contextmanager
def nginx(certs: CertFiles, tmp: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, cert=certs.certfile, key=certs.keyfile))
    with child([tool("nginx"), "-p", str(tmp), "-c", str(conf)], tmp) as process:
        yield port, process
        assert process.poll() is None, "nginx exited during the test"


async def fetch_twice(connector: HttpsConnector, url: str) -> list[tuple[bytes, bool]]:
    results = []
    async with Client(connector) as client:
        for _ in range(2):
            response = await client.get(url)
            body = (await collect(response.body)).to_bytes()
            connected = response.extensions.get(Connected)
            assert connected is not None
            results.append((body, connected.alpn_h2))
    return results


@pytest.mark.parametrize("http2", [True, False])
async def test_client_against_nginx_tls(certs: CertFiles, tmp_path: Path, http2: bool) -> None:
    with nginx(certs, tmp_path) as (port, process):
        await wait_listening(port, process)
        connector = HttpsConnector(ssl_context=certs.client_context(), http2=http2)
        results = await fetch_twice(connector, f"https://localhost:{port}/")
    expected = b"nginx HTTP/2.0" if http2 else b"nginx HTTP/1.1"
    assert results == [(expected, http2)] * 2


async def test_client_resumes_tls_sessions_with_nginx(certs: CertFiles, tmp_path: Path) -> None:
    # nginx says whether it resumed ("r") or not ("."): a new connection per
    # request, each after the first resuming the session of the one before.
    with nginx(certs, tmp_path) as (port, process):
        await wait_listening(port, process)
        connector = HttpsConnector(ssl_context=certs.client_context(), http2=False)
        bodies = []
        async with Client(connector, pool_max_idle_per_host=0) as client:
            for _ in range(3):
                response = await client.get(f"https://localhost:{port}/reused")
                bodies.append((await collect(response.body)).to_bytes().split())
    assert [reused for _, reused in bodies] == [b".", b"r", b"r"]
    assert bodies[0][0] in (b"TLSv1.2", b"TLSv1.3")


HYPERCORN_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = ("hypercorn " + scope["http_version"]).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.mark.parametrize("http2", [True, False])
async def test_client_against_hypercorn_tls(certs: CertFiles, tmp_path: Path, http2: bool) -> None:
    (tmp_path / "tls_app.py").write_text(HYPERCORN_APP)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "hypercorn",
        "--certfile",
        str(certs.certfile),
        "--keyfile",
        str(certs.keyfile),
        "--bind",
        f"127.0.0.1:{port}",
        "tls_app:app",
    ]
    with child(argv, tmp_path) as process:
        await wait_listening(port, process)
        connector = HttpsConnector(ssl_context=certs.client_context(), http2=http2)
        results = await fetch_twice(connector, f"https://localhost:{port}/")
    expected = b"hypercorn 2" if http2 else b"hypercorn 1.1"
    assert results == [(expected, http2)] * 2
