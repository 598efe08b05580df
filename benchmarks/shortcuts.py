"""What each HTTP/1 codec shortcut saves over the general code it skips.

What belongs here: one micro-benchmark per shortcut of the HTTP/1 codec,
the shortcut and its general twin side by side in one process, so the
figure in the architecture doc's ledger (docs/architecture.md, "Shortcuts
ledger (hyper-core)") can be measured again: the one-regex request-head
parse against the request-line parse plus the field parse, and
``send_message``'s one-step finish against ``send_head`` + ``send_data`` +
``send_end``. Each pair has an equivalence test in
``packages/hyper-core/tests/test_server_h1_fast_paths.py``. The
dispatcher's own shortcuts (the service's first step inline, the plain
answer) are measured with ``h1_server_loop.py`` against a tree without
them.

Strategy: CPU time (``time.process_time``), best of ``--rounds`` rounds,
the pairs interleaved, so a busy machine slows both sides alike.

Run: ``.venv/bin/python benchmarks/shortcuts.py [--count 100000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from hyper_core.proto.h1._codec import Role
from hyper_core.proto.h1._events import RequestHead, ResponseHead
from hyper_core.proto.h1._native_codec import NativeCodec
from hyper_core.proto.h1._parse import parse_fields, parse_request_head, parse_request_line

# A head as the codec hands it to the parser: up to the last field's CRLF.
HEAD = (
    b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\n"
    b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
)
REQUEST = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
RESPONSE = ResponseHead(200, b"OK", b"1.1", [(b"Content-Type", b"text/plain")])
BODY = b"Hello, World!"


def regex_parse() -> None:
    assert parse_request_head(HEAD, 100) is not None


def step_parse() -> None:
    _, _, _, start = parse_request_line(HEAD)
    parse_fields(HEAD, start, 100)


def served(finish: Callable[[NativeCodec], None]) -> Callable[[], None]:
    """One request cycle on a server codec, the response written by ``finish``."""
    codec = NativeCodec(Role.SERVER)

    def cycle() -> None:
        codec.receive_data(REQUEST)
        assert type(codec.next_event()) is RequestHead
        codec.next_event()  # the EndOfMessage
        finish(codec)
        codec.start_next_cycle()

    return cycle


def one_step(codec: NativeCodec) -> None:
    codec.send_message(RESPONSE, BODY)


def long_way(codec: NativeCodec) -> None:
    codec.send_head(RESPONSE, len(BODY))
    codec.send_data(BODY)
    codec.send_end()


def measure(work: Callable[[], None], count: int) -> float:
    """CPU microseconds per call over ``count`` calls."""
    start = time.process_time()
    for _ in range(count):
        work()
    return (time.process_time() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pairs: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        "request head: one regex / line + fields": (regex_parse, step_parse),
        "response cycle: send_message / head + data + end": (served(one_step), served(long_way)),
    }
    print(f"CPU per call, best of {args.rounds} rounds of {args.count}:")
    for name, (shortcut, general) in pairs.items():
        measure(shortcut, min(2_000, args.count))  # warm-up
        measure(general, min(2_000, args.count))
        fast = slow = float("inf")
        for _ in range(args.rounds):
            fast = min(fast, measure(shortcut, args.count))
            slow = min(slow, measure(general, args.count))
        print(f"  {name:<50} {fast:6.2f} us / {slow:6.2f} us  (saves {slow - fast:.2f} us)")


if __name__ == "__main__":
    main()
