"""The server's own WebSocket frame encoder for whole, uncompressed messages.

What belongs here: :func:`server_frame`, the bytes of one unfragmented,
unmasked data frame (RFC 6455 section 5.2): what a server sends for a whole
message when no extension (permessage-deflate) is negotiated.

Strategy: wsproto encodes every frame through its generic event and frame
layers (about 4 us for a small message, more than the rest of sending it);
this is the two-to-ten-byte header and the payload, nothing else. Everything
else (fragments, control frames, closing, the client role's masking,
compression) stays wsproto's. Whole messages leave wsproto's outbound state
as it was (no fragmented message open before or after), so the two can be
interleaved message by message; ``tests/test_ws_frames.py`` checks the bytes
against wsproto's for every length class.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["OWN_FRAME_MAX", "ClientFrames", "Raw", "server_frame", "unmask"]

_TEXT: Final = 0x81  # FIN + opcode 1
_BINARY: Final = 0x82  # FIN + opcode 2
_SHORT: Final = struct.Struct("!BB")
_MEDIUM: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")


def server_frame(message: str | bytes) -> bytes:
    """One final, unmasked text (``str``) or binary (``bytes``) frame carrying ``message``.

    Raises:
        UnicodeEncodeError: ``message`` is a ``str`` that is not valid Unicode
            text (lone surrogates), as wsproto raises.
    """
    if isinstance(message, str):
        payload = message.encode("utf-8")
        first = _TEXT
    else:
        payload = message
        first = _BINARY
    size = len(payload)
    if size < 126:
        return _SHORT.pack(first, size) + payload
    if size < 65536:
        return _MEDIUM.pack(first, 126, size) + payload
    return _LONG.pack(first, 127, size) + payload


#: Largest frame payload :class:`ClientFrames` decodes itself (bigger ones
#: are wsproto's, which streams them): what it buffers of one frame.
OWN_FRAME_MAX: Final = 65_536


class Raw:
    """Bytes of the stream that wsproto parses (every frame but the simple ones)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class ClientFrames:
    """The server's reader of a client's frames: whole simple messages itself, the rest wsproto's.

    Simple: a final, masked text or binary frame of at most
    :data:`OWN_FRAME_MAX` bytes (``min`` with the message size limit), with
    no reserved bit, its length in the fewest bytes, valid UTF-8 if text,
    while no fragmented message is open: the frame is unmasked and decoded
    here (wsproto's frame and event layers cost about as much as the rest
    of receiving a small message). Every other frame (fragments, control
    frames, anything broken) goes to wsproto whole and in order, as
    :class:`Raw` items, so wsproto only ever starts parsing at a frame
    boundary and its state is what it would be had it seen the simple frames
    too: they leave no message open and change nothing else. Used only
    without extensions (as :func:`server_frame`).
    """

    __slots__ = ("_limit", "_open", "_owed", "_pending")

    def __init__(self, max_message_size: int) -> None:
        self._limit = min(OWN_FRAME_MAX, max_message_size)
        self._pending = b""  # the start of a frame not complete yet
        self._owed = 0  # bytes of the current frame still owed to wsproto
        self._open = False  # wsproto holds an unfinished fragmented message

    def split(self, data: bytes) -> list[str | bytes | Raw]:
        """The messages (``str``, ``bytes``) and wsproto's bytes (:class:`Raw`) in ``data``."""
        buf = self._pending + data if self._pending else data
        self._pending = b""
        end = len(buf)
        pos = 0
        out: list[str | bytes | Raw] = []
        while pos < end:
            owed = self._owed
            if owed:
                stop = min(end, pos + owed)
                out.append(Raw(buf[pos:stop]))
                self._owed = owed - (stop - pos)
                pos = stop
                continue
            if end - pos < 2:
                break
            first = buf[pos]
            second = buf[pos + 1]
            length = second & 0x7F
            header = 2
            minimal = True
            if length == 126:
                header = 4
                if end - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                minimal = length >= 126
            elif length == 127:
                header = 10
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                minimal = length >= 65536
            if second & 0x80:
                header += 4
            if (
                (first == 0x81 or first == 0x82)  # final, no reserved bit, text or binary
                and second & 0x80
                and minimal
                and length <= self._limit
                and not self._open
            ):
                stop = pos + header + length
                if stop > end:
                    break  # the rest of it is on its way
                payload = unmask(buf[pos + header - 4 : pos + header], buf[pos + header : stop])
                if first == 0x81:
                    try:
                        out.append(payload.decode("utf-8"))
                    except UnicodeDecodeError:
                        out.append(Raw(buf[pos:stop]))  # wsproto fails it (1007)
                else:
                    out.append(payload)
                pos = stop
                continue
            # wsproto's frame: all of it, as it comes.
            if end - pos < header:
                break
            opcode = first & 0x0F
            if opcode <= 2:  # continuation, text, binary: a fragmented message opens or ends
                self._open = not first & 0x80
            self._owed = header + length
        if pos < end:
            self._pending = buf[pos:]
        return out


def unmask(mask: bytes, payload: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``mask`` (RFC 6455 section 5.3)."""
    size = len(payload)
    if not size:
        return b""
    key = (mask * ((size + 3) >> 2))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )
