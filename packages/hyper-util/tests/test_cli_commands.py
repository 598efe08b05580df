"""``python -m hyper_util get`` and ``serve`` as real processes.

Every process is started with ``sys.executable -m hyper_util``, waited for
with a timeout, and killed by its PID in a ``finally``. Servers listen on
127.0.0.1 port 0 and report their address on their first stdout line. The
``backend`` fixture runs each command on asyncio and on trio; curl is the
outside client for the interop checks (required: a missing curl fails them,
it never skips them).
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIG = os.urandom(1_000_003)
STARTUP_TIMEOUT = 15.0
RUN_TIMEOUT = 30.0
CURL = shutil.which("curl")


@pytest.fixture(params=["asyncio", "trio"], scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    line: str


def start_server(args: list[str], backend: str) -> Server:
    """Start ``serve``; return once it printed its listening line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyper_util", "serve", "--backend", backend, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT)
        assert ready, "the server did not print its address in time"
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on "), line
        return Server(proc, line.split()[2], line)
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> int | None:
    """Signal the server and reap it (SIGKILL after a bounded wait); its exit status."""
    return stop_server_output(proc, sig)[0]


def stop_server_output(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL
) -> tuple[int | None, bytes]:
    """As :func:`stop_server`, plus what the server wrote on stderr."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        _, err = proc.communicate(timeout=RUN_TIMEOUT)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=RUN_TIMEOUT)
        return None, b""
    except ValueError:  # already reaped and its pipes closed
        return proc.returncode, b""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "hello.txt").write_bytes(b"Hello, files!\n")
    (root / "big.bin").write_bytes(BIG)
    return root


@pytest.fixture(scope="module")
def static_server(site: Path, backend: str) -> Iterator[Server]:
    server = start_server([str(site), "--port", "0"], backend)
    try:
        yield server
    finally:
        stop_server(server.proc)


@pytest.fixture(scope="module")
def echo_server(backend: str) -> Iterator[Server]:
    server = start_server(["--port", "0"], backend)
    try:
        yield server
    finally:
        stop_server(server.proc)


def get(
    *args: str, backend: str = "asyncio", stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "hyper_util", "get", "--backend", backend, *args],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        input=stdin,
        check=False,
    )


def test_listening_line(static_server: Server) -> None:
    assert static_server.line.startswith("listening on http://127.0.0.1:")
    assert static_server.line.rstrip().endswith("(HTTP/1.1 and HTTP/2 (h2c))")


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_get_against_serve(static_server: Server, backend: str, http2: bool) -> None:
    flags = ["--http2"] if http2 else []
    small = get(*flags, static_server.url + "/hello.txt", backend=backend)
    big = get(*flags, static_server.url + "/big.bin", backend=backend)
    assert (small.returncode, small.stdout, small.stderr) == (0, b"Hello, files!\n", b"")
    assert big.returncode == 0
    assert big.stdout == BIG


def test_output_file_exact_bytes_and_no_bar_off_tty(
    static_server: Server, backend: str, tmp_path: Path
) -> None:
    target = tmp_path / "copy.bin"
    done = get("-o", str(target), static_server.url + "/big.bin", backend=backend)
    assert done.returncode == 0
    assert done.stdout == b""
    assert done.stderr == b""  # stderr is a pipe here: no progress bar
    assert target.read_bytes() == BIG


def test_progress_bar_on_a_terminal(static_server: Server, tmp_path: Path) -> None:
    target = tmp_path / "copy.bin"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hyper_util",
                "get",
                "-o",
                str(target),
                static_server.url + "/big.bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=slave,
        )
        os.close(slave)
        slave = -1
        try:
            output = b""
            while True:
                ready, _, _ = select.select([master], [], [], RUN_TIMEOUT)
                assert ready, "no output from the progress bar"
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            assert proc.wait(timeout=RUN_TIMEOUT) == 0
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=RUN_TIMEOUT)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    text = output.decode()
    assert "100%" in text
    assert "976.6 KiB / 976.6 KiB" in text  # bytes so far / Content-Length
    assert "/s" in text
    assert target.read_bytes() == BIG


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_verbose_shows_heads(static_server: Server, http2: bool) -> None:
    flags = ["--http2"] if http2 else []
    done = get("-v", *flags, static_server.url + "/hello.txt")
    assert done.returncode == 0
    assert done.stdout == b"Hello, files!\n"
    err = done.stderr.decode().splitlines()
    authority = static_server.url.removeprefix("http://")
    if http2:
        assert err[0] == "> GET /hello.txt HTTP/2"
        assert f"> :authority: {authority}" in err
        assert "< HTTP/2 200" in err
    else:
        assert err[0] == "> GET /hello.txt HTTP/1.1"
        assert f"> host: {authority}" in err
        assert "< HTTP/1.1 200 OK" in err
    assert "< content-length: 14" in err
    assert ">" in err
    assert err[-1] == "<"


def test_data_headers_and_method_to_echo(echo_server: Server, backend: str, tmp_path: Path) -> None:
    posted = get(
        "-d",
        "a=1&b=2",
        "-H",
        "X-One: 1",
        "-H",
        "X-Two: two",
        echo_server.url + "/p?q",
        backend=backend,
    )
    assert posted.returncode == 0
    head, _, body = posted.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /p?q HTTP/1.1"
    assert {"X-One: 1", "X-Two: two", "content-length: 7"} <= set(lines)
    assert body == b"a=1&b=2"

    upload = tmp_path / "upload.bin"
    upload.write_bytes(BIG)
    put = get("-X", "PUT", "--http2", "-d", f"@{upload}", echo_server.url + "/up", backend=backend)
    assert put.returncode == 0
    head, _, body = put.stdout.partition(b"\r\n\r\n")
    assert head.decode().split("\r\n")[0] == "PUT /up HTTP/2"
    assert body == BIG

    piped = get("-d", "@-", echo_server.url + "/stdin", stdin=b"from stdin")
    assert piped.returncode == 0
    assert piped.stdout.endswith(b"\r\n\r\nfrom stdin")
    assert b"transfer-encoding: chunked" in piped.stdout


def test_exit_1_on_http_error_body_still_written(static_server: Server, tmp_path: Path) -> None:
    done = get(static_server.url + "/missing")
    assert done.returncode == 1
    assert done.stdout == b"404 Not Found\n"
    target = tmp_path / "error.txt"
    saved = get("-o", str(target), static_server.url + "/missing")
    assert saved.returncode == 1
    assert target.read_bytes() == b"404 Not Found\n"
    assert b"404" in saved.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cacert", "/nonexistent/ca.pem", "https://example.com/"], b"--cacert"),
        (["not a url"], b"not a URL"),
        (["ftp://example.com/"], b"http://"),
        (["-H", "no colon", "http://127.0.0.1:1/"], b"Name: value"),
        (["--max-time", "-1", "http://127.0.0.1:1/"], b"positive"),
        ([], b"URL"),
    ],
)
def test_exit_2_on_usage_errors(args: list[str], message: bytes) -> None:
    done = get(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == b""


def test_exit_3_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        done = get(f"http://127.0.0.1:{port}/")
    assert done.returncode == 3
    assert b"cannot connect" in done.stderr


def test_exit_4_on_a_malformed_response() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(RUN_TIMEOUT)

        def garbage() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"this is not HTTP\r\n\r\n")

        thread = threading.Thread(target=garbage)
        thread.start()
        try:
            done = get(f"http://127.0.0.1:{listener.getsockname()[1]}/")
        finally:
            thread.join(RUN_TIMEOUT)
    assert done.returncode == 4
    assert b"ParseError" in done.stderr


def test_exit_5_on_local_files(static_server: Server, tmp_path: Path) -> None:
    missing = get("-d", f"@{tmp_path / 'missing'}", static_server.url + "/hello.txt")
    assert missing.returncode == 5
    assert b"cannot read" in missing.stderr
    unwritable = get("-o", str(tmp_path / "no" / "such" / "dir"), static_server.url + "/hello.txt")
    assert unwritable.returncode == 5
    assert b"cannot write" in unwritable.stderr


def test_curl_http1_and_h2c_on_one_port(static_server: Server) -> None:
    assert CURL is not None, "curl is required (CI installs it); these tests never skip"
    url = static_server.url + "/big.bin"
    for flag in ("--http1.1", "--http2-prior-knowledge"):
        done = subprocess.run(
            [CURL, "-sS", "-D", "-", "-o", "/dev/null", flag, url],
            capture_output=True,
            timeout=RUN_TIMEOUT,
            check=True,
        )
        head = done.stdout.decode().lower()
        expected = "http/2 200" if flag.startswith("--http2") else "http/1.1 200 ok"
        assert head.startswith(expected), head
        body = subprocess.run(
            [CURL, "-sS", flag, url], capture_output=True, timeout=RUN_TIMEOUT, check=True
        )
        assert body.stdout == BIG
        ranged = subprocess.run(
            [CURL, "-sS", flag, "-r", "10-19", url],
            capture_output=True,
            timeout=RUN_TIMEOUT,
            check=True,
        )
        assert ranged.stdout == BIG[10:20]


def test_curl_echo(echo_server: Server) -> None:
    assert CURL is not None, "curl is required (CI installs it); these tests never skip"
    done = subprocess.run(
        [CURL, "-sS", "--http2-prior-knowledge", "-d", "hi there", echo_server.url + "/x"],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    assert done.stdout.startswith(b"POST /x HTTP/2\r\n")
    assert done.stdout.endswith(b"\r\n\r\nhi there")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly(site: Path, backend: str, sig: int) -> None:
    server = start_server([str(site), "--port", "0"], backend)
    try:
        assert get(server.url + "/hello.txt").returncode == 0
        assert stop_server(server.proc, sig) == 0
    finally:
        stop_server(server.proc)


def test_unix_socket(site: Path, tmp_path: Path, backend: str) -> None:
    assert CURL is not None, "curl is required (CI installs it); these tests never skip"
    path = str(tmp_path / "s.sock")
    server = start_server([str(site), "--uds", path], backend)
    try:
        assert server.line.startswith(f"listening on unix:{path}")
        done = subprocess.run(
            [CURL, "-sS", "--unix-socket", path, "http://localhost/hello.txt"],
            capture_output=True,
            timeout=RUN_TIMEOUT,
            check=True,
        )
        assert done.stdout == b"Hello, files!\n"
    finally:
        stop_server(server.proc)


@pytest.mark.parametrize("mode", ["1", "2"])
def test_http_mode_restricts_the_protocol(site: Path, mode: str) -> None:
    server = start_server([str(site), "--port", "0", "--http", mode], "asyncio")
    try:
        h1 = get("--max-time", "10", server.url + "/hello.txt")
        h2 = get("--max-time", "10", "--http2", server.url + "/hello.txt")
    finally:
        stop_server(server.proc)
    ok, refused = (h1, h2) if mode == "1" else (h2, h1)
    assert (ok.returncode, ok.stdout) == (0, b"Hello, files!\n")
    assert refused.returncode == 4


def test_serve_exits_1_when_the_port_is_taken(static_server: Server) -> None:
    port = static_server.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "hyper_util", "serve", "--port", port],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert b"cannot listen" in done.stderr
    assert done.stdout == b""


def test_serve_rejects_a_file_as_dir(site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hyper_util", "serve", str(site / "hello.txt")],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert b"not a directory" in done.stderr


def test_help_mentions_exit_statuses() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hyper_util", "get", "--help"],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    assert b"exit status" in done.stdout
    assert b"--http2" in done.stdout


def test_curl_h2c_upgrade(static_server: Server) -> None:
    """``curl --http2`` asks for ``Upgrade: h2c``; auto mode honours it."""
    assert CURL is not None, "curl is required (CI installs it); these tests never skip"
    done = subprocess.run(
        [CURL, "-sS", "-D", "-", "--http2", static_server.url + "/hello.txt"],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    text = done.stdout.decode()
    assert text.startswith("HTTP/1.1 101")
    assert "HTTP/2 200" in text
    assert text.endswith("Hello, files!\n")


def test_in_flight_request_finishes_after_sigterm(backend: str) -> None:
    server = start_server(["--port", "0"], backend)
    try:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=RUN_TIMEOUT) as sock:
            sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf ")
            # The echo service has answered the head and is streaming the body:
            # the request is in flight when the signal arrives.
            received = sock.recv(65536)
            assert received.startswith(b"HTTP/1.1 200 OK\r\n")
            os.kill(server.proc.pid, signal.SIGTERM)
            # Give the signal time to land while the request is still open.
            time.sleep(0.5)
            sock.sendall(b"done!")
            while not received.endswith(b"half done!"):
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            # The head went out before the signal; after the body, the
            # connection is closed instead of kept alive.
            assert sock.recv(65536) == b""
        assert server.proc.wait(timeout=RUN_TIMEOUT) == 0
    finally:
        stop_server(server.proc)


def test_access_log(site: Path) -> None:
    server = start_server([str(site), "--port", "0", "--access-log"], "asyncio")
    try:
        assert get(server.url + "/hello.txt").returncode == 0
        assert get(server.url + "/missing").returncode == 1
    finally:
        status, err = stop_server_output(server.proc, signal.SIGTERM)
    assert status == 0
    lines = err.decode().splitlines()
    assert any('"GET /hello.txt HTTP/1.1" 200' in line for line in lines), lines
    assert any('"GET /missing HTTP/1.1" 404' in line for line in lines), lines


def spawned_workers(pid: int) -> list[int]:
    """The worker processes (multiprocessing's spawn children) of a supervisor."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(child) for child in f.read().split()]
    workers = []
    for child in children:
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{child}/cmdline", "rb") as f:
            if b"spawn_main" in f.read():
                workers.append(child)
    return workers


def test_workers_share_the_port(site: Path, backend: str) -> None:
    server = start_server([str(site), "--port", "0", "--workers", "2"], backend)
    try:
        assert server.line.rstrip().endswith("(HTTP/1.1 and HTTP/2 (h2c), 2 workers)")
        for http2 in ([], ["--http2"]):
            done = get(*http2, "--max-time", "20", server.url + "/hello.txt")
            assert (done.returncode, done.stdout) == (0, b"Hello, files!\n")
        assert len(spawned_workers(server.proc.pid)) == 2
        code, err = stop_server_output(server.proc, signal.SIGTERM)
        assert code == 0, err
    finally:
        stop_server(server.proc)


def test_inherited_socket_with_fd(site: Path) -> None:
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    port = bound.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyper_util", "serve", str(site), "--fd", str(bound.fileno())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=[bound.fileno()],
    )
    bound.close()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith(f"listening on http://127.0.0.1:{port} "), line
        done = get(f"http://127.0.0.1:{port}/hello.txt")
        assert (done.returncode, done.stdout) == (0, b"Hello, files!\n")
        assert stop_server(proc, signal.SIGTERM) == 0
    finally:
        stop_server(proc)
