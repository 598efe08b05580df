"""The command-line half of the README's demo: ``python -m hyper_util``.

Run it with hyper-core and hyper-util installed::

    python examples/cli_demo.py

It starts ``python -m hyper_util serve`` (the echo service, HTTP/1.1 and
HTTP/2 on one port) on a free port, fetches from it with
``python -m hyper_util get`` over HTTP/1.1 and then over HTTP/2 with prior
knowledge, shows what each printed, and stops the server with SIGTERM, which
it answers with a graceful shutdown.
"""

from __future__ import annotations

import signal
import subprocess
import sys

TIMEOUT = 30.0  # seconds for any one step: the demo never hangs


def run_cli(*args: str) -> None:
    """Run one ``python -m hyper_util`` command and show what it printed."""
    print(f"$ python -m hyper_util {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "hyper_util", *args],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    sys.stdout.write(result.stderr.decode())
    sys.stdout.write(result.stdout.decode())
    print(flush=True)
    if result.returncode != 0:
        raise SystemExit(f"exit status {result.returncode}")


def main() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "hyper_util", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        # The server prints one line once it accepts connections:
        # "listening on http://127.0.0.1:PORT (...)".
        line = server.stdout.readline().decode()
        if not line.startswith("listening on "):
            raise SystemExit(f"server did not start: {line!r}")
        url = line.split()[2] + "/hello?from=cli"
        print(f"$ python -m hyper_util serve --port 0\n{line}", flush=True)
        run_cli("get", "-v", url)
        run_cli("get", "-v", "--http2", "-d", "echo me over HTTP/2", url)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(f"server stopped (exit status {server.returncode})")


if __name__ == "__main__":
    main()
