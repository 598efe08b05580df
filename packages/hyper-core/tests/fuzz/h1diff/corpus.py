r"""The seed corpus: valid and hostile HTTP/1 messages the mutation pass starts from.

What belongs here: literal byte streams, each a :class:`~h1diff.subjects.Case`,
grouped by the class of defect they probe (framing fields, chunked syntax,
trailers, line endings, start lines, pipelining, client-side framing).
Every seed is also judged as it is by the quick test in
``test_h1_differential.py``.

Strategy: few fields per seed, so that mutations land on the interesting
bytes; ``req``/``resp`` write the CRLFs so the seeds read like messages.
"""

from __future__ import annotations

from typing import Final

from .subjects import Case

__all__ = ["SEEDS"]


def req(*lines: bytes, body: bytes = b"", start: bytes = b"POST / HTTP/1.1") -> bytes:
    """A request: start line, field lines, an empty line, the body."""
    return b"".join(line + b"\r\n" for line in (start, b"Host: a", *lines)) + b"\r\n" + body


def resp(*lines: bytes, body: bytes = b"", start: bytes = b"HTTP/1.1 200 OK") -> bytes:
    """A response: status line, field lines, an empty line, the body."""
    return b"".join(line + b"\r\n" for line in (start, *lines)) + b"\r\n" + body


CHUNKS = b"3\r\nabc\r\n0\r\n\r\n"
TE = b"Transfer-Encoding: chunked"
CL3 = b"Content-Length: 3"

