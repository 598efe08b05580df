"""The server's h2 connection, with fast paths for plain responses.

What belongs here: :class:`H2ServerConnection`, the ``h2.connection.H2Connection``
subclass every server connection uses (made by
``_common.new_h2_connection``); the frame heads and HPACK memos it shares
with the client's are in ``_fast_common``.

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

from collections.abc import Sequence
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import h2.stream

from ._common import _H2Connection
from ._fast_common import (
    CONTINUATION_TYPE,
    DATA_TYPE,
    END_HEADERS,
    END_STREAM,
    HEADERS_TYPE,
    PRUNE_SLACK,
    SEND_DATA,
    SEND_HEADERS,
    STREAM_SEND_DATA,
    STREAM_SEND_END_STREAM,
    STREAM_SEND_HEADERS,
    EncodeMemo,
    MemoDecoder,
    frame_head,
    memo_encode,
)

__all__ = ["H2ServerConnection"]


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
        self.decoder = MemoDecoder()
        self._fast_encode_memo: EncodeMemo = {}
        self._fast_prune_at = PRUNE_SLACK

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
        self._fast_prune_at = len(streams) + PRUNE_SLACK
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
        self.state_machine.process_input(SEND_HEADERS)
        machine = stream.state_machine
        machine.process_input(STREAM_SEND_HEADERS)
        block = self._fast_encode(headers)
        flags = 0
        if end:
            machine.process_input(STREAM_SEND_END_STREAM)
            flags = END_STREAM
        stream.request_method = None  # h2: the :method of the block sent (none)
        sid = stream.stream_id
        size = stream.max_outbound_frame_size
        if len(block) <= size:
            return frame_head(len(block), HEADERS_TYPE, flags | END_HEADERS, sid) + block
        parts = [frame_head(size, HEADERS_TYPE, flags, sid), block[:size]]
        for offset in range(size, len(block), size):
            chunk = block[offset : offset + size]
            last = offset + size >= len(block)
            flag = END_HEADERS if last else 0
            parts += (frame_head(len(chunk), CONTINUATION_TYPE, flag, sid), chunk)
        return b"".join(parts)

    def _fast_data_bytes(self, stream: Any, data: bytes, end: bool) -> bytes:
        # What H2Connection.send_data does without padding, in its order.
        size = len(data)
        self.state_machine.process_input(SEND_DATA)
        machine = stream.state_machine
        machine.process_input(STREAM_SEND_DATA)
        flags = 0
        if end:
            machine.process_input(STREAM_SEND_END_STREAM)
            flags = END_STREAM
        stream.outbound_flow_control_window -= size
        self.outbound_flow_control_window -= size
        return frame_head(size, DATA_TYPE, flags, stream.stream_id) + data

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
