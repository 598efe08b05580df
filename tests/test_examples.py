"""The programs in ``examples/`` run and do what their docstrings say.

Each example runs as a real subprocess with this interpreter, on asyncio and
on trio (its ``--backend`` flag). The servers listen on port 0 and announce
the port on their first line of output; they are fetched with the example
client (a second subprocess) and with httpx, and with a hand-driven h11
client where the order of bytes on the wire is the point. The client is also
run against Python's ``http.server``, a server that is not ours.

Every wait is bounded, and every server process is killed by its PID when
its test ends, whatever happened.
"""

from __future__ import annotations

import http.server
import importlib.metadata
import random
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import h11
import httpx
import pytest
import websockets.sync.client
import websockets.sync.server
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BACKENDS = ["asyncio", "trio"]
# Seconds any one step may take: generous for a loaded CI machine, and a
# hang still fails well inside pytest's own 60 s limit.
TIMEOUT = 20.0
HELLO = b"Hello, World!\n"
# 1 MiB of seeded random bytes: no repeating pattern that could hide a
# misplaced or duplicated chunk, and the same bytes on every run.
PAYLOAD = random.Random(20261120).randbytes(1 << 20)

backends = pytest.mark.parametrize("backend", BACKENDS)


def read_line(stream: IO[bytes], timeout: float = TIMEOUT) -> bytes:
    """One line from a pipe, or AssertionError after ``timeout`` seconds.

    The read runs in a daemon thread because a pipe read cannot time out
    portably; a thread left blocked ends when the process is killed.
    """
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, f"no complete line within {timeout} s"
    return lines[0]


def run_example(
    name: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``examples/<name>`` to completion (bounded) and capture its output."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


@dataclass
class Server:
    url: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    stderr: bytes = b""


@contextmanager
def example_server(name: str, backend: str) -> Iterator[Server]:
    """Start ``examples/<name> --port 0``; kill it by PID on the way out."""
    with subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), "--port", "0", "--backend", backend],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        server: Server | None = None
        try:
            assert process.stdout is not None
            line = read_line(process.stdout)
            match = re.fullmatch(rb"listening on (http://(127\.0\.0\.1):(\d+))\n", line)
            assert match is not None, f"unexpected first line {line!r}"
            server = Server(match[1].decode(), match[2].decode(), int(match[3]), process)
            yield server
        finally:
            if process.poll() is None:
                process.kill()
            # communicate() reaps the process and drains both pipes.
            _, stderr = process.communicate(timeout=TIMEOUT)
            if server is not None:
                server.stderr = stderr


def http_client() -> httpx.Client:
    # trust_env=False: a proxy configured in the environment must not sit
    # between the test and a loopback server.
    return httpx.Client(timeout=TIMEOUT, trust_env=False)


# -- hello_server.py ---------------------------------------------------------------


@backends
def test_hello_server_answers_the_example_client(backend: str) -> None:
    with example_server("hello_server.py", backend) as server:
        result = run_example("client.py", server.url + "/", "--backend", backend)
        assert result.returncode == 0, result.stderr
        assert result.stdout == HELLO
        # Any path, any method: the hello service ignores both.
        result = run_example("client.py", server.url + "/any/path?x=1", "-d", "ignored")
        assert result.returncode == 0, result.stderr
        assert result.stdout == HELLO


@backends
def test_hello_server_keeps_one_connection_alive_for_httpx(backend: str) -> None:
    with example_server("hello_server.py", backend) as server, http_client() as client:
        peers: set[object] = set()
        for method in ("GET", "POST", "GET", "HEAD"):
            # The POST body is left unread by the service: the connection
            # must discard it and stay usable for the next request.
            body = b"x" * 1000 if method == "POST" else None
            response = client.request(method, server.url + "/", content=body)
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/plain"
            assert response.headers["content-length"] == str(len(HELLO))
            assert response.content == (b"" if method == "HEAD" else HELLO)
            stream = response.extensions["network_stream"]
            peers.add(stream.get_extra_info("client_addr"))
        assert len(peers) == 1, "httpx had to reconnect"


@backends
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_server_stops_cleanly_on_a_signal(backend: str, signum: signal.Signals) -> None:
    with (
        example_server("hello_server.py", backend) as server,
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) as idle,
    ):
        # An idle keep-alive connection must not hold the shutdown up.
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        server.process.send_signal(signum)
        assert server.process.wait(timeout=TIMEOUT) == 0
        assert idle.recv(65536) == b""  # the server closed its end
    assert f"{signum.name}: shutting down".encode() in server.stderr
    assert b"Traceback" not in server.stderr


