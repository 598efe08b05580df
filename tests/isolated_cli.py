"""The command line without hyper-tls (run by ``nox -s isolated`` for hyper-util).

hyper-util does not depend on hyper-tls: in a virtualenv with only hyper-core
and hyper-util, ``get https://...`` and ``serve --certfile`` must each fail
with exit status 2 and one line on stderr that says what to install.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys


def check(*argv: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hyper_util", *argv], capture_output=True, timeout=30, check=False
    )
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 2, (argv, done.returncode, lines)
    assert len(lines) == 1, (argv, lines)
    assert "pip install hyper-tls" in lines[0], (argv, lines)
    print(f"{' '.join(argv)}: exit 2, {lines[0]!r}")


def main() -> None:
    assert importlib.util.find_spec("hyper_tls") is None, "hyper-tls is installed here"
    check("get", "https://localhost:1/")
    check("serve", "--port", "0", "--certfile", "cert.pem", "--keyfile", "key.pem")


if __name__ == "__main__":
    main()
