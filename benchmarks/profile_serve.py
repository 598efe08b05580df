"""Where serve()'s time goes under load: py-spy samples of the server, as self and total shares.

What belongs here: one profiling run of ``servers/hyper_serve.py`` under
wrk, and the tables of benchmarks/PROFILE.md. Processes and wrk come from
``_harness.py``.

Strategy: the server is pinned to the server CPU and loaded by ``wrk -t1
-c64`` on the other for a warm-up, then ``py-spy record --format raw``
samples it (``--rate`` per second, ``--native`` off, the idle frames of the
event loop's ``select`` kept, so the shares add up to the whole run) while
wrk goes on. The collapsed stacks are summed per function: "self" is the
share of samples in which the function was running, "total" the share in
which it was anywhere on the stack. ``--python`` profiles another build
(the compiled one: its compiled functions show as native frames, which
py-spy cannot see; their time lands on their nearest Python caller).

Run: ``flock /tmp/bench.lock .venv/bin/python benchmarks/profile_serve.py
[--workload hello] [--loop asyncio] [--seconds 15] [--top 25]``.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _harness import (
    HOST,
    PYTHON,
    SERVERS_DIR,
    STARTUP_TIMEOUT,
    banner,
    fail,
    free_port,
    pinned,
    run_wrk,
    server_log,
    start_server,
    stop,
    wait_until_accepting,
    wrk_script,
)

PATHS = {"hello": "/", "headers": "/headers", "upload": "/upload"}


def short(frame: str) -> str:
    """``function (path/file.py:line)`` as ``file.py:function``, without the line."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    parts = Path(path).parts
    for anchor in ("site-packages", "src", "python3.11", "python3.12", "python3.13"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    return f"{'/'.join(parts[-3:])}:{name}"


def aggregate(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    total = 0
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if "threading.py" in stack:
            continue  # an idle worker thread (the default executor), not the event loop
        frames = [short(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return total, own, inclusive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=list(PATHS), default="hello")
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of sampling")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--python", default=PYTHON, help="the interpreter that runs the server")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(spy).exists():
        fail("py-spy is not installed (uv sync --group bench)")
    print(banner(f"--workload {args.workload} --loop {args.loop}", python=args.python))
    port = free_port()
    url = f"http://{HOST}:{port}{PATHS[args.workload]}"
    command = [args.python, str(SERVERS_DIR / "hyper_serve.py"), "--port", str(port)]
    with tempfile.TemporaryDirectory() as tmp, server_log("profile") as log:
        body = 16384 if args.workload == "upload" else 0
        script = wrk_script(tmp, args.workload, "POST" if body else "GET", body)
        proc = start_server([*pinned(1), *command, "--loop", args.loop], log)
        try:
            wait_until_accepting(proc, port, time.monotonic() + STARTUP_TIMEOUT)
            run_wrk(url, 2, connections=64, cpu=0, script=script)  # warm-up
            load = threading.Thread(
                target=run_wrk,
                args=(url, args.seconds + 4),
                kwargs={"connections": 64, "cpu": 0, "script": script},
            )
            load.start()
            time.sleep(1)
            out = Path(tmp) / "stacks.txt"
            subprocess.run(
                [spy, "record", "--pid", str(proc.pid), "--rate", str(args.rate),
                 "--duration", str(args.seconds), "--format", "raw", "--idle",
                 "--output", str(out)],
                check=True, capture_output=True, timeout=args.seconds + 60,
            )  # fmt: skip
            load.join(args.seconds + 30)
            raw = out.read_text()
        finally:
            stop(proc)
    total, own, inclusive = aggregate(raw)
    print(
        f"{total} samples of the event loop's thread at {args.rate}/s over {args.seconds} s, "
        "server pinned to CPU 1, wrk -t1 -c64 on CPU 0"
    )
    print(f"\n{'self':>6}  function (top {args.top} by own time)")
    for frame, count in own.most_common(args.top):
        print(f"{100 * count / total:>5.1f}%  {frame}")
    print(f"\n{'total':>6}  function (top {args.top} by time on the stack)")
    for frame, count in inclusive.most_common(args.top):
        print(f"{100 * count / total:>5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