# -- echo_server.py ----------------------------------------------------------------


@backends
def test_echo_server_echoes_a_mebibyte_through_the_example_client(
    backend: str, tmp_path: Path
) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(PAYLOAD)
    with example_server("echo_server.py", backend) as server:
        url = server.url + "/"
        # From a file: sent with Content-Length.
        result = run_example("client.py", url, "-d", f"@{upload}", "--backend", backend)
        assert result.returncode == 0, result.stderr
        assert result.stdout == PAYLOAD
        # From stdin: length unknown, sent chunked.
        result = run_example("client.py", url, "-d", "@-", "--backend", backend, stdin=PAYLOAD)
        assert result.returncode == 0, result.stderr
        assert result.stdout == PAYLOAD
        result = run_example("client.py", url, "-X", "PUT", "-d", "short text")
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"short text"


@backends
def test_echo_server_echoes_a_mebibyte_to_httpx(backend: str) -> None:
    with example_server("echo_server.py", backend) as server, http_client() as client:
        response = client.post(
            server.url + "/upload",
            content=PAYLOAD,
            headers={"content-type": "application/x-test; v=1"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-test; v=1"
        assert response.headers["content-length"] == str(len(PAYLOAD))
        assert response.content == PAYLOAD

        # An iterator makes httpx send it chunked; the echo comes back chunked.
        chunks = (PAYLOAD[i : i + 50_000] for i in range(0, len(PAYLOAD), 50_000))
        response = client.post(server.url + "/", content=chunks)
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-type" not in response.headers
        assert response.content == PAYLOAD


def receive_until(conn: h11.Connection, sock: socket.socket, want: type[h11.Event]) -> list[object]:
    """Feed ``conn`` from ``sock`` until an event of type ``want``; return the events."""
    events: list[object] = []
    for _ in range(10_000):  # a bound on reads; the socket timeout bounds each one
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
            continue
        events.append(event)
        if isinstance(event, want):
            return events
    raise AssertionError(f"no {want.__name__} in {events!r}")


@backends
def test_echo_server_answers_before_the_request_body_ends(backend: str) -> None:
    """The echo starts while the upload is still open: nothing is buffered whole."""
    with (
        example_server("echo_server.py", backend) as server,
        socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock,
    ):
        conn = h11.Connection(h11.CLIENT)
        head = h11.Request(
            method="POST",
            target="/",
            headers=[("Host", "x"), ("Transfer-Encoding", "chunked"), ("Content-Type", "text/x")],
        )
        sock.sendall(conn.send(head) + conn.send(h11.Data(data=b"first chunk")))

        events = receive_until(conn, sock, h11.Data)
        response = events[0]
        assert isinstance(response, h11.Response)
        assert response.status_code == 200
        assert (b"content-type", b"text/x") in response.headers
        assert (b"transfer-encoding", b"chunked") in response.headers
        assert [e.data for e in events if isinstance(e, h11.Data)] == [b"first chunk"]

        # Only now does the rest of the request go out.
        sock.sendall(conn.send(h11.Data(data=b"second")) + conn.send(h11.EndOfMessage()))
        events = receive_until(conn, sock, h11.EndOfMessage)
        assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"second"


# -- client.py against a server that is not ours -------------------------------------


@dataclass
class ForeignServer:
    url: str
    release: threading.Event


class ForeignHandler(http.server.BaseHTTPRequestHandler):
    """Python's http.server speaking HTTP/1.0: close-delimited bodies."""

    release: threading.Event

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.send_response(200)
            self.end_headers()  # no Content-Length: the body ends at close
            self.wfile.write(b"first\n")
            self.wfile.flush()
            # Hold the rest back until the test saw the first part arrive.
            self.release.wait(TIMEOUT)
            self.wfile.write(b"second\n")
        else:
            body = b"no such page\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture
def foreign_server() -> Iterator[ForeignServer]:
    release = threading.Event()
    handler = type("Handler", (ForeignHandler,), {"release": release})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield ForeignServer(f"http://127.0.0.1:{httpd.server_address[1]}", release)
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)


@backends
def test_client_exits_1_on_a_404(backend: str, foreign_server: ForeignServer) -> None:
    result = run_example("client.py", foreign_server.url + "/missing", "--backend", backend)
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"404 Not Found" in result.stderr


@backends
def test_client_writes_the_body_as_it_arrives(backend: str, foreign_server: ForeignServer) -> None:
    url = foreign_server.url + "/slow"
    with subprocess.Popen(
        [sys.executable, str(EXAMPLES / "client.py"), url, "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            assert process.stdout is not None
            # The server is still holding "second" back, so this line can
            # only come from a client that streams.
            assert read_line(process.stdout) == b"first\n"
            foreign_server.release.set()
            rest, stderr = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, stderr
            assert rest == b"second\n"
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=TIMEOUT)


def test_client_refuses_https_clearly() -> None:
    result = run_example("client.py", "https://127.0.0.1:1/")
    assert result.returncode == 2
    assert b"https:// is not supported yet" in result.stderr


# -- httpx_client.py ---------------------------------------------------------------


@contextmanager
def serve_command(backend: str) -> Iterator[str]:
    """``python -m hyper_util serve`` (HTTP/1.1 and h2c on one port); yields its URL."""
    with subprocess.Popen(
        [sys.executable, "-m", "hyper_util", "serve", "--port", "0", "--backend", backend],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        try:
            assert process.stdout is not None
            line = read_line(process.stdout)
            assert line.startswith(b"listening on http://127.0.0.1:"), line
            yield line.split()[2].decode().rstrip("/")
        finally:
            process.kill()
            process.communicate(timeout=TIMEOUT)


@backends
@pytest.mark.parametrize("mode", [[], ["--sync"]], ids=["async", "sync"])
def test_httpx_client_fetches_from_the_example_server(backend: str, mode: list[str]) -> None:
    with example_server("hello_server.py", backend) as server:
        urls = [server.url + "/", server.url + "/again"]
        result = run_example("httpx_client.py", *urls, "--backend", backend, *mode)
        assert result.returncode == 0, result.stderr
        assert result.stdout == HELLO * 2
        lines = result.stderr.decode().splitlines()
        assert lines == [f"200 HTTP/1.1 {url}" for url in urls]


@backends
@pytest.mark.parametrize("mode", [[], ["--sync"]], ids=["async", "sync"])
def test_httpx_client_speaks_http2_to_the_serve_command(backend: str, mode: list[str]) -> None:
    with serve_command(backend) as url:
        result = run_example("httpx_client.py", url + "/path?q=1", "--http2", *mode)
        assert result.returncode == 0, result.stderr
        assert result.stderr.decode() == f"200 HTTP/2 {url}/path?q=1\n"
        # The serve command echoes the request: the head httpx sent, over HTTP/2.
        assert result.stdout.startswith(b"GET /path?q=1 HTTP/2\r\n")


def test_httpx_client_exits_1_on_a_404(foreign_server: ForeignServer) -> None:
    # http.server answers with HTTP/1.0.
    result = run_example("httpx_client.py", foreign_server.url + "/missing")
    assert result.returncode == 1
    assert result.stderr.decode() == f"404 HTTP/1.0 {foreign_server.url}/missing\n"
    assert result.stdout == b"no such page\n"


# -- demo.py -----------------------------------------------------------------------


@backends
def test_demo_runs_and_prints_every_exchange(backend: str) -> None:
    result = run_example("demo.py", "--backend", backend)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.count("HTTP/1.1 200 OK\n") == 4
    assert out.count("content-type: text/plain\n") == 4
    assert out.count("\n\nHello, World!\n") == 3
    assert out.count("\ncontent-length: 14\n") == 3
    assert "--- POST /echo\n" in out
    assert out.endswith("\n\necho me, please\n\n")
    assert result.stderr == b""


def dependency_import_names(distribution: str) -> set[str]:
    """Top-level import names of ``distribution`` and everything it requires."""
    seen: set[str] = set()
    todo = [canonicalize_name(distribution)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return {
        module
        for module, owners in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(owner) in seen for owner in owners)
    }


def test_demo_needs_only_hyper_core_hyper_util_and_their_dependencies() -> None:
    # The README installs these two for the demo: hyper-core, and hyper-util
    # for the listener (its streams bound what a client can make the server
    # read ahead; anyio's own do not, on asyncio).
    # Run the demo as `python examples/demo.py` would (same sys.path), then
    # list the third-party top-level modules it imported.
    script = (
        "import runpy, sys\n"
        f"sys.path.insert(0, {str(EXAMPLES)!r})\n"
        f"sys.argv = [{str(EXAMPLES / 'demo.py')!r}]\n"
        f"runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "top = {name.partition('.')[0] for name in sys.modules}\n"
        "print(*sorted(top - set(sys.stdlib_module_names)), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stderr
    imported = set(result.stderr.decode().split())
    examples = {path.stem for path in EXAMPLES.glob("*.py")}
    # hyper_core itself is named outright: an editable install of it is not
    # in packages_distributions().
    allowed = (
        dependency_import_names("hyper-core")
        | dependency_import_names("hyper-util")
        | examples
        | {"hyper_core", "hyper_util"}
    )
    # anyio imports sniffio when it is installed (optional for anyio, and not
    # a dependency of hyper-core); coverage is there when the tests session
    # measures subprocesses.
    allowed |= {"sniffio", "coverage", "$coverage"}
    # Underscored names are interpreter or packaging machinery (the
    # `__main__` module, setuptools' `_distutils_hack` .pth hook); `*__mypyc`
    # is the shared library of a compiled build's modules (hyper_core__mypyc),
    # which the wheel's top_level.txt does not always list (not when the
    # metadata comes from a hook run that compiles nothing).
    extra = {
        name
        for name in imported - allowed
        if not name.startswith("_") and not name.endswith("__mypyc")
    }
    assert extra == set()
    assert {"hyper_core", "hyper_util", "anyio"} <= imported


def test_cli_demo_serves_and_fetches_over_both_versions() -> None:
    result = run_example("cli_demo.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    # HTTP/1.1: the echo service repeats the request line it received.
    assert "< HTTP/1.1 200 OK\n" in out
    assert "\nGET /hello?from=cli HTTP/1.1\r\n" in out
    # HTTP/2 with prior knowledge on the same port, with a request body.
    assert "< HTTP/2 200\n" in out
    assert "\nPOST /hello?from=cli HTTP/2\r\n" in out
    assert out.rstrip().endswith("server stopped (exit status 0)")
    assert "echo me over HTTP/2\n" in out


# -- websocket_server.py and websocket_client.py ---------------------------------------


def ws_url(server: Server, path: str = "/echo") -> str:
    return server.url.replace("http://", "ws://") + path


@backends
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_websocket_client_and_server_echo_over_both_versions(backend: str, http2: bool) -> None:
    with example_server("websocket_server.py", backend) as server:
        flags = ["--http2"] if http2 else []
        args = [ws_url(server), "hello", "wörld", "--backend", backend, *flags]
        result = run_example("websocket_client.py", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "hello\nwörld\n"
    version = "HTTP/2" if http2 else "HTTP/1.1"
    assert result.stderr.decode() == f"connected: {version}, subprotocol echo\n"


def test_websocket_server_refuses_other_paths_and_the_client_says_so() -> None:
    with example_server("websocket_server.py", "asyncio") as server:
        result = run_example("websocket_client.py", ws_url(server, "/elsewhere"))
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr == b"refused: 403\n"


def test_websocket_server_answers_the_websockets_library() -> None:
    with (
        example_server("websocket_server.py", "trio") as server,
        websockets.sync.client.connect(ws_url(server), subprotocols=["echo"]) as ws,  # type: ignore[list-item]
    ):
        assert ws.subprotocol == "echo"
        ws.send(b"\x00binary")
        assert ws.recv(timeout=TIMEOUT) == b"\x00binary"


@backends
def test_websocket_client_talks_to_the_websockets_library(backend: str) -> None:
    def echo(ws: websockets.sync.server.ServerConnection) -> None:
        for message in ws:
            ws.send(f"echo: {message!s}")

    with websockets.sync.server.serve(echo, "127.0.0.1", 0, subprotocols=["echo"]) as server:  # type: ignore[list-item]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            port = server.socket.getsockname()[1]
            url = f"ws://127.0.0.1:{port}/any"
            result = run_example("websocket_client.py", url, "one", "two", "--backend", backend)
        finally:
            server.shutdown()
            thread.join(TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"echo: one\necho: two\n"
    assert result.stderr == b"connected: HTTP/1.1, subprotocol echo\n"


# -- asgi_server.py and fastapi_app.py ------------------------------------------------


def _websocket_echo(url: str, messages: list[str | bytes]) -> list[str | bytes]:
    import websockets.sync.client

    with websockets.sync.client.connect(url, open_timeout=TIMEOUT) as ws:
        out: list[str | bytes] = []
        for message in messages:
            ws.send(message)
            out.append(ws.recv(timeout=TIMEOUT))
        return out


@backends
def test_asgi_app_serves_http1_http2_and_websockets(backend: str) -> None:
    with example_server("asgi_server.py", backend) as server:
        with http_client() as client:
            response = client.get(server.url + "/hello")
            assert response.status_code == 200
            assert response.text == "Hello from the lifespan state!\n"
            assert client.get(server.url + "/nothing").status_code == 404
        with httpx.Client(http1=False, http2=True, timeout=TIMEOUT, trust_env=False) as client:
            response = client.post(server.url + "/echo", content=PAYLOAD)
            assert response.http_version == "HTTP/2"
            assert response.content == PAYLOAD
        ws_url = server.url.replace("http://", "ws://") + "/ws"
        assert _websocket_echo(ws_url, ["text", b"\x00bytes"]) == ["text", b"\x00bytes"]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=TIMEOUT) == 0


def test_fastapi_app_runs_with_the_one_command() -> None:
    with subprocess.Popen(
        [
            *(sys.executable, "-m", "hyper_util", "run", "fastapi_app:app"),
            *("--app-dir", str(EXAMPLES), "--port", "0"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            assert process.stderr is not None
            line = read_line(process.stderr)
            match = re.search(rb"listening on https?://(\S+)", line)
            assert match is not None, f"unexpected first line {line!r}"
            url = f"http://{match[1].decode()}"
            with http_client() as client:
                assert client.get(url + "/items/3?q=x").json() == {
                    "item_id": 3,
                    "q": "x",
                    "served_by": "hyper",
                }
                assert client.get(url + "/count").text == "1\n2\n3\n"
            with httpx.Client(http1=False, http2=True, timeout=TIMEOUT, trust_env=False) as client:
                assert client.get(url + "/items/4").json()["item_id"] == 4
            ws_url = url.replace("http://", "ws://") + "/ws"
            assert _websocket_echo(ws_url, ["over fastapi"]) == ["over fastapi"]
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=TIMEOUT) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=TIMEOUT)


# -- workers.py --------------------------------------------------------------------


@backends
def test_workers_serve_from_worker_processes_and_stop_on_sigterm(backend: str) -> None:
    with example_server("workers.py", backend) as server, http_client() as client:
        pids = set()
        for _ in range(4):
            response = client.get(server.url + "/", headers={"connection": "close"})
            assert response.status_code == 200
            match = re.fullmatch(r"Hello from worker (\d+)\n", response.text)
            assert match is not None, response.text
            pids.add(int(match[1]))
        assert server.process.pid not in pids  # the supervisor itself serves nothing
        with open(f"/proc/{server.process.pid}/task/{server.process.pid}/children") as f:
            children = {int(pid) for pid in f.read().split()}
        assert pids <= children
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=TIMEOUT) == 0
    assert b"Traceback" not in server.stderr


@backends
def test_http3_example_discovers_http3_from_alt_svc(backend: str, tmp_path: Path) -> None:
    # trustme's command line writes a CA (client.pem) and a localhost leaf.
    subprocess.run(
        [sys.executable, "-m", "trustme", "-d", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    result = run_example(
        "http3.py",
        "--certfile",
        str(tmp_path / "server.pem"),
        "--keyfile",
        str(tmp_path / "server.key"),
        "--cacert",
        str(tmp_path / "client.pem"),
        "--backend",
        backend,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    # First over TCP (TLS with ALPN: HTTP/2), advertising HTTP/3 on the same port...
    assert re.fullmatch(r'Hello over HTTP/2!  alt-svc: h3=":\d+"; ma=86400', lines[0])
    # ...then HTTP/3, once the background QUIC handshake is done.
    assert lines[-1] == "Hello over HTTP/3!  alt-svc: None"


@backends
def test_asgi_http3_example_serves_an_asgi_app_over_quic(backend: str, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "trustme", "-d", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    result = run_example(
        "asgi_http3.py",
        "--certfile",
        str(tmp_path / "server.pem"),
        "--keyfile",
        str(tmp_path / "server.key"),
        "--cacert",
        str(tmp_path / "client.pem"),
        "--backend",
        backend,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "HTTP/3: http_version=3 scheme=https",
        "WebSocket over HTTP/3: echo hello",
    ]


# -- download_receipts.py ---------------------------------------------------------


@backends
def test_download_receipts_only_for_downloads_written_whole(backend: str) -> None:
    result = run_example("download_receipts.py", "--backend", backend)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    size = 16 * 1024 * 1024
    assert lines[:2] == [
        f"receipt: download 1 over HTTP/1.1, {size} bytes written",
        f"receipt: download 2 over HTTP/2, {size} bytes written",
    ]
    assert len(lines) == 3
    match = re.fullmatch(
        rf"no receipt: download 3 over HTTP/1\.1 failed after (\d+) of {size} bytes", lines[2]
    )
    assert match is not None, lines[2]
    assert int(match[1]) < size
