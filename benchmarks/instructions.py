"""Instructions a server spends per request, counted under cachegrind.

What belongs here: a before/after gate for changes to the serving path that
wall-clock benchmarks cannot resolve on a shared or virtual machine (their
rounds swing by 10% there). Each server of ``benchmarks/servers`` runs under
``valgrind --tool=cachegrind`` twice, serving ``--small`` and then
``--large`` requests from h2load; the difference in instructions divided by
the difference in requests is the cost of one request, without the
start-up and shutdown. Instruction counts do not depend on the machine's
load, so two trees can be compared while other work runs.

Strategy: ``--tree`` may be given several times (each with its own
``.venv``, e.g. a worktree of the old commit): every tree runs the same
servers with its own scripts, and the table gives each tree's count and its
ratio to the first tree's. HTTP/1 is ``hyper_serve.py`` over ``h2load
--h1`` with 4 connections: ``run.py``'s three workloads on asyncio
(``http1-hello``, ``http1-headers``, ``http1-upload``) and hello on uvloop;
a tree's ``.venv`` may be a link to any virtualenv (a compiled build, say).
HTTP/2 is ``h2_hyper.py`` with 16
connections of 10 streams; ``asgi-hello`` and ``asgi-post`` are ``python -m
hyper_util run`` serving ``asgi_app.py`` (``asgi.py``'s app): ``GET /`` and
a 16 KiB ``POST /echo``, 4 connections. Needs valgrind and h2load
(nghttp2-client).

Run: ``.venv/bin/python benchmarks/instructions.py --tree /path/to/old --tree .``.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

_ASGI: Final = ("-m", "hyper_util", "run", "--app-dir", ".", "asgi_app:app", "--no-access-log")
_H1: Final = ("--h1", "-c", "4", "-m", "1")
#: A 16 KiB body for ``asgi-post`` and ``http1-upload`` (``h2load -d`` posts a file's bytes).
POST_BODY: Final = Path(tempfile.gettempdir()) / "hyper-instructions-post.bin"

#: name -> (the server's arguments after the interpreter, h2load arguments, path)
SERVERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "http1-hello": (("hyper_serve.py",), _H1, "/"),
    "http1-headers": (("hyper_serve.py",), _H1, "/headers"),
    "http1-upload": (("hyper_serve.py",), (*_H1, "-d", str(POST_BODY)), "/upload"),
    "http1-hello-uvloop": (("hyper_serve.py", "--loop", "uvloop"), _H1, "/"),
    "http2-c16m10": (("h2_hyper.py",), ("-c", "16", "-m", "10"), "/"),
    "asgi-hello": (_ASGI, _H1, "/"),
    "asgi-post": (_ASGI, (*_H1, "-d", str(POST_BODY)), "/echo"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # the interpreter starts slowly under valgrind
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the server did not listen within 120 s")


def stop(proc: subprocess.Popen[bytes]) -> bytes:
    """Stop the server (SIGINT, then SIGTERM: not every script handles both); its stderr."""
    for signum, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 120)):
        proc.send_signal(signum)
        try:
            return proc.communicate(timeout=wait)[1]
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    return proc.communicate()[1]


def count(
    tree: Path, server: tuple[str, ...], load: tuple[str, ...], path: str, requests: int
) -> int:
    """Instructions the server ran in all, serving ``requests`` requests."""
    port = free_port()
    servers = tree / "benchmarks" / "servers"
    proc = subprocess.Popen(
        [
            *("valgrind", "--tool=cachegrind", "--cache-sim=no"),
            "--cachegrind-out-file=/dev/null",
            str(tree / ".venv" / "bin" / "python"),
            *server,
            *("--port", str(port)),
        ],
        cwd=servers,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(port, proc)
        out = subprocess.run(
            ["h2load", "-n", str(requests), *load, f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        ).stdout
        if f"{requests} succeeded" not in out:
            raise RuntimeError(f"not every request succeeded:\n{out}")
    finally:
        err = stop(proc)
    match = re.search(rb"I\s+refs:\s+([\d,]+)", err)
    if match is None:
        raise RuntimeError(f"no instruction count from cachegrind:\n{err.decode()[-2000:]}")
    return int(match.group(1).replace(b",", b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", help="a checkout with a .venv")
    parser.add_argument("--only", default="", help="comma-separated names: " + ", ".join(SERVERS))
    parser.add_argument("--small", type=int, default=1000, help="requests of the first run")
    parser.add_argument("--large", type=int, default=9000, help="requests of the second run")
    args = parser.parse_args()
    trees = [t.resolve() for t in (args.tree or [Path(".")])]
    names = [n for n in args.only.split(",") if n] or list(SERVERS)
    POST_BODY.write_bytes(b"x" * 16384)
    print(f"instructions per request ({args.large} - {args.small} requests, cachegrind)")
    for name in names:
        server, load, path = SERVERS[name]
        first = 0.0
        for tree in trees:
            small = count(tree, server, load, path, args.small)
            large = count(tree, server, load, path, args.large)
            per_request = (large - small) / (args.large - args.small)
            first = first or per_request
            print(f"  {name:<14} {per_request / 1000:8.1f}k  {first / per_request:5.3f}x  {tree}")


if __name__ == "__main__":
    main()
