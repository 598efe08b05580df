r"""Reading HTTP/1 message bodies from a receive buffer.

What belongs here: the three body readers (Content-Length, chunked,
until-EOF) that a codec picks once a head has fixed the framing, their
limits, and :func:`extract`, the buffer step they share with the h11
codec's gate. Heads and the field grammar are in ``_parse.py``; which
reader a message gets is the codec's decision (``_native_receive.py``).

Strategy:

* A reader turns the bytes it is given into ``Data`` and one
  ``EndOfMessage`` and keeps only its own counters: the buffer is the
  codec's, and ``None`` asks the codec for more bytes. ``read_eof`` says
  what a close means for this framing (the end of an until-EOF body, an
  incomplete message for the others).
* Chunked bodies follow RFC 9112 section 7.1 with hyper's limits: at most 16
  hex digits in a chunk size (more would overflow a u64 in hyper; here it is
  an error called overflow for the same reason), at most 16 KiB of chunk
  extensions per body, trailers at most 16 KiB and ``max_headers`` fields
  (parsed by ``_parse.parse_fields``, with the head's grammar and bounds).
* An incomplete size line or trailer section is searched only where it
  grew since the last read: a body arriving in small pieces costs linear
  time.
"""

from __future__ import annotations

import re
from typing import Final

from hyper_core.error import IncompleteMessageError, ParseError

from ._events import Data, EndOfMessage
from ._parse import DEFAULT_LIMITS, HeadLimits, check_no_bare_lf, parse_fields

__all__ = [
    "CHUNK_EXTENSIONS_MAX",
    "TRAILERS_MAX",
    "BodyReader",
    "ChunkedReader",
    "ContentLengthReader",
    "EofReader",
    "extract",
]

#: Chunk extension bytes allowed over a whole body (hyper: 16 KiB).
CHUNK_EXTENSIONS_MAX: Final = 16 * 1024
#: Trailer section bytes allowed (hyper: 16 KiB).
TRAILERS_MAX: Final = 16 * 1024
#: Framing fields, never allowed in trailers (RFC 9110 section 6.5.1).
_FRAMING_NAMES: Final = frozenset((b"content-length", b"transfer-encoding"))
#: Hex digits in a chunk size: 16 fill a u64, more is an overflow (hyper).
_MAX_CHUNK_SIZE_DIGITS: Final = 16
# Whitespace may follow a size (h11 allows it) but not come before ";": h11
# and llhttp both refuse "3 ;ext", and a parser that skips it while another
# does not would read a different body.
_CHUNK_SIZE_RE: Final = re.compile(rb"([0-9A-Fa-f]+)(?:;([^\r\n\x00]*)|[ \t]*)")


def extract(buf: bytearray, n: int) -> bytes:
    """Remove and return up to ``n`` bytes from the front of ``buf``."""
    if n >= len(buf):
        out = bytes(buf)
        buf.clear()
        return out
    out = bytes(buf[:n])
    del buf[:n]
    return out


