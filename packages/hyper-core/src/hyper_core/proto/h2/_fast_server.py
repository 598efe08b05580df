"""The server's h2 connection, with fast paths for plain responses.

What belongs here: :class:`H2ServerConnection`, the ``h2.connection.H2Connection``
subclass every server connection uses (made by
``_common.new_h2_connection``), and the HPACK memo decoder it reads with.

Strategy (the server's per-request cost is mostly h2's): this connection has
fast paths that do exactly what h2's own methods do with our configuration
(outbound normalization and validation off, no padding, no priority), with
fewer layers: a final response's HEADERS and a DATA frame are written
straight from h2's stream state machines and flow-control counters
(``send_final_headers``, ``send_data_fast``, ``send_response_fast``), HPACK
blocks that leave the dynamic table untouched are memoised against the
table's state (encoding and decoding), and h2's per-stream count of open
streams, which only feeds a limit the server enforces itself, prunes closed
streams in batches. Anything outside the fast paths' preconditions takes
h2's own method, and ``test_server_h2_fastpath.py`` checks both give the
same bytes and state.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h2.stream
from hpack import Decoder, Encoder, HeaderTuple

from ._common import _H2Connection

__all__ = ["EncodeMemo", "H2ServerConnection", "memo_encode"]


#: Memoised HPACK blocks per connection and direction, and the longest block
#: memoised, in bytes: a hello-world request or response is 5 to 20 bytes
#: once its fields are in the dynamic table; the bounds keep what a client
#: can make us hold to a few KiB.
_HPACK_MEMO_ENTRIES: Final = 32
_HPACK_MEMO_MAX_BLOCK: Final = 256
#: Streams h2's table may hold beyond the last pruning before the server
#: prunes closed ones again (h2 itself prunes on every new stream).
_PRUNE_SLACK: Final = 32

_FRAME_HEAD: Final = struct.Struct(">HBBBL")
_DATA_TYPE: Final = 0x0
_HEADERS_TYPE: Final = 0x1
_CONTINUATION_TYPE: Final = 0x9
_END_STREAM: Final = 0x1
_END_HEADERS: Final = 0x4
_SEND_HEADERS: Final = h2.connection.ConnectionInputs.SEND_HEADERS
_SEND_DATA: Final = h2.connection.ConnectionInputs.SEND_DATA
_STREAM_SEND_HEADERS: Final = h2.stream.StreamInputs.SEND_HEADERS
_STREAM_SEND_DATA: Final = h2.stream.StreamInputs.SEND_DATA
_STREAM_SEND_END_STREAM: Final = h2.stream.StreamInputs.SEND_END_STREAM


def _frame_head(length: int, frame_type: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte frame header, packed as hyperframe's ``Frame.serialize`` does."""
    return _FRAME_HEAD.pack(
        (length >> 8) & 0xFFFF, length & 0xFF, frame_type, flags, stream_id & 0x7FFFFFFF
    )


