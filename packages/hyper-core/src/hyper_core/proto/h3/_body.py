"""Message bodies on an HTTP/3 request stream, both directions, for both roles.

What belongs here: :class:`BodySource` (the received body as an
:class:`~hyper_core.body.Incoming` source: DATA frames, then optional
trailers), :func:`send_message` (a head and a :class:`~hyper_core.body.Body`
written as HEADERS, DATA and trailing HEADERS frames), and
:class:`TunnelIO`, the byte stream of a CONNECT tunnel over one request
stream.

Strategy: the body is pulled straight off the QUIC stream by whoever reads
it; the QUIC layer returns flow-control credit as bytes are read, so an
unread body holds at most the stream's receive window and a slow reader
slows its sender, with no queue in between. A small ``Full`` body leaves in
one ``send`` together with its head.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

import anyio

from hyper_core.body import Body, Empty, Frame, Full, SizeHint
from hyper_core.error import ClosedError, HyperError, ProtocolError
from hyper_core.http import Headers
from hyper_core.proto.h2._common import check_trailer_fields, trailers_to_h2
from hyper_core.rt._quic import (
    QuicConnectionClosed,
    QuicSendStream,
    QuicStream,
    QuicStreamReset,
)

from ._frames import (
    RESERVED_FRAME_TYPES,
    FrameReader,
    FrameType,
    H3Error,
    H3ErrorCode,
    encode_frame,
    frame_header,
)
from ._qpack import decode_field_section, encode_field_section

__all__ = ["BodySource", "TunnelIO", "send_message"]

_TRANSPORT_ERRORS: Final = (QuicStreamReset, QuicConnectionClosed, anyio.ClosedResourceError)
#: A DATA payload at most this large is copied next to its frame header for
#: one ``send``; larger ones go in two (a copy would cost more than the call).
_COALESCE: Final = 16_384
_ZERO: Final = SizeHint.with_exact(0)
_UNKNOWN: Final = SizeHint()


@final
class BodySource:
    """A received body, read frame by frame off its request stream (an Incoming source).

    Args:
        stream: The request stream.
        reader: The stream's frame reader, just past the HEADERS frame.
        content_length: The announced length, checked at the end (RFC 9114
            section 4.1.2).
        max_field_section_size: The limit for the trailer section.
        translate: Maps a transport failure to the reader's error.
        on_connection_error: Called with an :class:`H3Error` that ends the
            whole connection.
        on_done: Called once when the body ended, failed or was released,
            with whether the whole body was read.
    """

    __slots__ = (
        "_content_length",
        "_done",
        "_ended",
        "_error",
        "_max_fields",
        "_on_connection_error",
        "_on_done",
        "_reader",
        "_received",
        "_stream",
        "_translate",
    )

    def __init__(
        self,
        stream: QuicStream,
        reader: FrameReader,
        *,
        content_length: int | None,
        max_field_section_size: int,
        translate: Callable[[BaseException], HyperError],
        on_connection_error: Callable[[H3Error], None],
        on_done: Callable[[bool], None],
    ) -> None:
        self._stream = stream
        self._reader = reader
        self._content_length = content_length
        self._max_fields = max_field_section_size
        self._translate = translate
        self._on_connection_error = on_connection_error
        self._on_done = on_done
        self._received = 0
        self._ended = False
        self._done = False
        self._error: HyperError | None = None

    def _finish(self, complete: bool) -> None:
        if not self._done:
            self._done = True
            self._on_done(complete)

    async def next_frame(self) -> Frame | None:
        """The next DATA or trailers frame of the body; None at its end."""
        if self._error is not None:
            raise self._error
        if self._ended:
            return None
        try:
            frame = await self._next()
        except H3Error as exc:
            error = ProtocolError(str(exc), error_code=int(exc.code))
            if exc.stream:
                self._stream.stop_sending(exc.code)
                self._stream.reset(exc.code)
            else:
                self._on_connection_error(exc)
            self._fail(error)
            raise error from None
        except _TRANSPORT_ERRORS as exc:
            failure = self._translate(exc)
            self._fail(failure)
            raise failure from exc
        if frame is None:
            self._ended = True
            self._finish(True)
        return frame

    def _fail(self, error: HyperError) -> None:
        self._error = error
        self._finish(False)

    async def _next(self) -> Frame | None:
        reader = self._reader
        while True:
            if reader.remaining:
                data = await reader.read_data()
                self._received += len(data)
                if self._content_length is not None and self._received > self._content_length:
                    raise H3Error(
                        H3ErrorCode.H3_MESSAGE_ERROR, "more data than content-length", stream=True
                    )
                return Frame.data(data)
            header = await reader.next_header()
            if header is None:
                if self._content_length is not None and self._received != self._content_length:
                    raise H3Error(
                        H3ErrorCode.H3_MESSAGE_ERROR, "less data than content-length", stream=True
                    )
                return None
            frame_type, length = header
            if frame_type == FrameType.DATA:
                continue  # its payload is read at the top of the loop
            if frame_type == FrameType.HEADERS:
                return await self._trailers(length)
            if frame_type in RESERVED_FRAME_TYPES or frame_type in (
                FrameType.SETTINGS,
                FrameType.GOAWAY,
                FrameType.MAX_PUSH_ID,
                FrameType.CANCEL_PUSH,
                FrameType.PUSH_PROMISE,
            ):
                raise H3Error(
                    H3ErrorCode.H3_FRAME_UNEXPECTED,
                    f"frame type 0x{frame_type:x} on a request stream",
                )
            await reader.skip()  # unknown frame types are ignored

    async def _trailers(self, length: int) -> Frame:
        reader = self._reader
        if length > self._max_fields:
            raise H3Error(H3ErrorCode.H3_EXCESSIVE_LOAD, "trailer section too large", stream=True)
        fields = decode_field_section(await reader.read_payload(), self._max_fields)
        problem = check_trailer_fields(fields)
        if problem is not None:
            raise H3Error(H3ErrorCode.H3_MESSAGE_ERROR, problem, stream=True)
        # Nothing but unknown frames may follow the trailers (section 4.1).
        while (header := await reader.next_header()) is not None:
            if (
                header[0] in (FrameType.DATA, FrameType.HEADERS)
                or header[0] in RESERVED_FRAME_TYPES
            ):
                raise H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "frame after the trailers")
            await reader.skip()
        if self._content_length is not None and self._received != self._content_length:
            raise H3Error(
                H3ErrorCode.H3_MESSAGE_ERROR, "less data than content-length", stream=True
            )
        self._ended = True
        self._finish(True)
        return Frame.trailers(Headers._from_trusted(fields))

    def is_end_stream(self) -> bool:
        """Whether the body is over."""
        return self._ended or (not self._reader.remaining and self._reader.at_eof())

    def size_hint(self) -> SizeHint:
        """What is left of the announced length, if any."""
        if self._ended:
            return _ZERO
        if self._content_length is None:
            return _UNKNOWN
        return SizeHint.with_exact(max(0, self._content_length - self._received))

    def release(self) -> None:
        """The reader closed the body early: ask the peer to stop sending it."""
        if not self._ended and self._error is None:
            self._error = ClosedError("the body was closed")
            self._stream.stop_sending(H3ErrorCode.H3_REQUEST_CANCELLED)
        self._finish(self._ended)


def head_frame(fields: list[tuple[bytes, bytes]]) -> bytes:
    """A HEADERS frame carrying ``fields``."""
    return encode_frame(FrameType.HEADERS, encode_field_section(fields))


async def send_message(stream: QuicSendStream, head: bytes, body: Body) -> None:
    """Write a message: its HEADERS frame ``head``, then ``body`` (and its trailers), then FIN.

    The body is closed at the end, whatever happens.

    Raises:
        QuicStreamReset, QuicConnectionClosed: The stream or connection failed.
        Exception: Whatever the body raised.
    """
    kind = type(body)
    try:
        if kind is Empty:
            await stream.send(head)
            await stream.send_eof()
            return
        if kind is Full:
            data: bytes = body.data  # type: ignore[attr-defined]  # checked: Full
            if not data:
                await stream.send(head)
            elif len(data) <= _COALESCE:
                await stream.send(head + frame_header(FrameType.DATA, len(data)) + data)
            else:
                await stream.send(head + frame_header(FrameType.DATA, len(data)))
                await stream.send(data)
            await stream.send_eof()
            return
        await stream.send(head)
        while True:
            frame = await body.frame()
            if frame is None:
                break
            data_ref = frame.data_ref
            if data_ref is not None:
                if data_ref:
                    await send_data(stream, data_ref)
                continue
            trailers = frame.trailers_ref
            if trailers is not None:
                await stream.send(head_frame(trailers_to_h2(trailers)))
                break
        await stream.send_eof()
    finally:
        with anyio.CancelScope(shield=True):
            await body.aclose()


async def send_data(stream: QuicSendStream, data: bytes) -> None:
    """One DATA frame."""
    if len(data) <= _COALESCE:
        await stream.send(frame_header(FrameType.DATA, len(data)) + data)
    else:
        await stream.send(frame_header(FrameType.DATA, len(data)))
        await stream.send(data)


@final
class TunnelIO:
    """A CONNECT tunnel over one request stream, as :class:`hyper_core.rt.IO`.

    ``receive`` returns DATA payloads; ``send`` writes DATA frames;
    ``send_eof`` ends our side (FIN); ``aclose`` resets what is still open
    (H3_NO_ERROR once both sides ended, else H3_CONNECT_ERROR... as RFC 9114
    section 4.4 asks for a TCP reset).
    """

    __slots__ = ("_closed", "_on_close", "_reader", "_sent_eof", "_stream")

    def __init__(
        self, stream: QuicStream, reader: FrameReader, on_close: Callable[[], None]
    ) -> None:
        self._stream = stream
        self._reader = reader
        self._on_close = on_close
        self._closed = False
        self._sent_eof = False

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """The next bytes from the peer; raises ``anyio.EndOfStream`` at its end."""
        if self._closed:
            raise anyio.ClosedResourceError
        reader = self._reader
        try:
            while not reader.remaining:
                header = await reader.next_header()
                if header is None:
                    raise anyio.EndOfStream
                if header[0] != FrameType.DATA:
                    await reader.skip()
            return await reader.read_data(max_bytes)
        except (QuicStreamReset, QuicConnectionClosed, H3Error) as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc

    async def send(self, item: bytes, /) -> None:
        """Send ``item`` as a DATA frame."""
        if self._closed or self._sent_eof:
            raise anyio.ClosedResourceError
        if not item:
            return
        try:
            await send_data(self._stream, item)
        except (QuicStreamReset, QuicConnectionClosed) as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc

    async def send_eof(self) -> None:
        """End our direction of the tunnel (FIN)."""
        if self._closed or self._sent_eof:
            return
        self._sent_eof = True
        try:
            await self._stream.send_eof()
        except (QuicStreamReset, QuicConnectionClosed) as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc

    async def aclose(self) -> None:
        """Close the tunnel: what is still open is reset."""
        if self._closed:
            return
        self._closed = True
        stream = self._stream
        if not self._sent_eof:
            stream.reset(H3ErrorCode.H3_CONNECT_ERROR)
        if not stream.at_eof():
            stream.stop_sending(H3ErrorCode.H3_NO_ERROR)
        self._on_close()