_REQUESTS: Final = [
    # Valid, ordinary.
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    req(CL3, body=b"abc"),
    req(TE, body=CHUNKS),
    req(TE, body=b'1;a=b\r\nx\r\n2;n="v"\r\nyz\r\n0\r\nX-T: 1\r\n\r\n'),
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    req(b"Connection: close", CL3, body=b"abc") + req(CL3, body=b"def"),
    req(CL3, body=b"abc") + req(TE, body=CHUNKS) + b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
    b"GET http://a.test/x?y HTTP/1.1\r\nHost: a.test\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    # Content-Length: duplicates, lists, spellings, signs.
    req(CL3, CL3, body=b"abc"),
    req(CL3, b"Content-Length: 03", body=b"abc"),
    req(b"Content-Length: 3, 3", body=b"abc"),
    req(b"Content-Length: 3,3", body=b"abc"),
    req(CL3, b"Content-Length: 4", body=b"abcd"),
    req(b"Content-Length: +3", body=b"abc"),
    req(b"Content-Length: -1", body=b"abc"),
    req(b"Content-Length: 3 ", body=b"abc"),
    req(b"Content-Length: 3 3", body=b"abc"),
    req(b"Content-Length: 0x3", body=b"abc"),
    req(b"Content-Length: ", body=b""),
    req(b"Content-Length: 99999999999999999999", body=b""),
    # Transfer-Encoding: lists, codings, spellings, with Content-Length.
    req(TE, CL3, body=CHUNKS),
    req(CL3, TE, body=CHUNKS),
    req(b"Transfer-Encoding: Chunked", body=CHUNKS),
    req(b"Transfer-Encoding: gzip, chunked", body=CHUNKS),
    req(b"Transfer-Encoding: chunked, gzip", body=CHUNKS),
    req(b"Transfer-Encoding: chunked, chunked", body=CHUNKS),
    req(b"Transfer-Encoding: , chunked", body=CHUNKS),
    req(b"Transfer-Encoding: chunked,", body=CHUNKS),
    req(b"Transfer-Encoding: chunked, , ", body=CHUNKS),
    req(b"Transfer-Encoding: gzip,, chunked", body=CHUNKS),
    req(b"Transfer-Encoding: gzip", TE, body=CHUNKS),
    req(b"Transfer-Encoding:", body=CHUNKS),
    req(b"Transfer-Encoding: identity", body=CHUNKS),
    req(b"Transfer-Encoding: xchunked", body=CHUNKS),
    req(b"Transfer-Encoding: chunked ;q=1", body=CHUNKS),
    req(b'Transfer-Encoding: "chunked"', body=CHUNKS),
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKS,
    # Chunked syntax: sizes, extensions, whitespace, CRLF after data.
    req(TE, body=b"03\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"00000000000000000003\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"A\r\n0123456789\r\n0\r\n\r\n"),
    req(TE, body=b"3 \r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"3\t\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"3 ;a=b\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"3; a=b\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"3;a = b\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"3;\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b'3;a="b;c"\r\nabc\r\n0\r\n\r\n'),
    req(TE, body=b"3;a\x01\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"+3\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"0x3\r\nabc\r\n0\r\n\r\n"),
    req(TE, body=b"3\r\nabcX\r\n0\r\n\r\n"),
    req(TE, body=b"3\r\nabc0\r\n\r\n"),
    req(TE, body=b"3\nabc\n0\n\n"),
    req(TE, body=b"3\r\nabc\r\n0\r\n"),
    req(TE, body=b"ffffffffffffffffff\r\nabc"),
    # Trailers: ordinary, framing fields, obs-fold, bad names.
    req(TE, body=b"0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"),
    req(TE, body=b"0\r\nContent-Length: 5\r\n\r\n"),
    req(TE, body=b"0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    req(TE, body=b"0\r\nHost: b\r\n\r\n"),
    req(TE, body=b"0\r\nX-T: 1\r\n 2\r\n\r\n"),
    req(TE, body=b"0\r\nX T: 1\r\n\r\n"),
    # Field lines: obs-fold, whitespace, bare CR / LF, NUL and controls.
    req(b"X-A: 1\r\n 2", CL3, body=b"abc"),
    req(b"X-A: 1\r\n\t2", CL3, body=b"abc"),
    req(b"X-A : 1", CL3, body=b"abc"),
    req(b" X-A: 1", CL3, body=b"abc"),
    req(b"X-A:1", CL3, body=b"abc"),
    req(b"X-A: 1 ", CL3, body=b"abc"),
    req(b"X-A: a\rb", CL3, body=b"abc"),
    req(b"X-A: a\nb", CL3, body=b"abc"),
    req(b"X-A: a\x00b", CL3, body=b"abc"),
    req(b"X-A: a\x01b", CL3, body=b"abc"),
    req(b"X-A: a\x7fb", CL3, body=b"abc"),
    req(b"X-A: caf\xe9", CL3, body=b"abc"),
    req(b"X-A: a\tb", CL3, body=b"abc"),
    req(b"X-\xe9: 1", CL3, body=b"abc"),
    req(b": 1", CL3, body=b"abc"),
    req(b"X-A", CL3, body=b"abc"),
    b"POST / HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc",
    b"POST / HTTP/1.1\r\nHost: a\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\rHost: a\r\n\r\n",
    # Host.
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
    # Request lines.
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PURGE / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    b"GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/0.9\r\n\r\n",
    b"GET / http/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/11\r\nHost: a\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
]

_RESPONSES: Final = [
    ("GET", resp(CL3, body=b"abc")),
    ("GET", resp(TE, body=CHUNKS)),
    ("GET", resp(body=b"until close")),
    ("GET", resp(b"Connection: close", CL3, body=b"abc")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.0 200 OK")),
    ("GET", resp(body=b"abc", start=b"HTTP/1.0 200 OK")),
    ("GET", resp(b"Connection: keep-alive", CL3, body=b"abc", start=b"HTTP/1.0 200 OK")),
    # Interim responses, then the final one.
    ("GET", resp(start=b"HTTP/1.1 100 Continue") + resp(CL3, body=b"abc")),
    ("GET", resp(b"Link: </s>", start=b"HTTP/1.1 103 Early Hints") + resp(CL3, body=b"abc")),
    ("UPGRADE", resp(b"Connection: upgrade", b"Upgrade: websocket", start=b"HTTP/1.1 101 OK")),
    ("GET", resp(b"Upgrade: websocket", start=b"HTTP/1.1 101 Switching Protocols")),
    ("CONNECT", resp(body=b"tunnel bytes")),
    ("CONNECT", resp(CL3, body=b"abc", start=b"HTTP/1.1 407 Auth")),
    # Statuses and methods without a body.
    ("HEAD", resp(b"Content-Length: 10")),
    ("HEAD", resp(TE)),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 204 No Content")),
    ("GET", resp(start=b"HTTP/1.1 304 Not Modified")),
    ("GET", resp(TE, start=b"HTTP/1.1 304 Not Modified")),
    # Framing fields.
    ("GET", resp(CL3, CL3, body=b"abc")),
    ("GET", resp(CL3, b"Content-Length: 03", body=b"abc")),
    ("GET", resp(b"Content-Length: 3, 3", body=b"abc")),
    ("GET", resp(b"Content-Length: 3, 4", body=b"abcd")),
    ("GET", resp(TE, CL3, body=CHUNKS)),
    ("GET", resp(b"Transfer-Encoding: gzip", CL3, body=b"abc")),
    ("GET", resp(b"Transfer-Encoding: gzip", body=b"abc")),
    ("GET", resp(b"Transfer-Encoding: gzip, chunked", body=CHUNKS)),
    ("GET", resp(b"Transfer-Encoding: chunked, gzip", body=b"abc")),
    ("GET", resp(b"Transfer-Encoding:", body=b"abc")),
    ("GET", resp(b"Transfer-Encoding:", CL3, body=b"abc")),
    ("GET", resp(b"Transfer-Encoding: , chunked", body=CHUNKS)),
    ("GET", resp(b"Transfer-Encoding: chunked,", body=CHUNKS)),
    ("GET", resp(TE, body=CHUNKS, start=b"HTTP/1.0 200 OK")),
    ("GET", resp(TE, body=b"3 ;x\r\nabc\r\n0\r\n\r\n")),
    ("GET", resp(TE, body=b"0\r\nContent-Length: 1\r\n\r\n")),
    # Status lines.
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 200")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 200 ")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 099 Low")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 600 High")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 20 Short")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 2000 Long")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 200 O\tK")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 200 \xe9t\xe9")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1 200 a\x01b")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/2.0 200 OK")),
    ("GET", resp(CL3, body=b"abc", start=b"HTTP/1.1  200 OK")),
    ("GET", b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc"),
    ("GET", resp(b"X-A: 1\r\n 2", CL3, body=b"abc")),
    ("GET", resp(b"X-A : 1", CL3, body=b"abc")),
    ("GET", resp(b"X-A: a\x00b", CL3, body=b"abc")),
]

#: Every seed, requests first.
SEEDS: Final[tuple[Case, ...]] = tuple(
    [Case("request", data) for data in _REQUESTS]
    + [Case("response", data, request) for request, data in _RESPONSES]
)
