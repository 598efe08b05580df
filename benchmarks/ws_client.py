"""WebSocket echo load: N connections, each sending a small message and waiting for its echo.

What belongs here: the one WebSocket client ``asgi.py`` runs against every
server, so that messages/s compare servers and not clients.

Strategy: the ``websockets`` library's asyncio client (its C speed-ups mask
the frames), on uvloop when it is installed, permessage-deflate off (not
every server has it, and compression is not what is measured), pings off.
Every connection does one round trip at a time: send a text message of
``--size`` bytes, wait for the echo, check it, repeat. After ``--warmup``
seconds the message count and the clock are read, again ``--duration``
seconds later, and the connections are closed (``--marks`` prints
``WS_START`` and ``WS_END`` at those two moments, so a caller can read
CPU times around the window). One line is printed:
``WS_JSON {...}`` with the messages echoed in the measured window, its
length in microseconds, the errors (a wrong echo, a closed connection), and
round-trip latency percentiles in microseconds. The whole run is bounded by
``--warmup + --duration + 15`` seconds.

Run: ``python ws_client.py ws://127.0.0.1:8000/ws [--connections 20]
[--duration 10] [--warmup 2] [--size 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

# Seconds past warmup + duration after which the run gives up.
GRACE = 15.0
# Seconds allowed to open each connection.
OPEN_TIMEOUT = 10.0


@dataclass
class Counts:
    messages: int = 0
    errors: int = 0
    measuring: bool = False
    latencies: list[float] = field(default_factory=list)


async def echo_loop(url: str, payload: str, counts: Counts, stop: asyncio.Event) -> None:
    try:
        async with connect(
            url,
            compression=None,
            ping_interval=None,
            open_timeout=OPEN_TIMEOUT,
            max_size=2**20,
        ) as ws:
            clock = time.perf_counter
            while not stop.is_set():
                started = clock()
                await ws.send(payload)
                echoed = await ws.recv()
                if echoed != payload:
                    counts.errors += 1
                    return
                counts.messages += 1
                if counts.measuring:
                    counts.latencies.append(clock() - started)
    except (TimeoutError, OSError, WebSocketException):
        if not stop.is_set():
            counts.errors += 1


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run(args: argparse.Namespace) -> dict[str, float]:
    counts = Counts()
    stop = asyncio.Event()
    payload = "x" * args.size
    tasks = [
        asyncio.create_task(echo_loop(args.url, payload, counts, stop))
        for _ in range(args.connections)
    ]
    await asyncio.sleep(args.warmup)
    counts.measuring = True
    first, started = counts.messages, time.perf_counter()
    if args.marks:
        print("WS_START", flush=True)
    await asyncio.sleep(args.duration)
    last, ended = counts.messages, time.perf_counter()
    if args.marks:
        print("WS_END", flush=True)
    counts.measuring = False
    stop.set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(GRACE):
            await asyncio.gather(*tasks, return_exceptions=True)
    latencies = sorted(counts.latencies)
    report = {
        "messages": last - first,
        "duration_us": (ended - started) * 1e6,
        "errors": counts.errors,
        "connections": args.connections,
        "latency_mean_us": statistics.fmean(latencies) * 1e6 if latencies else 0.0,
    }
    for p in (50, 90, 99):
        report[f"latency_p{p}_us"] = percentile(latencies, p) * 1e6
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=32, help="message size, bytes (text)")
    parser.add_argument(
        "--marks",
        action="store_true",
        help="print WS_START and WS_END when the measured window opens and closes",
    )
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the test group
        report = asyncio.run(run(args))
    else:
        report = uvloop.run(run(args))
    print("WS_JSON " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
