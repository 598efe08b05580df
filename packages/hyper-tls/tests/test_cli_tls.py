"""``python -m hyper_util get https://...`` and ``serve --certfile/--keyfile``, as processes.

What belongs here: the command line over TLS: ``serve`` with a trustme
certificate answers curl on HTTP/1.1 and HTTP/2 (ALPN); ``get`` trusts the
system store by default (the test CA is not in it: refused, exit 3),
``--cacert`` trusts the given CA, ``--http2`` negotiates h2 by ALPN; and
without hyper-tls both commands say what to install (exit 2).

Strategy: real processes on both event loops, as ``hyper_util``'s own CLI
tests do; the server is killed by its PID. "Without hyper-tls" is a child
interpreter where ``sys.modules["hyper_tls"] = None`` makes the import fail.
"""

from __future__ import annotations

import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tls_helpers import CertFiles

#: Seconds for any child process (start-up included).
TIMEOUT = 30


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def https_server(certs: CertFiles, tmp_path: Path, backend: str) -> Iterator[str]:
    (tmp_path / "hello.txt").write_bytes(b"hello over TLS\n")
    argv = [
        sys.executable, "-m", "hyper_util", "serve", "--backend", backend, "--port", "0",
        "--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile), str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        assert ready, "serve did not print its address in time"
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on https://127.0.0.1:"), line
        assert "ALPN h2 and http/1.1" in line
        yield line.split()[2].replace("127.0.0.1", "localhost")
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def run(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), capture_output=True, timeout=TIMEOUT, check=False)


def get(*args: str, backend: str = "asyncio") -> subprocess.CompletedProcess[bytes]:
    return run(sys.executable, "-m", "hyper_util", "get", "--backend", backend, *args)


@pytest.mark.parametrize("flag", ["--http1.1", "--http2"])
def test_curl_against_serve_with_certfile(certs: CertFiles, https_server: str, flag: str) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is required"
    done = run(curl, "-sS", "-w", "%{http_version}", flag, "--cacert", str(certs.cafile),
               https_server + "/hello.txt")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hello over TLS\n" + (b"2" if flag == "--http2" else b"1.1")


def test_get_with_cacert_on_http1_and_http2(
    certs: CertFiles, https_server: str, backend: str
) -> None:
    url = https_server + "/hello.txt"
    plain = get("-v", "--cacert", str(certs.cafile), url, backend=backend)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == b"hello over TLS\n"
    assert b"< HTTP/1.1 200" in plain.stderr
    h2 = get("-v", "--http2", "--cacert", str(certs.cafile), url, backend=backend)
    assert h2.returncode == 0, h2.stderr
    assert h2.stdout == b"hello over TLS\n"
    assert b"< HTTP/2 200" in h2.stderr


def test_get_verifies_against_the_system_store_by_default(https_server: str) -> None:
    done = get(https_server + "/hello.txt")
    assert done.returncode == 3
    assert b"not issued by a trusted CA" in done.stderr
    assert done.stdout == b""


def test_bad_cacert_is_a_usage_error(tmp_path: Path) -> None:
    done = get("--cacert", str(tmp_path / "missing.pem"), "https://localhost:1/")
    assert done.returncode == 2
    assert b"--cacert" in done.stderr


def test_without_hyper_tls_the_commands_say_what_to_install(certs: CertFiles) -> None:
    code = (
        "import sys; sys.modules['hyper_tls'] = None\n"
        "from hyper_util.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    fetch = run(sys.executable, "-c", code, "get", "https://localhost:1/")
    assert fetch.returncode == 2
    assert b"pip install hyper-tls" in fetch.stderr
    served = run(sys.executable, "-c", code, "serve", "--certfile", str(certs.certfile))
    assert served.returncode == 2
    assert b"pip install hyper-tls" in served.stderr
