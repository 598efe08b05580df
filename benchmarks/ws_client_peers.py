"""WebSocket clients side by side: hyper_util.ws against websockets and aiohttp.

What belongs here: one server (``python -m hyper_util run`` with
``servers/asgi_app.py``'s echo on ``/ws``, uvloop, pinned to one CPU) and each
client in its own process pinned to the other CPU, doing the same work in
turn, so that the rows compare clients and not servers:

* ``echo``: ``--connections`` WebSockets, each sending a ``--size``-byte text
  message and waiting for its echo, over and over;
* ``bulk``: one WebSocket sending 64 KiB binary messages and reading each
  echo back (throughput, in MiB/s each way).

After ``--warmup`` seconds the count and the client process's CPU time are
read, again ``--duration`` seconds later. Reported: messages per second, and
client CPU microseconds per message (the server is another process, so this
is the client's own cost). Compression and keep-alive pings are off for
every client. Ratios are against ``websockets`` in the same run.

Run (take the lock; other benchmarks must not overlap)::

    flock /tmp/bench.lock .venv/bin/python benchmarks/ws_client_peers.py
    .venv/bin/python benchmarks/ws_client_peers.py --duration 3 --only hyper-uvloop,websockets
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _harness import free_port, pinned, stop, wait_until_accepting  # noqa: E402

PYTHON = sys.executable
HOST = "127.0.0.1"
BULK = 65536
# name -> (library, anyio backend, backend options)
CLIENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "hyper-asyncio": ("hyper", "asyncio", {}),
    "hyper-uvloop": ("hyper", "asyncio", {"use_uvloop": True}),
    "hyper-trio": ("hyper", "trio", {}),
    "websockets": ("websockets", "asyncio", {"use_uvloop": True}),
    "aiohttp": ("aiohttp", "asyncio", {"use_uvloop": True}),
}

Send = Callable[[Any], Awaitable[None]]
Receive = Callable[[], Awaitable[Any]]


@asynccontextmanager
async def hyper_session(url: str) -> AsyncIterator[tuple[Send, Receive]]:
    from hyper_util.ws import connect

    async with connect(
        url, per_message_deflate=False, ping_interval=None, max_message_size=2**20
    ) as ws:
        yield ws.send, ws.receive


@asynccontextmanager
async def websockets_session(url: str) -> AsyncIterator[tuple[Send, Receive]]:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, ping_interval=None, max_size=2**20) as ws:
        yield ws.send, ws.recv


@asynccontextmanager
async def aiohttp_session(url: str) -> AsyncIterator[tuple[Send, Receive]]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, compress=0, autoping=True, max_msg_size=2**20) as ws,
    ):

        async def send(message: Any) -> None:
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)

        async def receive() -> Any:
            return (await ws.receive()).data

        yield send, receive


SESSIONS = {"hyper": hyper_session, "websockets": websockets_session, "aiohttp": aiohttp_session}


async def measure(library: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    """Run one scenario in this process; return messages, seconds and CPU seconds."""
    session = SESSIONS[library]
    bulk = args.scenario == "bulk"
    payload: Any = bytes(BULK) if bulk else "x" * args.size
    count = [0]
    errors = [0]
    stop_event = anyio.Event()

    async def loop() -> None:
        async with session(url) as (send, receive):
            while not stop_event.is_set():
                await send(payload)
                if await receive() != payload:
                    errors[0] += 1
                count[0] += 1

    async with anyio.create_task_group() as tg:
        for _ in range(1 if bulk else args.connections):
            tg.start_soon(loop)
        await anyio.sleep(args.warmup)
        start_count, start_clock, start_cpu = count[0], time.perf_counter(), time.process_time()
        await anyio.sleep(args.duration)
        messages = count[0] - start_count
        seconds = time.perf_counter() - start_clock
        cpu = time.process_time() - start_cpu
        stop_event.set()
    return {"messages": messages, "seconds": seconds, "cpu": cpu, "errors": errors[0]}


def run_client(name: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    """Run one client in its own process on CPU 0; return its JSON line."""
    command = [
        *pinned(0, 0), PYTHON, __file__, "--child", name, "--url", url,
        "--scenario", args.scenario, "--connections", str(args.connections),
        "--size", str(args.size), "--warmup", str(args.warmup), "--duration", str(args.duration),
    ]  # fmt: skip
    timeout = args.warmup + args.duration + 60
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr.strip()[-500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def report(scenario: str, results: dict[str, dict[str, float]]) -> None:
    base = results.get("websockets")
    print(f"\n{scenario}: ", end="")
    if scenario == "bulk":
        print("1 WebSocket, 64 KiB binary messages echoed")
    else:
        print("WebSockets each echoing one text message at a time")
    print(f"{'client':<15} {'msg/s':>9} {'MiB/s':>7} {'CPU us/msg':>11} {'vs websockets':>14}")
    for name, r in results.items():
        rate = r["messages"] / r["seconds"]
        mib = rate * BULK / 2**20 if scenario == "bulk" else 0.0
        cpu_us = r["cpu"] / max(r["messages"], 1) * 1e6
        ratio = ""
        if base is not None and base["messages"]:
            ratio = f"{rate / (base['messages'] / base['seconds']):.2f}x"
        errors = f"  ({int(r['errors'])} errors)" if r["errors"] else ""
        mib_text = f"{mib:7.1f}" if scenario == "bulk" else f"{'':>7}"
        print(f"{name:<15} {rate:9.0f} {mib_text} {cpu_us:11.1f} {ratio:>14}{errors}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", help="comma-separated client names (default: all)")
    parser.add_argument("--scenarios", default="echo,bulk")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", default="echo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        library, backend, options = CLIENTS[args.child]
        result = anyio.run(
            measure, library, args.url, args, backend=backend, backend_options=options
        )
        print(json.dumps(result))
        return 0
    names = args.only.split(",") if args.only else list(CLIENTS)
    port = free_port()
    command = [
        *pinned(1, 0), PYTHON, "-m", "hyper_util", "run",
        "--app-dir", str(BENCH / "servers"), "asgi_app:app",
        "--host", HOST, "--port", str(port), "--loop", "uvloop",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_until_accepting(server, port, time.monotonic() + 30)
        url = f"ws://{HOST}:{port}/ws"
        for scenario in args.scenarios.split(","):
            args.scenario = scenario
            results = {name: run_client(name, url, args) for name in names}
            report(scenario, results)
    finally:
        stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
