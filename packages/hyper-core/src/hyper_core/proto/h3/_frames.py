"""HTTP/3 framing (RFC 9114 section 7): varints, frames, settings, stream types.

What belongs here: the wire constants and codes, the encoders for the frames
we send, and :class:`FrameReader`, which reads frames off a QUIC receive
stream with a bound on every buffered payload. Nothing here knows about
requests or responses.

Strategy: a reader keeps one buffer per stream and parses in place; DATA
payloads are never buffered whole (the caller pulls them in pieces), other
frames are read whole only up to the caller's limit, and unknown frame
types are skipped as they arrive (RFC 9114 section 9 and 10.5).
"""

from __future__ import annotations

import enum
from typing import Final, final

from hyper_core.rt._quic import QuicReceiveStream

__all__ = [
    "FrameReader",
    "FrameType",
    "H3Error",
    "H3ErrorCode",
    "Setting",
    "StreamType",
    "encode_frame",
    "encode_settings",
    "encode_varint",
    "frame_header",
    "parse_settings",
]


class H3ErrorCode(enum.IntEnum):
    """HTTP/3 error codes (RFC 9114 section 8.1, RFC 9204 section 6)."""

    H3_NO_ERROR = 0x100
    H3_GENERAL_PROTOCOL_ERROR = 0x101
    H3_INTERNAL_ERROR = 0x102
    H3_STREAM_CREATION_ERROR = 0x103
    H3_CLOSED_CRITICAL_STREAM = 0x104
    H3_FRAME_UNEXPECTED = 0x105
    H3_FRAME_ERROR = 0x106
    H3_EXCESSIVE_LOAD = 0x107
    H3_ID_ERROR = 0x108
    H3_SETTINGS_ERROR = 0x109
    H3_MISSING_SETTINGS = 0x10A
    H3_REQUEST_REJECTED = 0x10B
    H3_REQUEST_CANCELLED = 0x10C
    H3_REQUEST_INCOMPLETE = 0x10D
    H3_MESSAGE_ERROR = 0x10E
    H3_CONNECT_ERROR = 0x10F
    H3_VERSION_FALLBACK = 0x110
    QPACK_DECOMPRESSION_FAILED = 0x200
    QPACK_ENCODER_STREAM_ERROR = 0x201
    QPACK_DECODER_STREAM_ERROR = 0x202


class FrameType(enum.IntEnum):
    """HTTP/3 frame types (RFC 9114 section 7.2)."""

    DATA = 0x0
    HEADERS = 0x1
    CANCEL_PUSH = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    GOAWAY = 0x7
    MAX_PUSH_ID = 0xD


#: HTTP/2 frame types with no HTTP/3 meaning: receiving one is
#: H3_FRAME_UNEXPECTED (RFC 9114 section 7.2.8).
RESERVED_FRAME_TYPES: Final = frozenset({0x2, 0x6, 0x8, 0x9})


class Setting(enum.IntEnum):
    """HTTP/3 settings (RFC 9114 section 7.2.4.1, RFC 9204, RFC 9220)."""

    QPACK_MAX_TABLE_CAPACITY = 0x1
    MAX_FIELD_SECTION_SIZE = 0x6
    QPACK_BLOCKED_STREAMS = 0x7
    ENABLE_CONNECT_PROTOCOL = 0x8
    H3_DATAGRAM = 0x33


#: HTTP/2 setting identifiers: receiving one is H3_SETTINGS_ERROR (section 7.2.4.1).
RESERVED_SETTINGS: Final = frozenset({0x0, 0x2, 0x3, 0x4, 0x5})


class StreamType(enum.IntEnum):
    """Unidirectional stream types (RFC 9114 section 6.2, RFC 9204 section 4.2)."""

    CONTROL = 0x0
    PUSH = 0x1
    QPACK_ENCODER = 0x2
    QPACK_DECODER = 0x3


