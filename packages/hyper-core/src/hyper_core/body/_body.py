"""The Body protocol: what every request and response body is.

What belongs here: the interface only; implementations live in their own
modules.

Strategy: a body is pulled, one frame at a time, by whoever consumes it (a
connection writing it out, or an application reading it). Nothing is pushed
into a buffer the consumer did not ask for, which is where backpressure comes
from. The protocol mirrors ``http_body::Body`` with Python's conventions:
``None`` marks the end instead of ``Poll::Ready(None)``, errors are raised
instead of returned, and ``aclose()`` replaces ``Drop``.

Any object with these four methods is a body; subclass :class:`Body` to
inherit the defaults of the last three (as a Rust type relies on the trait's
default methods).
"""

from __future__ import annotations

from typing import Protocol

from hyper_core.body._frame import Frame, SizeHint

__all__ = ["Body"]

_UNKNOWN = SizeHint()


class Body(Protocol):
    """A stream of frames: data, then optionally trailers, then the end.

    Implementations provide :meth:`frame`. The other methods have defaults
    for classes that subclass ``Body`` explicitly; a class that does not
    subclass it must define all four.
    """

    async def frame(self) -> Frame | None:
        """Return the next frame, or ``None`` at the end of the body.

        Once it has returned ``None`` it keeps returning ``None``.

        Raises:
            hyper_core.error.HyperError: A subclass telling why the body
                failed (for example :class:`~hyper_core.error.BodyWriteAbortedError`,
                :class:`~hyper_core.error.LengthLimitError`). A body made from
                application code may raise the application's own errors.

        Cancel safety: depends on the body; the bodies in this package lose
        nothing when cancelled while waiting for a frame.
        """
        ...

    def is_end_stream(self) -> bool:
        """Return True if :meth:`frame` will certainly return ``None`` next.

        False is always a correct answer; True lets a connection finish a
        message without one more read (default: False).
        """
        return False

    def size_hint(self) -> SizeHint:
        """Return what is known of the remaining size, in bytes (default: nothing)."""
        return _UNKNOWN

    async def aclose(self) -> None:
        """Release the body; the consumer will read no more (default: nothing to do).

        A connection calls it when it stops reading a body early, so a body
        backed by a producer or a connection can tell them to stop.
        """
        return None