class ContentLengthReader:
    """Reads a body of known length."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def read(self, buf: bytearray) -> Data | EndOfMessage | None:
        """Return the next event, or None when more bytes are needed."""
        if self.remaining == 0:
            return EndOfMessage()
        if not buf:
            return None
        data = extract(buf, self.remaining)
        self.remaining -= len(data)
        return Data(data)

    def read_eof(self) -> Data | EndOfMessage:
        """The peer closed: a body of known length cut short is incomplete."""
        raise IncompleteMessageError(
            f"connection closed before the message body ended ({self.remaining} bytes missing)"
        )


class EofReader:
    """Reads a body delimited by the peer closing the connection."""

    __slots__ = ()
    remaining = None

    def read(self, buf: bytearray) -> Data | EndOfMessage | None:
        """Return the next event, or None when more bytes are needed."""
        if not buf:
            return None
        return Data(extract(buf, len(buf)))

    def read_eof(self) -> Data | EndOfMessage:
        """The peer closed: that is how this body ends."""
        return EndOfMessage()


class ChunkedReader:
    """Reads a chunked body (RFC 9112 section 7.1) with hyper's limits."""

    __slots__ = (
        "_ext_bytes",
        "_in_chunk",
        "_limits",
        "_max_fields",
        "_need_crlf",
        "_scanned",
        "_trailers",
    )
    remaining = None

    def __init__(self, max_fields: int, limits: HeadLimits = DEFAULT_LIMITS) -> None:
        self._max_fields = max_fields
        self._limits = limits
        self._in_chunk = 0  # bytes of chunk data still to read
        self._need_crlf = False  # the CRLF after chunk data is due
        self._trailers = False  # the last chunk was read; trailers follow
        self._ext_bytes = 0
        # Bytes of an incomplete size line or trailer section already
        # searched for its end: each read searches only what is new.
        self._scanned = 0

    def read(self, buf: bytearray) -> Data | EndOfMessage | None:
        """Return the next event, or None when more bytes are needed.

        Raises:
            ParseError: malformed chunk framing or a limit exceeded.
        """
        while True:
            if self._trailers:
                return self._read_trailers(buf)
            if self._in_chunk:
                if not buf:
                    return None
                data = extract(buf, self._in_chunk)
                self._in_chunk -= len(data)
                if not self._in_chunk:
                    self._need_crlf = True
                return Data(data)
            if self._need_crlf:
                if len(buf) < 2:
                    if buf and buf[0] != 0x0D:
                        raise ParseError("chunk data not followed by CRLF", status_hint=400)
                    return None
                if buf[0] != 0x0D or buf[1] != 0x0A:
                    raise ParseError("chunk data not followed by CRLF", status_hint=400)
                del buf[:2]
                self._need_crlf = False
            if not self._read_size(buf):
                return None

    def _read_size(self, buf: bytearray) -> bool:
        end = buf.find(b"\r\n", self._scanned)
        if end < 0:
            limit = CHUNK_EXTENSIONS_MAX - self._ext_bytes + _MAX_CHUNK_SIZE_DIGITS + 64
            if len(buf) > limit:
                raise ParseError("chunk size line is too long", status_hint=400)
            if buf.find(b"\n", self._scanned) >= 0:
                raise ParseError("bare LF in a chunk size line", status_hint=400)
            # A CR may be the last byte: the next search starts on it.
            self._scanned = max(len(buf) - 1, 0)
            return False
        self._scanned = 0
        m = _CHUNK_SIZE_RE.fullmatch(buf, 0, end)
        if m is None:
            line = bytes(buf[:end])
            raise ParseError(f"invalid chunk size line: {line[:100]!r}", status_hint=400)
        digits, ext = m.groups()
        # The value counts, not the digits (leading zeros are fine), but a
        # size past 16 significant hex digits would overflow hyper's u64.
        if (
            len(digits) > _MAX_CHUNK_SIZE_DIGITS
            and len(digits.lstrip(b"0")) > _MAX_CHUNK_SIZE_DIGITS
        ):
            raise ParseError("invalid chunk size: overflow", status_hint=400)
        if ext is not None:
            self._ext_bytes += len(ext) + 1
            if self._ext_bytes > CHUNK_EXTENSIONS_MAX:
                raise ParseError("chunk extensions exceed 16 KiB", status_hint=400)
        del buf[: end + 2]
        size = int(digits, 16)
        if size == 0:
            self._trailers = True
        else:
            self._in_chunk = size
        return True

    def _read_trailers(self, buf: bytearray) -> EndOfMessage | None:
        if buf[:2] == b"\r\n":
            del buf[:2]
            return EndOfMessage()
        scanned = self._scanned
        end = buf.find(b"\r\n\r\n", max(scanned - 3, 0))
        if end < 0:
            if len(buf) > TRAILERS_MAX:
                raise ParseError("trailer section exceeds 16 KiB", status_hint=431)
            check_no_bare_lf(buf, scanned)
            self._scanned = len(buf)
            return None
        if end + 2 > TRAILERS_MAX:
            raise ParseError("trailer section exceeds 16 KiB", status_hint=431)
        block = bytes(buf[: end + 2])
        del buf[: end + 4]
        self._scanned = 0
        trailers = parse_fields(block, 0, self._max_fields, self._limits)
        for name, _ in trailers:
            # RFC 9110 section 6.5.1: a trailer cannot frame the message it
            # ends; h11 and llhttp refuse these too.
            if len(name) in (14, 17) and name.lower() in _FRAMING_NAMES:
                raise ParseError(f"{name.decode()} in trailers", status_hint=400)
        return EndOfMessage(trailers)

    def read_eof(self) -> Data | EndOfMessage:
        """The peer closed before the last chunk: the body is incomplete."""
        raise IncompleteMessageError("connection closed before the last chunk of the body")


BodyReader = ContentLengthReader | ChunkedReader | EofReader