class H3Error(Exception):
    """Internal: an HTTP/3 error, of the connection (the default) or of one stream.

    Attributes:
        code: The error code to send.
        stream: True when only the stream is affected (RESET_STREAM), False
            when the whole connection must close (CONNECTION_CLOSE).
    """

    def __init__(self, code: H3ErrorCode, message: str, *, stream: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.stream = stream


_MAX_VARINT: Final = (1 << 62) - 1


def encode_varint(value: int) -> bytes:
    """A QUIC variable-length integer (RFC 9000 section 16)."""
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x4000_0000:
        return (value | 0x8000_0000).to_bytes(4, "big")
    if value <= _MAX_VARINT:
        return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")
    raise ValueError(f"{value} does not fit a QUIC varint")


def frame_header(frame_type: int, length: int) -> bytes:
    """The type and length that start a frame."""
    if frame_type < 0x40 and length < 0x40:
        return bytes((frame_type, length))
    return encode_varint(frame_type) + encode_varint(length)


def encode_frame(frame_type: int, payload: bytes) -> bytes:
    """A whole frame."""
    return frame_header(frame_type, len(payload)) + payload


def encode_settings(settings: dict[int, int]) -> bytes:
    """A SETTINGS frame."""
    payload = b"".join(encode_varint(k) + encode_varint(v) for k, v in settings.items())
    return encode_frame(FrameType.SETTINGS, payload)


def _pull_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """``(value, next position)`` of the varint at ``pos``, or None when it is cut off."""
    if pos >= len(data):
        return None
    first = data[pos]
    size = 1 << (first >> 6)
    if pos + size > len(data):
        return None
    value = first & 0x3F
    for byte in data[pos + 1 : pos + size]:
        value = (value << 8) | byte
    return value, pos + size


def parse_settings(payload: bytes) -> dict[int, int]:
    """The settings of a SETTINGS frame's payload.

    Raises:
        H3Error: H3_SETTINGS_ERROR for a repeated or HTTP/2-only setting, a
            boolean setting other than 0 or 1; H3_FRAME_ERROR for a cut-off
            payload.
    """
    settings: dict[int, int] = {}
    pos = 0
    while pos < len(payload):
        key = _pull_varint(payload, pos)
        value = None if key is None else _pull_varint(payload, key[1])
        if key is None or value is None:
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "truncated SETTINGS frame")
        identifier, (setting, pos) = key[0], value
        if identifier in settings or identifier in RESERVED_SETTINGS:
            raise H3Error(H3ErrorCode.H3_SETTINGS_ERROR, f"bad setting 0x{identifier:x}")
        if identifier in (Setting.ENABLE_CONNECT_PROTOCOL, Setting.H3_DATAGRAM) and setting > 1:
            raise H3Error(H3ErrorCode.H3_SETTINGS_ERROR, f"setting 0x{identifier:x} must be 0 or 1")
        settings[identifier] = setting
    return settings


def parse_varint_payload(payload: bytes) -> int:
    """The single varint of a GOAWAY, MAX_PUSH_ID or CANCEL_PUSH payload.

    Raises:
        H3Error: H3_FRAME_ERROR when it is not exactly one varint.
    """
    parsed = _pull_varint(payload, 0)
    if parsed is None or parsed[1] != len(payload):
        raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "malformed frame payload")
    return parsed[0]


@final
class FrameReader:
    """Reads HTTP/3 frames (or a stream type) from one QUIC receive stream.

    Use :meth:`next_header`, then either :meth:`read_payload` (whole, for
    small frames), :meth:`read_data` (pieces, for DATA) or :meth:`skip`.
    """

    __slots__ = ("_buf", "_pos", "_stream", "eof", "remaining")

    def __init__(self, stream: QuicReceiveStream) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self.eof = False
        self.remaining = 0  # payload bytes of the current frame not yet read

    @property
    def stream(self) -> QuicReceiveStream:
        """The stream read from."""
        return self._stream

    async def _fill(self) -> bool:
        if self.eof:
            return False
        data = await self._stream.receive(65536)
        if not data:
            self.eof = True
            return False
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos :] + data
        else:
            self._buf = data
        self._pos = 0
        return True

    async def read_varint(self) -> int | None:
        """The next varint; None at a clean end of stream before it.

        Raises:
            H3Error: H3_FRAME_ERROR when the stream ends inside it.
        """
        while True:
            parsed = _pull_varint(self._buf, self._pos)
            if parsed is not None:
                self._pos = parsed[1]
                return parsed[0]
            started = self._pos < len(self._buf)
            if not await self._fill():
                if started:
                    raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")
                return None

    async def next_header(self) -> tuple[int, int] | None:
        """``(frame type, payload length)`` of the next frame; None at a clean end.

        Raises:
            H3Error: The current frame's payload was not consumed, or the
                stream ended inside the header.
        """
        if self.remaining:
            await self.skip()
        frame_type = await self.read_varint()
        if frame_type is None:
            return None
        length = await self.read_varint()
        if length is None:
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame header")
        self.remaining = length
        return frame_type, length

    async def read_payload(self) -> bytes:
        """The whole payload of the current frame (the caller bounded its length)."""
        need = self.remaining
        while len(self._buf) - self._pos < need:
            if not await self._fill():
                raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")
        start = self._pos
        self._pos += need
        self.remaining = 0
        return self._buf[start : self._pos]

    async def read_data(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` of the current frame's payload (at least one byte).

        Raises:
            H3Error: H3_FRAME_ERROR when the stream ends first.
        """
        if self._pos >= len(self._buf) and not await self._fill():
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a DATA frame")
        n = min(self.remaining, max_bytes, len(self._buf) - self._pos)
        start = self._pos
        self._pos += n
        self.remaining -= n
        if start == 0 and self._pos == len(self._buf):
            return self._buf  # the whole read: no copy
        return self._buf[start : self._pos]

    async def skip(self) -> None:
        """Discard the rest of the current frame's payload as it arrives."""
        while self.remaining:
            await self.read_data(self.remaining)

    def at_eof(self) -> bool:
        """Whether the stream is over and every byte of it was parsed."""
        return self._pos >= len(self._buf) and (self.eof or self._stream.at_eof())
