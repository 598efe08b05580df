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

__all__ = ["server_frame"]

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
