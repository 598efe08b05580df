"""docs/quickstart.md runs as written: the server, the client, the command line.

The page's programs and commands are taken from the page itself, in order,
and run as processes in a temporary folder with this interpreter (the
packages are installed here; ``nox -s isolated`` proves the page's pip
command installs them alone). The one change made to them is the port: the
page uses 8000, the test a free port, so it never collides with anything
else on the machine. What the page says they print is what they must print.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "quickstart.md"
TEXT = PAGE.read_text()
#: Seconds any one step may take on a loaded machine.
TIMEOUT = 20.0


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", TEXT, flags=re.DOTALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise AssertionError(f"nothing listens on port {port}")


def python_command(line: str, port: int) -> list[str]:
    """A ``.venv/bin/python ...`` line of the page, as this interpreter runs it."""
    words = line.replace("8000", str(port)).split()
    assert words[0] == ".venv/bin/python", line
    return [sys.executable, *words[1:]]


def stop(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    """Ctrl-C, as the page says; the server finishes and exits by itself."""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    return proc.returncode, out


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    server, client = blocks("python")
    (tmp_path / "server.py").write_text(server)
    (tmp_path / "client.py").write_text(client)
    return tmp_path


def test_the_page_installs_the_two_packages_it_uses() -> None:
    install = blocks("sh")[0].split("\n")
    assert install[0] == "python -m venv .venv"
    assert install[1] == ".venv/bin/pip install ./packages/hyper-core ./packages/hyper-util"


def test_server_and_client(folder: Path) -> None:
    port = free_port()
    server = (folder / "server.py").read_text()
    call = "anyio.run(serve, hello)"
    assert call in server
    (folder / "server.py").write_text(
        server.replace(call, f"anyio.run(lambda: serve(hello, port={port}))")
    )
    run_server = blocks("sh")[1].strip()
    assert run_server == ".venv/bin/python server.py"
    proc = subprocess.Popen(python_command(run_server, port), cwd=folder, stdout=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        curl = shutil.which("curl")
        assert curl is not None, "curl is required (Debian package curl)"
        said = re.search(r"`curl (http://127\.0\.0\.1:8000/\?curl)`\s+prints `([^`]+)`", TEXT)
        assert said is not None
        got = subprocess.run(
            [curl, "-sS", said[1].replace("8000", str(port))],
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
        assert got.stdout.decode() == said[2] + "\n"
        h2 = subprocess.run(
            [curl, "-sS", "--http2-prior-knowledge", f"http://127.0.0.1:{port}/?curl"],
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
        assert h2.stdout == b"Hello, curl! (HTTP/2)\n"

        client = (folder / "client.py").read_text().replace("8000", str(port))
        (folder / "client.py").write_text(client)
        done = subprocess.run(
            [sys.executable, "client.py"], cwd=folder, capture_output=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, done.stderr
        printed = blocks("text")[0]
        assert done.stdout.decode() == printed
    finally:
        status, _ = stop(proc)
    assert status == 0  # Ctrl-C is a graceful stop


def test_command_line(folder: Path) -> None:
    port = free_port()
    serve_line, *_ = blocks("sh")[2].strip().split("\n")
    proc = subprocess.Popen(
        python_command(serve_line.replace("serve", f"serve --port {port}", 1), port),
        cwd=folder,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        said = re.search(r"It prints `(listening on [^`]+)`", TEXT)
        assert said is not None
        assert line == said[1].replace("8000", str(port)) + "\n"
        plain, verbose = blocks("sh")[3].strip().split("\n")
        got = subprocess.run(python_command(plain, port), capture_output=True, timeout=TIMEOUT)
        assert got.returncode == 0, got.stderr
        assert got.stdout == (folder / "server.py").read_bytes()
        got = subprocess.run(python_command(verbose, port), capture_output=True, timeout=TIMEOUT)
        assert got.returncode == 0, got.stderr
        assert got.stdout == (folder / "client.py").read_bytes()
        assert "< HTTP/2 200" in got.stderr.decode()
    finally:
        status, _ = stop(proc)
    assert status == 0


def test_echo_service() -> None:
    said = re.search(r"`python -m hyper_util get -d hi\s+(http://[^`]+)` against `([^`]+)`", TEXT)
    assert said is not None
    assert said[2] == "python -m hyper_util serve"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyper_util", "serve", "--port", str(port)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # listening on ...
        url = said[1].replace("8000", str(port))
        got = subprocess.run(
            [sys.executable, "-m", "hyper_util", "get", "-d", "hi", url],
            capture_output=True,
            timeout=TIMEOUT,
        )
        assert got.returncode == 0, got.stderr
        assert got.stdout.startswith(b"POST /echo HTTP/1.1\r\n")
        assert got.stdout.endswith(b"\r\n\r\nhi")
    finally:
        status, _ = stop(proc)
    assert status == 0
