"""The body of a request received by the HTTP/1 server, pulled from the socket.

What belongs here: :class:`RequestBodySource`, the ``Incoming`` source that
reads a request body through the connection's codec only when the
application asks for the next frame.

Strategy: there is no reader task and no queue. ``next_frame`` parses what
the codec has buffered and, when that is not enough, reads the socket itself,
so an application that reads slowly holds back the client through TCP flow
control and the server never buffers more than one read (backpressure). The
first read is also the moment ``100 Continue`` is written, when the client
asked for it and no response has started (RFC 9110 section 10.1.1; hyper
does the same). When the application stops early (``aclose``) or the
response is finished first, the connection takes over: it drains what is left
up to a bound, or closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from hyper_core.body import Frame, SizeHint
from hyper_core.error import ClosedError
from hyper_core.http import Headers

from ._events import NEED_DATA, Data, EndOfMessage

if TYPE_CHECKING:
    from ._server import ServerDispatcher

__all__ = ["RequestBodySource"]

_UNKNOWN: Final = SizeHint()
_ZERO: Final = SizeHint.with_exact(0)


@final
class RequestBodySource:
    """Feeds an ``Incoming`` from the connection's codec and socket."""

    __slots__ = (
        "_conn",
        "detached",
        "done",
        "expect_continue",
        "failure",
        "reading",
        "released",
        "started",
    )

    def __init__(self, conn: ServerDispatcher) -> None:
        self._conn = conn
        # The client sent Expect: 100-continue (it may hold the body back).
        self.expect_continue = conn.codec.they_are_waiting_for_100_continue
        self.started = False  # the application asked for a frame
        self.done = False  # the end of the body was parsed
        self.reading = False  # a next_frame call is in progress
        self.released = False  # the application closed the body
        self.detached = False  # the connection took over (drained or closed)
        # What a read raised (the client's fault: see _server._log_service_error).
        self.failure: BaseException | None = None

    async def next_frame(self) -> Frame | None:
        """Return the next frame of the body, reading the socket when needed.

        Raises:
            ParseError: the chunked framing is malformed.
            IncompleteMessageError: the client closed before the body ended.
            ClosedError: the connection already finished with this request.
        """
        if self.done:
            return None
        if self.detached:
            raise ClosedError("the request body is no longer readable: the response was finished")
        conn = self._conn
        codec = conn.codec
        self.started = True
        self.reading = True
        try:
            if codec.they_are_waiting_for_100_continue:
                await conn.send_continue()
            while True:
                event = codec.next_event()
                kind = type(event)
                if kind is Data:
                    assert isinstance(event, Data)
                    return Frame.data(event.data)
                if kind is EndOfMessage:
                    assert isinstance(event, EndOfMessage)
                    self.done = True
                    if event.trailers:
                        return Frame.trailers(Headers._from_trusted(event.trailers))
                    return None
                if event is not NEED_DATA:  # pragma: no cover - codec contract
                    raise ClosedError(f"unexpected event while reading a body: {event!r}")
                codec.receive_data(await conn.receive())
        except Exception as exc:
            self.failure = exc
            raise
        finally:
            self.reading = False

    def is_end_stream(self) -> bool:
        """True once the end of the body was parsed."""
        return self.done or self._conn.codec.their_body_length == 0

    def size_hint(self) -> SizeHint:
        """Exact for a Content-Length body (what is left of it), else unknown."""
        if self.done:
            return _ZERO
        remaining = self._conn.codec.their_body_length
        return _UNKNOWN if remaining is None else SizeHint.with_exact(remaining)

    def release(self) -> None:
        """The application closed the body; the connection drains or closes later."""
        self.released = True
