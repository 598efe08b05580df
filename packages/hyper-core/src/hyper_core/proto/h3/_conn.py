"""The connection-level half of HTTP/3 shared by both roles.

What belongs here: :class:`H3Core`: our control stream and SETTINGS, the
peer's unidirectional streams (control, QPACK encoder and decoder, push,
unknown types), GOAWAY both ways, and turning the end of the QUIC
connection into one :class:`~hyper_core.error.HyperError`.

Strategy: the peer's control stream is read by its own task; what a role
must react to (SETTINGS arrived, a GOAWAY) is reported through callbacks
set by the role. A connection error (RFC 9114 section 8) closes QUIC with
its code at once and is kept as the connection's error; streams still
open then fail with :class:`~hyper_core.rt.QuicConnectionClosed`, which
:meth:`H3Core.translate` maps like every other transport failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Final

import anyio

from hyper_core.error import HyperError, IncompleteMessageError, ProtocolError, TimeoutError
from hyper_core.rt._quic import (
    QuicConnection,
    QuicConnectionClosed,
    QuicReceiveStream,
    QuicSendStream,
    QuicStreamReset,
)

from ._frames import (
    RESERVED_FRAME_TYPES,
    FrameReader,
    FrameType,
    H3Error,
    H3ErrorCode,
    Setting,
    StreamType,
    encode_frame,
    encode_settings,
    encode_varint,
    parse_settings,
    parse_varint_payload,
)

__all__ = ["H3Core"]

#: Largest control-stream frame we read whole (SETTINGS, GOAWAY...), in bytes.
MAX_CONTROL_FRAME: Final = 16_384
#: QPACK encoder instruction "Set Dynamic Table Capacity 0": the only one a
#: peer may send us, as we allow no dynamic table.
_SET_CAPACITY_ZERO: Final = 0x20
_CRITICAL: Final = (StreamType.CONTROL, StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER)
_TRANSPORT_ERRORS: Final = (QuicStreamReset, QuicConnectionClosed, anyio.ClosedResourceError)


class H3Core:
    """Our control stream, the peer's unidirectional streams, GOAWAY, the connection's end."""

    def __init__(
        self,
        quic: QuicConnection,
        *,
        max_field_section_size: int,
        enable_connect_protocol: bool = False,
    ) -> None:
        self.quic = quic
        self.is_client = quic.is_client
        self.max_field_section_size = max_field_section_size
        self._local_settings: dict[int, int] = {
            Setting.MAX_FIELD_SECTION_SIZE: max_field_section_size
        }
        if enable_connect_protocol:
            self._local_settings[Setting.ENABLE_CONNECT_PROTOCOL] = 1
        self.peer_settings: dict[int, int] | None = None
        self.settings_received = anyio.Event()
        self._control: QuicSendStream | None = None
        self._peer_streams: set[int] = set()  # stream types seen: control, encoder, decoder
        self.goaway_received: int | None = None
        self.on_goaway: Callable[[int], None] | None = None
        self.error: HyperError | None = None
        self.closing = False  # we closed the connection on purpose (after GOAWAY, or error)

    # -- our side ---------------------------------------------------------------

    async def start(self) -> None:
        """Open our control stream and send SETTINGS (RFC 9114 section 6.2.1)."""
        control = await self.quic.open_unidirectional_stream()
        self._control = control
        await control.send(
            encode_varint(StreamType.CONTROL) + encode_settings(self._local_settings)
        )

    async def send_goaway(self, identifier: int) -> None:
        """Send GOAWAY (a stream id from a server, a push id from a client)."""
        if self._control is None:
            return
        with contextlib.suppress(*_TRANSPORT_ERRORS):
            await self._control.send(encode_frame(FrameType.GOAWAY, encode_varint(identifier)))

    @property
    def peer_max_field_section_size(self) -> int | None:
        """The peer's SETTINGS_MAX_FIELD_SECTION_SIZE, if it sent one."""
        settings = self.peer_settings
        return None if settings is None else settings.get(Setting.MAX_FIELD_SECTION_SIZE)

    @property
    def peer_enables_connect_protocol(self) -> bool:
        """Whether the peer's SETTINGS allow extended CONNECT (RFC 9220)."""
        settings = self.peer_settings
        return settings is not None and settings.get(Setting.ENABLE_CONNECT_PROTOCOL) == 1

    def fail(self, code: int, message: str) -> None:
        """A connection error: close QUIC with ``code``; keep the first error."""
        if self.error is None:
            self.error = ProtocolError(message, error_code=int(code))
        self.closing = True
        self.quic.close(int(code), message)

    def close_gracefully(self) -> None:
        """Close with H3_NO_ERROR (the end of a graceful shutdown)."""
        self.closing = True
        self.quic.close(H3ErrorCode.H3_NO_ERROR, "")

    def translate(self, exc: BaseException) -> HyperError:
        """The :class:`HyperError` for a transport failure seen by a stream."""
        if self.error is not None:
            return self.error
        if isinstance(exc, QuicStreamReset):
            return ProtocolError(
                f"the stream was reset (error code 0x{exc.error_code:x})",
                error_code=exc.error_code,
            )
        if isinstance(exc, QuicConnectionClosed):
            return self.closed_error(exc)
        return IncompleteMessageError("the stream was closed")

    def closed_error(self, closed: QuicConnectionClosed) -> HyperError:
        """The error a connection's end means to requests still in flight."""
        if self.error is not None:
            return self.error
        if closed.timed_out:
            return TimeoutError("the QUIC connection timed out")
        if closed.error_code not in (0, H3ErrorCode.H3_NO_ERROR) and closed.by_peer:
            error: HyperError = ProtocolError(
                f"the peer closed the connection (error code 0x{closed.error_code:x})"
                + (f": {closed.reason}" if closed.reason else ""),
                error_code=closed.error_code,
            )
        else:
            error = IncompleteMessageError("the connection closed before the message was complete")
        error.__cause__ = closed
        return error

    # -- the peer's unidirectional streams ----------------------------------------

    async def serve_unidirectional(self, stream: QuicReceiveStream) -> None:
        """Read one unidirectional stream of the peer to its end (run it in a task)."""
        reader = FrameReader(stream)
        kind: int | None = None
        try:
            kind = await reader.read_varint()
            if kind is None:
                return
            if kind in _CRITICAL:
                if kind in self._peer_streams:
                    raise H3Error(H3ErrorCode.H3_STREAM_CREATION_ERROR, "duplicate critical stream")
                self._peer_streams.add(kind)
                if kind == StreamType.CONTROL:
                    await self._read_control(reader)
                else:
                    await self._read_qpack(reader, kind)
            elif kind == StreamType.PUSH:
                # A client never sends MAX_PUSH_ID, so no push id is valid;
                # a server never receives push streams (section 6.2.2).
                code = (
                    H3ErrorCode.H3_ID_ERROR
                    if self.is_client
                    else H3ErrorCode.H3_STREAM_CREATION_ERROR
                )
                raise H3Error(code, "push stream without MAX_PUSH_ID")
            else:
                # Unknown (reserved, extension) types are ignored (section 6.2).
                stream.stop_sending(H3ErrorCode.H3_STREAM_CREATION_ERROR)
        except H3Error as exc:
            self.fail(exc.code, str(exc))
        except QuicStreamReset:
            if kind in _CRITICAL:
                self.fail(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "a critical stream was reset")
        except (QuicConnectionClosed, anyio.ClosedResourceError):
            pass

    async def _read_control(self, reader: FrameReader) -> None:
        first = True
        while True:
            header = await reader.next_header()
            if header is None:
                raise H3Error(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "the control stream ended")
            frame_type, length = header
            if first and frame_type != FrameType.SETTINGS:
                raise H3Error(H3ErrorCode.H3_MISSING_SETTINGS, "control stream without SETTINGS")
            if frame_type in (FrameType.DATA, FrameType.HEADERS, FrameType.PUSH_PROMISE) or (
                frame_type in RESERVED_FRAME_TYPES
            ):
                raise H3Error(
                    H3ErrorCode.H3_FRAME_UNEXPECTED, "frame not allowed on control stream"
                )
            if frame_type == FrameType.SETTINGS and not first:
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "second SETTINGS frame")
            if frame_type == FrameType.MAX_PUSH_ID and self.is_client:
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "MAX_PUSH_ID from a server")
            first = False
            known = (FrameType.SETTINGS, FrameType.GOAWAY, FrameType.MAX_PUSH_ID)
            if frame_type not in (*known, FrameType.CANCEL_PUSH):
                await reader.skip()
                continue
            if length > MAX_CONTROL_FRAME:
                raise H3Error(H3ErrorCode.H3_EXCESSIVE_LOAD, "control frame too large")
            payload = await reader.read_payload()
            if frame_type == FrameType.SETTINGS:
                self.peer_settings = parse_settings(payload)
                self.settings_received.set()
            elif frame_type == FrameType.GOAWAY:
                self._on_goaway(parse_varint_payload(payload))
            elif frame_type == FrameType.CANCEL_PUSH and self.is_client:
                # We allowed no push, so no push id can be cancelled.
                raise H3Error(H3ErrorCode.H3_ID_ERROR, "CANCEL_PUSH without MAX_PUSH_ID")
            else:  # MAX_PUSH_ID or CANCEL_PUSH at a server that never pushes
                parse_varint_payload(payload)

    def _on_goaway(self, identifier: int) -> None:
        if self.is_client and identifier % 4 != 0:
            raise H3Error(H3ErrorCode.H3_ID_ERROR, "GOAWAY with a non-request stream id")
        previous = self.goaway_received
        if previous is not None and identifier > previous:
            raise H3Error(H3ErrorCode.H3_ID_ERROR, "GOAWAY id increased")
        self.goaway_received = identifier
        if self.on_goaway is not None:
            self.on_goaway(identifier)

    async def _read_qpack(self, reader: FrameReader, kind: int) -> None:
        while True:
            data = await reader.stream.receive(4096)
            if not data:
                raise H3Error(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "a QPACK stream ended")
            if kind == StreamType.QPACK_ENCODER and any(b != _SET_CAPACITY_ZERO for b in data):
                # Any insertion exceeds the capacity of 0 we advertised.
                raise H3Error(
                    H3ErrorCode.QPACK_ENCODER_STREAM_ERROR,
                    "dynamic table insertion beyond capacity 0",
                )
            # Decoder instructions (stream cancellations) need nothing from us.
