"""``examples/https_server.py`` and ``examples/https_client.py``, run as users run them.

What belongs here: one test that starts the server example with trustme
files, fetches from it with the client example on HTTP/2 and HTTP/1.1,
swaps the certificate files and sends SIGHUP (the reload), checks that the
client example refuses the old CA with ``UnknownCaError``, and stops the
server with SIGTERM (exit status 0).

Strategy: real processes; the server's PID is the only one signalled.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from tls_helpers import CertFiles, write_leaf

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
#: Seconds for any child process step.
TIMEOUT = 30


def read_line(proc: subprocess.Popen[bytes], pipe_name: str) -> str:
    pipe = getattr(proc, pipe_name)
    ready, _, _ = select.select([pipe], [], [], TIMEOUT)
    assert ready, f"no line on {pipe_name} in time"
    return str(pipe.readline().decode())


def client(url: str, cafile: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, str(EXAMPLES / "https_client.py"), "--cacert", str(cafile), *extra, url]
    return subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_https_examples(certs: CertFiles, tmp_path: Path, backend: str) -> None:
    certfile, keyfile = tmp_path / "server.pem", tmp_path / "server.key"
    certfile.write_bytes(certs.certfile.read_bytes())
    keyfile.write_bytes(certs.keyfile.read_bytes())
    argv = [sys.executable, str(EXAMPLES / "https_server.py"), "--port", "0", "--backend",
            backend, "--certfile", str(certfile), "--keyfile", str(keyfile)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = read_line(proc, "stdout")
        assert line.startswith("listening on https://127.0.0.1:"), line
        url = line.split()[2].replace("127.0.0.1", "localhost") + "/"

        h2 = client(url, certs.cafile)
        assert h2.returncode == 0, h2.stderr
        assert h2.stdout == b"Hello over HTTP/2!\n"
        assert b"(ALPN h2)" in h2.stderr
        h1 = client(url, certs.cafile, "--http1")
        assert h1.stdout == b"Hello over HTTP/1.1!\n"

        new_ca = trustme.CA()
        write_leaf(new_ca.issue_cert("localhost"), tmp_path, "server")
        new_cafile = tmp_path / "new-ca.pem"
        new_cafile.write_bytes(new_ca.cert_pem.bytes())
        proc.send_signal(signal.SIGHUP)
        assert read_line(proc, "stderr").strip() == "certificate reloaded"
        assert client(url, new_cafile).stdout == b"Hello over HTTP/2!\n"
        refused = client(url, certs.cafile)
        assert refused.returncode == 1
        assert b"UnknownCaError" in refused.stderr
        assert b"localhost" in refused.stderr

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
