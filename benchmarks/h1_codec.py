"""HTTP/1 codec cost per request cycle, with no I/O: native codec, h11 codec, bare h11.

What belongs here: the micro-benchmark behind the choice of the default
HTTP/1 codec. One server cycle is: receive a 4-field GET, read its head and
end, send a 200 response with a 13-byte body (one ``send_message``), start
the next cycle. ``bare-h11`` does the same work on an ``h11.Connection``
with no hyper code around it (three ``send`` calls, as h11 requires).

Strategy: each implementation runs ``--cycles`` cycles after a warm-up, in
``--rounds`` interleaved rounds in this process; the best round is kept
(the least disturbed by other load). CPU time, not wall time.

Run: ``.venv/bin/python benchmarks/h1_codec.py [--cycles 20000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import h11

from hyper_core.proto.h1 import EndOfMessage, RequestHead, ResponseHead, Role, new_codec

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
BODY = b"Hello, World!"
FIELDS = [(b"content-type", b"text/plain")]


def hyper_cycle(impl: str) -> Callable[[], None]:
    codec = new_codec(Role.SERVER, auto_date_header=True, impl=impl)

    def cycle() -> None:
        codec.receive_data(REQUEST)
        assert type(codec.next_event()) is RequestHead
        assert type(codec.next_event()) is EndOfMessage
        codec.send_message(ResponseHead(200, b"OK", b"1.1", list(FIELDS)), BODY)
        codec.start_next_cycle()

    return cycle


def bare_h11_cycle() -> Callable[[], None]:
    conn = h11.Connection(h11.SERVER)
    headers = [("content-type", "text/plain"), ("content-length", str(len(BODY)))]

    def cycle() -> None:
        conn.receive_data(REQUEST)
        assert type(conn.next_event()) is h11.Request
        assert type(conn.next_event()) is h11.EndOfMessage
        conn.send(h11.Response(status_code=200, headers=headers))
        conn.send(h11.Data(data=BODY))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()

    return cycle


def measure(cycle: Callable[[], None], cycles: int) -> float:
    """CPU microseconds per cycle over ``cycles`` cycles."""
    start = time.process_time()
    for _ in range(cycles):
        cycle()
    return (time.process_time() - start) / cycles * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    makers: dict[str, Callable[[], Callable[[], None]]] = {
        "native": lambda: hyper_cycle("native"),
        "h11-codec": lambda: hyper_cycle("h11"),
        "bare-h11": bare_h11_cycle,
    }
    cycles = {name: make() for name, make in makers.items()}
    for cycle in cycles.values():
        measure(cycle, min(2_000, args.cycles))  # warm-up
    best = {name: float("inf") for name in cycles}
    for _ in range(args.rounds):
        for name, cycle in cycles.items():
            best[name] = min(best[name], measure(cycle, args.cycles))
    print(f"CPU per request cycle, best of {args.rounds} rounds of {args.cycles}:")
    for name, micros in best.items():
        print(f"  {name:<10} {micros:7.1f} us   ({micros / best['bare-h11']:.2f}x bare h11)")


if __name__ == "__main__":
    main()
