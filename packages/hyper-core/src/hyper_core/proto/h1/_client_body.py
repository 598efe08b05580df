"""The source of an HTTP/1 client response's body.

What belongs here: :class:`ResponseBodySource`, the source behind the
``Incoming`` body of a response, which pulls frames from the connection
(``_client_io.ClientIO``) as its reader asks for them.

Strategy:

* Frames the codec could produce with the head are handed over first (see
  ``ClientDispatcher._body_source``); after them each ``next_frame`` asks
  the codec, and reads from the connection only when it needs bytes, so an
  unread body holds at most one read in memory.
* A failure closes the connection, and the reader gets it again on every
  later call; a close before the end is an ``IncompleteMessageError``.
* Releasing the body early keeps the connection if the rest was already
  buffered, and closes it otherwise (as hyper does).
"""

from __future__ import annotations

from typing import Final, final

from hyper_core.body import Frame, SizeHint
from hyper_core.error import ClosedError, HyperError, IncompleteMessageError, ParseError
from hyper_core.http import Headers

from ._client_io import ClientIO, _Exchange
from ._codec import CodecState
from ._events import NEED_DATA, Data, EndOfMessage

__all__ = ["ResponseBodySource"]

_SEND_BODY: Final = CodecState.SEND_BODY
_UNKNOWN_SIZE: Final = SizeHint()
_ZERO_SIZE: Final = SizeHint.with_exact(0)


@final
class ResponseBodySource:
    """The source of a response's ``Incoming`` body: pulls from the connection."""

    __slots__ = (
        "_dispatcher",
        "_done",
        "_error",
        "_exchange",
        "_failure",
        "_frames",
        "_length_known",
    )

    def __init__(
        self,
        dispatcher: ClientIO,
        exchange: _Exchange,
        frames: list[Frame] | None = None,
        done: bool = False,
        failure: HyperError | None = None,
        length_known: bool = True,
    ) -> None:
        self._dispatcher = dispatcher
        self._exchange = exchange
        # Frames taken from the codec with the head (see _body_source), in
        # reverse order so that the next one is popped from the end.
        self._frames = frames[::-1] if frames else None
        self._done = done  # the codec reached the end (the exchange may be over)
        self._error: HyperError | None = None
        self._failure = failure  # a parse error met while taking those frames
        # Content-Length framing: the size stays exact (chunked and
        # close-delimited bodies say "unknown" until their end, as before).
        self._length_known = length_known

    async def next_frame(self) -> Frame | None:
        """Return the next frame of the body, or None at its end.

        Raises:
            IncompleteMessageError: the connection closed before the end.
            ParseError: the body's framing is invalid.

        Cancel safety: cancelled while waiting for bytes, nothing is lost.
        """
        if self._error is not None:
            raise self._error
        frames = self._frames
        if frames:
            return frames.pop()
        if self._done:
            return None
        if self._failure is not None:
            raise self._fail(self._failure)
        dispatcher = self._dispatcher
        codec = dispatcher._codec
        try:
            while True:
                event = codec.next_event()
                if event is not NEED_DATA:
                    break
                await dispatcher._read_more()
        except HyperError as exc:
            raise self._fail(exc)  # noqa: B904 (keeps the cause it already has)
        if type(event) is Data:
            return Frame.data(event.data)
        if type(event) is EndOfMessage:
            self._done = True
            dispatcher._response_finished(self._exchange)
            if event.trailers:
                return Frame.trailers(Headers._from_trusted(event.trailers))
            return None
        raise self._fail(ParseError(f"unexpected {event!r} in a response body", status_hint=None))

    def _fail(self, exc: HyperError) -> HyperError:
        error = exc
        if isinstance(exc, ClosedError):
            error = IncompleteMessageError(
                "connection closed before the response body was complete"
            )
            error.__cause__ = exc.__cause__
        self._error = error
        self._dispatcher._close(error)
        return error

    def is_end_stream(self) -> bool:
        """Whether the body is over (a Content-Length body fully read counts)."""
        if self._frames:
            return False
        if self._done or self._error is not None:
            return self._done
        if self._failure is not None:
            return False
        codec = self._dispatcher._codec
        return codec.their_state is _SEND_BODY and codec.their_body_length == 0

    def size_hint(self) -> SizeHint:
        """The bytes left: exact for a Content-Length body, unknown otherwise."""
        frames = self._frames
        if not frames and self._done:
            return _ZERO_SIZE
        if not self._length_known or self._failure is not None:
            return _UNKNOWN_SIZE
        held = 0
        if frames:
            for frame in frames:
                data = frame.data_ref
                if data is not None:
                    held += len(data)
        if self._done:
            return SizeHint.with_exact(held)
        remaining = self._dispatcher._codec.their_body_length
        return SizeHint.with_exact((remaining or 0) + held)

    def release(self) -> None:
        """The application closed the body: finish it if buffered, else close."""
        self._frames = None
        if not self._done and self._error is None:
            self._done = True
            self._dispatcher._release_body(self._exchange)
