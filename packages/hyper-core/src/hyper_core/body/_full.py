"""Full and Empty: bodies whose bytes are all known up front.

What belongs here: the two bodies that need neither a task nor a channel.

Strategy: :class:`Full` is the fast path. Most responses are a ``Full`` of
known length, so it costs one small object: its bytes sit in the public
attribute :attr:`Full.data`, and a connection may test ``type(body) is Full``
and write ``body.data`` directly, with ``Content-Length: len(body.data)``,
without calling :meth:`Full.frame` at all. Neither body ever yields to the
event loop: there is nothing to wait for.
"""

from __future__ import annotations

from typing import Final, final

from hyper_core.body._frame import Frame, SizeHint

__all__ = ["Empty", "Full"]

_ZERO: Final = SizeHint.with_exact(0)


@final
class Full:
    """A body of bytes known up front: one data frame, then the end.

    An empty ``Full(b"")`` yields no frame at all (as ``http-body-util``'s
    ``Full`` does). :meth:`frame` and :meth:`aclose` return without yielding
    to the event loop.

    Args:
        data: The whole body. It is kept, not copied.

    Attributes:
        data: The whole body, as given. A connection that sees
            ``type(body) is Full`` may write this directly (and send
            ``Content-Length: len(body.data)``) instead of reading frames; it
            must then not call :meth:`frame` too.
    """

    __slots__ = ("_done", "data")

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self._done = not data

    async def frame(self) -> Frame | None:
        """Return the data frame the first time, then ``None``."""
        if self._done:
            return None
        self._done = True
        return Frame.data(self.data)

    def is_end_stream(self) -> bool:
        """Return True once the data has been taken (at once for ``b""``)."""
        return self._done

    def size_hint(self) -> SizeHint:
        """Return the exact number of bytes not yet taken."""
        return _ZERO if self._done else SizeHint.with_exact(len(self.data))

    async def aclose(self) -> None:
        """Mark the body finished; :meth:`frame` then returns ``None``."""
        self._done = True

    def __repr__(self) -> str:
        return f"Full({self.data!r})"


@final
class Empty:
    """A body with no frames: the end, at once.

    The default body of a :class:`~hyper_core.http.Request` or
    :class:`~hyper_core.http.Response` built without one.
    """

    __slots__ = ()

    async def frame(self) -> Frame | None:
        """Return ``None``: there is nothing."""
        return None

    def is_end_stream(self) -> bool:
        """Return True."""
        return True

    def size_hint(self) -> SizeHint:
        """Return exactly 0 bytes."""
        return _ZERO

    async def aclose(self) -> None:
        """Do nothing."""

    def __repr__(self) -> str:
        return "Empty()"