def _table_state(table: Any) -> tuple[object, int, int]:
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
    ``_HPACK_MEMO_ENTRIES`` of at most ``_HPACK_MEMO_MAX_BLOCK`` bytes), so a
    hit writes exactly what the encoder would have written.
    """
    table = encoder.header_table
    if table.resized:
        return encoder.encode(headers)
    key = tuple(headers)
    state = _table_state(table)
    hit = memo.get(key)
    if hit is not None and hit[1] == state and hit[1][0] is state[0]:
        return hit[0]
    block = encoder.encode(headers)
    after = _table_state(table)
    if after == state and after[0] is state[0] and len(block) <= _HPACK_MEMO_MAX_BLOCK:
        if len(memo) >= _HPACK_MEMO_ENTRIES:
            memo.clear()
        memo[key] = (block, state)
    return block


class _MemoDecoder(Decoder):
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
        if not raw or len(data) > _HPACK_MEMO_MAX_BLOCK:
            return list(super().decode(data, raw))
        key = bytes(data)
        state = _table_state(self.header_table)
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
        after = _table_state(self.header_table)
        if after == state and after[0] is state[0]:
            memo = self._block_memo
            if len(memo) >= _HPACK_MEMO_ENTRIES:
                memo.clear()
            memo[key] = (headers, state, self.max_allowed_table_size, self.max_header_list_size)
            return list(headers)
        return headers


class H2ServerConnection(_H2Connection):
    """The server's h2 connection, with the fast paths of the module docstring.

    They assume ``normalize_outbound_headers`` and
    ``validate_outbound_headers`` off (as :func:`new_h2_connection` sets
    them): header lists come from :func:`response_headers_to_h2`.
    """

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        assert not config.normalize_outbound_headers
        assert not config.validate_outbound_headers
        self.decoder = _MemoDecoder()
        self._fast_encode_memo: EncodeMemo = {}
        self._fast_prune_at = _PRUNE_SLACK

    @property
    def open_inbound_streams(self) -> int:
        """Open client streams; closed ones are pruned only every few streams.

        h2 reads this on every new stream for its own MAX_CONCURRENT_STREAMS
        check, which the server disables (:class:`_AdvertisedOnlyConcurrency`)
        and does itself; counting also prunes closed streams from h2's table,
        which is all that must still happen, so it happens in batches (the
        count is exact whenever pruning runs, and 0 in between).
        """
        streams = self.streams
        if len(streams) < self._fast_prune_at:
            return 0
        count = self._open_streams(1)
        self._fast_prune_at = len(streams) + _PRUNE_SLACK
        return count

    def _fast_encode(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """``self.encoder.encode(headers)``, memoised while the table is unchanged."""
        return memo_encode(self.encoder, self._fast_encode_memo, headers)

    def _fast_stream(self, stream_id: int, headers: Sequence[tuple[bytes, bytes]]) -> Any:
        # The stream if the fast path applies: a final response's first
        # header block, made of plain tuples (a NeverIndexedHeaderTuple must
        # reach hpack as such, and compares equal to a plain tuple).
        stream = self.streams.get(stream_id)
        if (
            stream is None
            or stream.state_machine.headers_sent
            or headers[0][1][:1] == b"1"
            or any(type(field) is not tuple for field in headers)
        ):
            return None
        return stream

    def _fast_headers_bytes(
        self, stream: Any, headers: list[tuple[bytes, bytes]], end: bool
    ) -> bytes:
        # What H2Connection.send_headers does for a server's final response,
        # in its order: connection and stream transitions, encoding, the
        # END_STREAM transition, then the frames.
        self.state_machine.process_input(_SEND_HEADERS)
        machine = stream.state_machine
        machine.process_input(_STREAM_SEND_HEADERS)
        block = self._fast_encode(headers)
        flags = 0
        if end:
            machine.process_input(_STREAM_SEND_END_STREAM)
            flags = _END_STREAM
        stream.request_method = None  # h2: the :method of the block sent (none)
        sid = stream.stream_id
        size = stream.max_outbound_frame_size
        if len(block) <= size:
            return _frame_head(len(block), _HEADERS_TYPE, flags | _END_HEADERS, sid) + block
        parts = [_frame_head(size, _HEADERS_TYPE, flags, sid), block[:size]]
        for offset in range(size, len(block), size):
            chunk = block[offset : offset + size]
            last = offset + size >= len(block)
            flag = _END_HEADERS if last else 0
            parts += (_frame_head(len(chunk), _CONTINUATION_TYPE, flag, sid), chunk)
        return b"".join(parts)

    def _fast_data_bytes(self, stream: Any, data: bytes, end: bool) -> bytes:
        # What H2Connection.send_data does without padding, in its order.
        size = len(data)
        self.state_machine.process_input(_SEND_DATA)
        machine = stream.state_machine
        machine.process_input(_STREAM_SEND_DATA)
        flags = 0
        if end:
            machine.process_input(_STREAM_SEND_END_STREAM)
            flags = _END_STREAM
        stream.outbound_flow_control_window -= size
        self.outbound_flow_control_window -= size
        return _frame_head(size, _DATA_TYPE, flags, stream.stream_id) + data

    def _fast_fits(self, stream: Any, data: bytes) -> bool:
        size = len(data)
        return (
            size <= self.outbound_flow_control_window
            and size <= stream.outbound_flow_control_window
            and size <= self.max_outbound_frame_size
        )

    def send_final_headers(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool
    ) -> None:
        """``send_headers(stream_id, headers, end_stream)`` for a final response."""
        stream = self._fast_stream(stream_id, headers)
        if stream is None:
            self.send_headers(stream_id, headers, end_stream)
            return
        self._data_to_send += self._fast_headers_bytes(stream, headers, end_stream)

    def send_data_fast(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        """``send_data(stream_id, data, end_stream)`` (no padding)."""
        stream = self.streams.get(stream_id)
        if stream is None or not self._fast_fits(stream, data):
            self.send_data(stream_id, data, end_stream)  # raises as h2 does
            return
        self._data_to_send += self._fast_data_bytes(stream, data, end_stream)

    def send_response_fast(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], data: bytes
    ) -> bool:
        """Send a final response with ``data`` as its whole body, if it fits at once.

        Returns False, having done nothing, when ``data`` does not fit the
        flow-control windows and one frame, or the fast path does not apply:
        the caller then sends it piece by piece. ``data`` must not be empty
        (an empty body is END_STREAM on the HEADERS frame).
        """
        stream = self._fast_stream(stream_id, headers)
        if stream is None or not self._fast_fits(stream, data):
            return False
        frames = self._fast_headers_bytes(stream, headers, False)
        self._data_to_send += frames + self._fast_data_bytes(stream, data, True)
        return True
