"""The client's h2 connection, with fast paths for request and response heads.

What belongs here: :class:`H2ClientConnection`, the
``h2.connection.H2Connection`` subclass every client connection uses (made
by ``_common.new_h2_connection``).

Strategy (as ``_fast_server`` does for responses): a request's HEADERS on a
new stream is written straight from h2's connection and stream state
machines, doing exactly what ``H2Connection.send_headers`` does with our
configuration (outbound normalization and validation off, no priority),
with fewer layers; its HPACK block is memoised while the encoder's dynamic
table is unchanged (a client sends the same few request heads again and
again); the response heads are decoded with the shared memoising
decoder, and h2's checks of a received header list (a pure function of the
list) run once per distinct head (:class:`_MemoStream`). h2 prunes closed
streams from its table on every new stream while it counts the open ones
for the peer's SETTINGS_MAX_CONCURRENT_STREAMS; the count cannot be over
the limit while the table itself is smaller than the limit, so the fast
path skips it then and prunes in batches. Anything
outside the preconditions takes h2's own method, and
``test_client_h2_fastpath.py`` checks both give the same bytes and state.

It also applies the client's reset policy (``_client_resets.py``): frames on
a stream we reset lately are ignored before h2 sees them, and the
RST_STREAM frames h2 sends on its own because of the server are counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import h2.config
import h2.connection
import h2.exceptions
import h2.stream
import h2.utilities
import hpack
from hpack import HeaderTuple
from hyperframe.frame import DataFrame, Frame, HeadersFrame, WindowUpdateFrame

from ._client_resets import ResetRecord
from ._common import _H2Connection
from ._fast_common import (
    CONTINUATION_TYPE,
    END_HEADERS,
    END_STREAM,
    HEADERS_TYPE,
    PRUNE_SLACK,
    SEND_HEADERS,
    STREAM_SEND_END_STREAM,
    STREAM_SEND_HEADERS,
    EncodeMemo,
    MemoDecoder,
    frame_head,
    memo_encode,
)

__all__ = ["H2ClientConnection"]

# Client streams have odd ids (h2's AllowedStreamIDs.ODD).
_CLIENT_IDS: Final = h2.connection.AllowedStreamIDs.ODD
# The frames ignored on a stream we reset lately (the others h2 ignores by
# itself, or are connection errors anyway); CONTINUATION frames reach us
# joined to their HEADERS.
_IGNORABLE: Final = (DataFrame, HeadersFrame)
_RECV_DATA: Final = h2.connection.ConnectionInputs.RECV_DATA
_RECV_HEADERS: Final = h2.connection.ConnectionInputs.RECV_HEADERS
#: Received header lists whose checked form is memoised per connection, and
#: the largest list memoised (names and values, in bytes): a response head
#: is a few hundred bytes; the bounds keep what a server can make us hold
#: to a few KiB per connection.
_CHECKED_MEMO_ENTRIES: Final = 16
_CHECKED_MEMO_MAX_BYTES: Final = 1024

_CheckedMemo = dict[tuple[object, tuple[HeaderTuple, ...]], list[Any]]


class _MemoStream(h2.stream.H2Stream):
    """An h2 stream whose received header lists are checked once per connection.

    h2 normalizes and validates every received header block with a chain
    of generators, a pure function of the list and the validation flags
    (with ``header_encoding`` off, as ours is). A server sends the same
    response head again and again (the memoising decoder hands back equal
    lists), so a list made only of plain ``HeaderTuple`` fields that passed
    is remembered; anything else, and every failure, runs h2's code.
    """

    _hc_memo: _CheckedMemo

    def _process_received_headers(
        self, headers: Iterable[Any], header_validation_flags: Any, header_encoding: Any
    ) -> list[Any]:
        fields = tuple(headers)
        plain = header_encoding is None and all(type(f) is HeaderTuple for f in fields)
        if not plain:
            return super()._process_received_headers(
                fields, header_validation_flags, header_encoding
            )
        key = (header_validation_flags, fields)
        memo = self._hc_memo
        hit = memo.get(key)
        if hit is not None:
            return list(hit)
        checked = super()._process_received_headers(fields, header_validation_flags, None)
        if sum(len(n) + len(v) for n, v in fields) <= _CHECKED_MEMO_MAX_BYTES:
            if len(memo) >= _CHECKED_MEMO_ENTRIES:
                memo.clear()
            memo[key] = list(checked)
        return checked


class H2ClientConnection(_H2Connection):
    """The client's h2 connection, with the fast path of the module docstring.

    It assumes ``normalize_outbound_headers`` and
    ``validate_outbound_headers`` off (as :func:`new_h2_connection` sets
    them): header lists come from ``_client_encode.encode_request``.
    """

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        assert config.client_side
        assert not config.normalize_outbound_headers
        assert not config.validate_outbound_headers
        limit = self.decoder.max_header_list_size
        self.decoder = MemoDecoder()
        self.decoder.max_header_list_size = limit
        self._fast_encode_memo: EncodeMemo = {}
        self._fast_prune_at = PRUNE_SLACK
        self._checked_memo: _CheckedMemo = {}
        # The reset policy (set by the client connection; see _client_resets).
        self.resets: ResetRecord | None = None
        self._recent_resets: dict[int, float] = {}

    def use_reset_record(self, record: ResetRecord) -> None:
        """Apply ``record``'s policy to the frames received from now on."""
        self.resets = record
        self._recent_resets = record.recent

    def _receive_frame(self, frame: Frame) -> list[Any]:
        recent = self._recent_resets
        if recent and frame.stream_id in recent and type(frame) in _IGNORABLE:
            record = self.resets
            assert record is not None
            if record.ignores(frame.stream_id):
                return self._ignore_frame(frame)
        events: list[Any] = super()._receive_frame(frame)
        return events

    def _ignore_frame(self, frame: Frame) -> list[Any]:
        """Ignore a DATA or HEADERS frame on a stream we reset (RFC 9113 section 5.1).

        The connection still accounts for it: DATA against (and back to) the
        connection's receive window, a header block through the HPACK decoder.
        """
        if type(frame) is DataFrame:
            self.state_machine.process_input(_RECV_DATA)
            size = frame.flow_controlled_length
            manager = self._inbound_flow_control_window_manager
            manager.window_consumed(size)  # raises on a window overrun
            increment = manager.process_bytes(size)
            if increment:
                update = WindowUpdateFrame(0)
                update.window_increment = increment
                self._prepare_for_sending([update])
        else:
            assert type(frame) is HeadersFrame
            self.state_machine.process_input(_RECV_HEADERS)
            try:
                self.decoder.decode(frame.data, raw=True)
            except hpack.OversizedHeaderListError as exc:
                raise h2.exceptions.DenialOfServiceError(f"oversized header block: {exc}") from exc
            except (hpack.HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
                raise h2.exceptions.ProtocolError(f"error decoding header block: {exc}") from exc
        return []

    def _handle_data_on_closed_stream(self, events: Any, exc: Any, frame: Any) -> Any:
        # h2 answers DATA on a closed stream with RST_STREAM(STREAM_CLOSED).
        if self.resets is not None:
            self.resets.count_local_error()
        return super()._handle_data_on_closed_stream(events, exc, frame)

    def _stream_is_closed_by_reset(self, stream_id: int) -> bool:
        # Asked only when h2 is about to answer a frame on a closed stream
        # with RST_STREAM(STREAM_CLOSED) (the answer when this is True).
        closed_by_reset = super()._stream_is_closed_by_reset(stream_id)
        if closed_by_reset and self.resets is not None:
            self.resets.count_local_error()
        return closed_by_reset

    def _begin_new_stream(
        self, stream_id: int, allowed_ids: h2.connection.AllowedStreamIDs
    ) -> h2.stream.H2Stream:
        # h2 4.4's ``_begin_new_stream`` (h2 is pinned <4.5), less its debug
        # logging, making a _MemoStream where h2 makes an H2Stream: the
        # stream is born with the memo instead of changing class later.
        # ``test_streams_begin_as_h2_begins_them`` holds the two equal.
        outbound = self._stream_id_is_outbound(stream_id)
        highest = self.highest_outbound_stream_id if outbound else self.highest_inbound_stream_id
        if stream_id <= highest:
            raise h2.exceptions.StreamIDTooLowError(stream_id, highest)
        if stream_id % 2 != int(allowed_ids):
            raise h2.exceptions.ProtocolError("Invalid stream ID for peer.")
        stream = _MemoStream(
            stream_id,
            config=self.config,
            inbound_window_size=self.local_settings.initial_window_size,
            outbound_window_size=self.remote_settings.initial_window_size,
        )
        stream._hc_memo = self._checked_memo
        stream.max_outbound_frame_size = self.max_outbound_frame_size
        self.streams[stream_id] = stream
        if outbound:
            self.highest_outbound_stream_id = stream_id
        else:
            self.highest_inbound_stream_id = stream_id
        return stream

    def _fast_encode(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """``self.encoder.encode(headers)``, memoised while the table is unchanged."""
        return memo_encode(self.encoder, self._fast_encode_memo, headers)

    def send_request_headers(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], end_stream: bool
    ) -> None:
        """``send_headers(stream_id, headers, end_stream)`` for a request on a new stream.

        Raises what h2's ``send_headers`` raises (it runs instead whenever
        the fast path's preconditions do not hold).
        """
        streams = self.streams
        if (
            stream_id in streams
            or len(streams) + 1 > self.remote_settings.max_concurrent_streams
            or any(type(field) is not tuple for field in headers)
        ):
            # An existing stream (trailers), a table that may be at the
            # limit (h2 counts exactly, pruning as it goes), or a
            # NeverIndexedHeaderTuple (it must reach hpack as such).
            self.send_headers(stream_id, headers, end_stream)
            return
        if len(streams) >= self._fast_prune_at:
            self._open_streams(1)  # prune closed streams, as h2's count does
            self._fast_prune_at = len(streams) + PRUNE_SLACK
        # What H2Connection.send_headers and H2Stream.send_headers do, in
        # their order: connection transition, new stream, stream transition,
        # encoding, the END_STREAM transition, then the frames.
        self.state_machine.process_input(SEND_HEADERS)
        stream: Any = self._begin_new_stream(stream_id, _CLIENT_IDS)
        machine = stream.state_machine
        machine.process_input(STREAM_SEND_HEADERS)
        block = self._fast_encode(headers)
        flags = 0
        if end_stream:
            machine.process_input(STREAM_SEND_END_STREAM)
            flags = END_STREAM
        if stream._authority is None:
            stream._authority = h2.utilities.authority_from_headers(headers)
        stream.request_method = h2.utilities.extract_method_header(headers)
        size = stream.max_outbound_frame_size
        if len(block) <= size:
            self._data_to_send += (
                frame_head(len(block), HEADERS_TYPE, flags | END_HEADERS, stream_id) + block
            )
            return
        parts = [frame_head(size, HEADERS_TYPE, flags, stream_id), block[:size]]
        for offset in range(size, len(block), size):
            chunk = block[offset : offset + size]
            last = offset + size >= len(block)
            parts += (
                frame_head(len(chunk), CONTINUATION_TYPE, END_HEADERS if last else 0, stream_id),
                chunk,
            )
        self._data_to_send += b"".join(parts)
