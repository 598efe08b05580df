r"""Inputs for the harness: a message grammar and a mutation pass over the seeds.

What belongs here: :func:`message_case`, which writes requests and responses
from a grammar of valid and near-valid parts (start lines, framing fields,
chunked bodies, trailers, line endings, control bytes), and :func:`mutate`,
which damages a seed a few bytes or lines at a time. Both take a
:class:`Chooser`, so one grammar serves hypothesis (the pytest suite:
shrinking, a fixed database-free seed) and a plain seeded ``random.Random``
(the ``nox -s fuzz`` runner: about ten times cheaper per input).

Strategy: every choice is made from small pools of the spellings that
parsers disagree on, weighted towards the valid one so that most messages
get far enough to exercise framing; :func:`cuts` picks where a stream is
split for the pieces check.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from hypothesis import strategies as st

from .corpus import SEEDS
from .subjects import REQUESTS, Case

__all__ = ["Chooser", "HypothesisChooser", "RandomChooser", "cuts", "message_case", "mutate"]

T = TypeVar("T")


class Chooser(Protocol):
    """Where the grammar's choices come from."""

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``, the first ones more often."""
        ...

    def number(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        ...

    def chance(self, p: float) -> bool:
        """True with about probability ``p``."""
        ...


class RandomChooser:
    """Choices from a seeded ``random.Random`` (the fast runner)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: Sequence[T]) -> T:
        # Half the time the first (valid) option, else any: valid parts keep
        # most messages parseable far enough to reach the framing.
        if self.rng.random() < 0.5:
            return options[0]
        return options[self.rng.randrange(len(options))]

    def number(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


class HypothesisChooser:
    """Choices drawn from hypothesis (``st.data()``), so failures shrink."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def pick(self, options: Sequence[T]) -> T:
        if self.data.draw(st.booleans()):
            return options[0]
        return self.data.draw(st.sampled_from(options))

    def number(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def chance(self, p: float) -> bool:
        return self.data.draw(st.integers(0, 99)) < p * 100


# -- the grammar ------------------------------------------------------------------

EOL = (b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r")
SP = (b" ", b"  ", b"\t", b"")
METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE", b"PATCH", b"get", b"PURGE",
           b"G@T", b"GET\x00", b"")  # fmt: skip
TARGETS = (b"/", b"/a?b=c", b"*", b"http://a.test/p", b"a.test:443", b"/caf\xe9", b"/a b",
           b"/a\x7f", b"", b"//", b"/%00", b"foo")  # fmt: skip
VERSIONS = (b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"http/1.1",
            b"HTTP/11", b"HTTP/1.1 ", b"HTTP/1", b"HTTP/1.1\x00")  # fmt: skip
STATUSES = (b"200 OK", b"200", b"200 ", b"204 No Content", b"304 Not Modified", b"404 Nope",
            b"099 x", b"600 x", b"20 x", b"2000 x", b"200 O\tK", b"200 \xe9", b"200 a\x01b",
            b"  200 OK")  # fmt: skip
INTERIM = (b"100 Continue", b"103 Early Hints", b"102 Processing", b"101 Switching Protocols")
LENGTH_VALUES = (b"{n}", b"0{n}", b"{n}, {n}", b"{n},{n}", b"+{n}", b"-1", b" {n} ", b"{n} {n}",
                 b"0x{n}", b"", b"99999999999999999999", b"{m}", b"{n}\x00", b"{n}, ")  # fmt: skip
CODINGS = (b"chunked", b"Chunked", b"gzip, chunked", b"chunked, gzip", b", chunked",
           b"chunked,", b"chunked, , ", b"gzip,, chunked", b"", b"identity", b"xchunked",
           b"chunked ;q=1", b'"chunked"', b"chunked, chunked", b"chunked\x0b",
           b"gzip")  # fmt: skip
OTHER_FIELDS = (b"X-A: 1", b"Connection: close", b"Connection: keep-alive", b"Expect: 100-continue",
                b"Upgrade: websocket", b"X-A : 1", b" X-A: 1", b"X-A:1", b"X-A: 1 ",
                b"X-A: a\rb", b"X-A: a\x00b", b"X-A: a\x01b", b"X-A: caf\xe9", b"X-A: a\tb",
                b": 1", b"X-A", b"X-\xe9: 1", b"X-A: 1\r\n 2", b"Host: b", b"TE: trailers",
                b"X-A: \x7f")  # fmt: skip
HOSTS = (b"Host: a.test", b"Host: a.test:8080", b"Host: [::1]", b"Host: a b", b"Host: a,b",
         b"Host:", b"Host: a.test\r\nHost: b.test", b"")  # fmt: skip
SIZES = (b"{x}", b"0{x}", b"{X}", b"{x} ", b"{x}\t", b"{x};e=v", b"{x} ;e=v", b"{x};e", b"{x}; e=v",
         b'{x};e="v;w"', b"{x};", b"+{x}", b"0x{x}", b"{x};e=\x01",
         b"00000000000000000000{x}")  # fmt: skip
TRAILERS = (b"", b"X-T: 1", b"Content-Length: 5", b"Transfer-Encoding: chunked", b"Host: b",
            b"X-T: 1\r\n 2", b"X T: 1", b"X-T: a\x00b", b"Trailer: x")  # fmt: skip
AFTER_DATA = (b"\r\n", b"", b"\n", b"X\r\n", b"\r")


def _fields(c: Chooser, eol: bytes, lines: list[bytes]) -> bytes:
    return b"".join(line + eol for line in lines if line)


def _chunked(c: Chooser, eol: bytes) -> bytes:
    out = []
    for _ in range(c.number(0, 3)):
        data = bytes(c.pick((b"abc", b"x" * c.number(1, 20), b"\r\n0\r\n\r\n", b"")))
        size = len(data) + c.pick((0, 0, 0, 1, -1))
        spelled = (
            c.pick(SIZES)
            .replace(b"{x}", b"%x" % max(size, 0))
            .replace(b"{X}", b"%X" % max(size, 0))
        )
        out.append(spelled + eol + data + c.pick(AFTER_DATA))
    out.append(c.pick((b"0", b"000", b"0;e=v", b"0 ", b"")) + eol)
    trailers = [c.pick(TRAILERS) for _ in range(c.number(0, 2))]
    out.append(_fields(c, eol, trailers))
    if c.chance(0.9):
        out.append(eol)
    return b"".join(out)


def _framing(c: Chooser, eol: bytes) -> tuple[list[bytes], bytes]:
    """Framing fields and the body they frame (or misframe)."""
    body = bytes(c.pick((b"abc", b"", b"hello world", b"x" * 40)))
    kind = c.pick(("length", "chunked", "none", "both", "two-lengths", "two-codings"))
    n = len(body)

    def length() -> bytes:
        spelled = c.pick(LENGTH_VALUES).replace(b"{n}", b"%d" % n)
        return b"Content-Length: " + spelled.replace(b"{m}", b"%d" % (n + c.pick((1, -1))))

    def coding() -> bytes:
        return b"Transfer-Encoding: " + c.pick(CODINGS)

    if kind == "length":
        return [length()], body
    if kind == "chunked":
        return [coding()], _chunked(c, eol)
    if kind == "both":
        fields = [coding(), length()]
        if c.chance(0.5):
            fields.reverse()
        return fields, _chunked(c, eol) if c.chance(0.7) else body
    if kind == "two-lengths":
        return [length(), length()], body
    if kind == "two-codings":
        return [coding(), coding()], _chunked(c, eol)
    return [], body if c.chance(0.3) else b""


def _request(c: Chooser) -> bytes:
    eol = c.pick(EOL)
    line = (
        c.pick(METHODS) + c.pick(SP) + c.pick(TARGETS) + c.pick(SP) + c.pick(VERSIONS) + c.pick(EOL)
    )
    framing, body = _framing(c, eol)
    fields = [c.pick(HOSTS), *framing]
    for _ in range(c.number(0, 2)):
        fields.insert(c.number(0, len(fields)), c.pick(OTHER_FIELDS))
    prefix = b"\r\n" if c.chance(0.05) else b""
    return prefix + line + _fields(c, eol, fields) + eol + body


def _response(c: Chooser) -> bytes:
    eol = c.pick(EOL)
    head = b""
    for _ in range(c.number(0, 1) if c.chance(0.3) else 0):
        head += b"HTTP/1.1 " + c.pick(INTERIM) + eol + _fields(c, eol, [c.pick(OTHER_FIELDS)]) + eol
    version = c.pick((b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"HTTP/1.2"))
    line = version + b" " + c.pick(STATUSES) + c.pick(EOL)
    framing, body = _framing(c, eol)
    fields = list(framing)
    for _ in range(c.number(0, 2)):
        fields.insert(c.number(0, len(fields)), c.pick(OTHER_FIELDS))
    return head + line + _fields(c, eol, fields) + eol + body


def message_case(c: Chooser) -> Case:
    """A request stream (one to three pipelined requests) or a response to one request."""
    if c.chance(0.55):
        return Case("request", b"".join(_request(c) for _ in range(c.number(1, 3))))
    return Case("response", _response(c), c.pick(REQUESTS))


# -- mutations --------------------------------------------------------------------

INTERESTING = b'\r\n\x00 \t,;:0a\x7f\x80\x0b"=-+'


def mutate(c: Chooser, case: Case | None = None, rounds: int = 0) -> Case:
    """A seed (or ``case``) with one to four small injuries."""
    if case is None:
        case = SEEDS[c.number(0, len(SEEDS) - 1)]
    data = bytearray(case.data)
    for _ in range(rounds or c.number(1, 4)):
        if not data:
            break
        op = c.number(0, 9)
        i = c.number(0, len(data) - 1)
        if op == 0:
            data[i] = INTERESTING[c.number(0, len(INTERESTING) - 1)]
        elif op == 1:
            data.insert(i, INTERESTING[c.number(0, len(INTERESTING) - 1)])
        elif op == 2:
            del data[i]
        elif op == 3:
            data[i] = c.number(0, 255)
        elif op in (4, 5):
            lines = bytes(data).split(b"\r\n")
            j, k = c.number(0, len(lines) - 1), c.number(0, len(lines) - 1)
            if op == 4:
                lines.insert(k, lines[j])  # a line twice (a field, a chunk)
            else:
                del lines[j]
            data = bytearray(b"\r\n".join(lines))
        elif op == 6:
            j = data.find(b"\r\n", i)
            if j >= 0:
                data[j : j + 2] = c.pick((b"\n", b"\r", b"\r\n\r\n", b"\r\n ", b"\r\n\t"))
        elif op == 7 and data[i : i + 1].isdigit():
            data[i] = c.pick(b"0123456789abcdefABCDEF")
        elif op == 8:
            j = c.number(i, min(len(data), i + 16))
            data[i:j] = bytes(data[i:j]).swapcase()
        else:
            other = SEEDS[c.number(0, len(SEEDS) - 1)]
            if other.role == case.role:
                data += other.data  # pipelining, or junk after a response
    request = case.request if case.role == "response" else "GET"
    if case.role == "response" and c.chance(0.2):
        request = c.pick(REQUESTS)
    return Case(case.role, bytes(data), request)


def cuts(c: Chooser, length: int) -> list[int]:
    """Where to split a stream of ``length`` bytes: a few random places, or everywhere."""
    if length < 2:
        return []
    if c.chance(0.1):
        return list(range(1, length))  # one byte at a time
    return [c.number(1, length - 1) for _ in range(c.number(1, 4))]
