"""What both HTTP/2 roles' fast paths share: frame heads and the HPACK memos.

What belongs here: the pieces :mod:`._fast_server` (responses) and
:mod:`._fast_client` (requests) both build on, so each role's fast path
is written once: the 9-byte frame header packed directly, h2's state
machine inputs the fast paths feed, :func:`memo_encode` (an HPACK block
memoised while the encoder's dynamic table is unchanged) and
:class:`MemoDecoder` (the same for decoding).

Strategy: a memo entry is valid only for the dynamic table's exact state
(:func:`table_state`), and only blocks that left the table unchanged are
memoised, so a hit returns exactly what HPACK would have produced.
``test_server_h2_fastpath.py`` and ``test_client_h2_fastpath.py`` check
both roles against h2's own methods byte for byte.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import h2.connection
import h2.stream
from hpack import Decoder, Encoder, HeaderTuple

__all__ = [
    "CONTINUATION_TYPE",
    "DATA_TYPE",
    "END_HEADERS",
    "END_STREAM",
    "HEADERS_TYPE",
    "PRUNE_SLACK",
    "SEND_DATA",
    "SEND_HEADERS",
    "STREAM_SEND_DATA",
    "STREAM_SEND_END_STREAM",
    "STREAM_SEND_HEADERS",
    "EncodeMemo",
    "MemoDecoder",
    "frame_head",
    "memo_encode",
    "table_state",
]


#: Memoised HPACK blocks per connection and direction, and the longest block
#: memoised, in bytes: a hello-world request or response is 5 to 20 bytes
#: once its fields are in the dynamic table; the bounds keep what a client
#: can make us hold to a few KiB.
HPACK_MEMO_ENTRIES: Final = 32
HPACK_MEMO_MAX_BLOCK: Final = 256
#: Streams h2's table may hold beyond the last pruning before the server
#: prunes closed ones again (h2 itself prunes on every new stream).
PRUNE_SLACK: Final = 32

FRAME_HEAD_STRUCT: Final = struct.Struct(">HBBBL")
DATA_TYPE: Final = 0x0
HEADERS_TYPE: Final = 0x1
CONTINUATION_TYPE: Final = 0x9
END_STREAM: Final = 0x1
END_HEADERS: Final = 0x4
SEND_HEADERS: Final = h2.connection.ConnectionInputs.SEND_HEADERS
SEND_DATA: Final = h2.connection.ConnectionInputs.SEND_DATA
STREAM_SEND_HEADERS: Final = h2.stream.StreamInputs.SEND_HEADERS
STREAM_SEND_DATA: Final = h2.stream.StreamInputs.SEND_DATA
STREAM_SEND_END_STREAM: Final = h2.stream.StreamInputs.SEND_END_STREAM


def frame_head(length: int, frame_type: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte frame header, packed as hyperframe's ``Frame.serialize`` does."""
    return FRAME_HEAD_STRUCT.pack(
        (length >> 8) & 0xFFFF, length & 0xFF, frame_type, flags, stream_id & 0x7FFFFFFF
    )


def table_state(table: Any) -> tuple[object, int, int]:
    # An HPACK dynamic table changes only by inserting a new tuple at the
    # front, evicting from the back, clearing, or resizing: the identity of
    # the front entry (kept alive by the memo, so never reused), the length
    # and the size limit together tell whether it changed.
    entries = table.dynamic_entries
    return (entries[0] if entries else None, len(entries), table.maxsize)


EncodeMemo = dict[tuple[tuple[bytes, bytes], ...], tuple[bytes, tuple[object, int, int]]]


def memo_encode(encoder: Encoder, memo: EncodeMemo, headers: list[tuple[bytes, bytes]]) -> bytes:
    """``encoder.encode(headers)``, from ``memo`` while the dynamic table is unchanged.

    Only blocks whose encoding left the table as it was are kept (at most
    ``HPACK_MEMO_ENTRIES`` of at most ``HPACK_MEMO_MAX_BLOCK`` bytes), so a
    hit writes exactly what the encoder would have written.
    """
    table = encoder.header_table
    if table.resized:
        return encoder.encode(headers)
    key = tuple(headers)
    state = table_state(table)
    hit = memo.get(key)
    if hit is not None and hit[1] == state and hit[1][0] is state[0]:
        return hit[0]
    block = encoder.encode(headers)
    after = table_state(table)
    if after == state and after[0] is state[0] and len(block) <= HPACK_MEMO_MAX_BLOCK:
        if len(memo) >= HPACK_MEMO_ENTRIES:
            memo.clear()
        memo[key] = (block, state)
    return block


class MemoDecoder(Decoder):
    """An HPACK decoder that remembers blocks whose decoding left its state unchanged.

    A block made only of references to the table (the usual request once a
    client has sent its fields once) decodes to the same list as long as
    the table, its size limits and the header list limit are unchanged; such
    blocks are decoded once and then looked up. Anything that inserted into
    or resized the table, or any error, is never memoised.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._block_memo: dict[
            bytes, tuple[list[HeaderTuple], tuple[object, int, int], int, int]
        ] = {}

    def decode(self, data: bytes, raw: bool = False) -> list[HeaderTuple]:
        if not raw or len(data) > HPACK_MEMO_MAX_BLOCK:
            return list(super().decode(data, raw))
        key = bytes(data)
        state = table_state(self.header_table)
        hit = self._block_memo.get(key)
        if (
            hit is not None
            and hit[1] == state
            and hit[1][0] is state[0]
            and hit[2] == self.max_allowed_table_size
            and hit[3] == self.max_header_list_size
        ):
            return list(hit[0])
        headers = list(super().decode(data, raw))
        after = table_state(self.header_table)
        if after == state and after[0] is state[0]:
            memo = self._block_memo
            if len(memo) >= HPACK_MEMO_ENTRIES:
                memo.clear()
            memo[key] = (headers, state, self.max_allowed_table_size, self.max_header_list_size)
            return list(headers)
        return headers
