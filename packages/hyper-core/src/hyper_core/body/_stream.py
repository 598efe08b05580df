"""StreamBody: a body pulled from an async iterable of bytes or frames.

What belongs here: the adapter from Python's async iteration to
:class:`~hyper_core.body.Body`.

Strategy: each :meth:`StreamBody.frame` call takes the next item from the
iterator, so the producer runs only as fast as the consumer reads (an async
generator is paused between items). ``bytes`` become data frames, frames
pass through unchanged; the first ``StopAsyncIteration`` is the end of the
body. :meth:`StreamBody.aclose` closes the iterator when it can be closed,
which runs an async generator's ``finally`` blocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import final

from hyper_core.body._frame import Frame, SizeHint

__all__ = ["StreamBody"]

_UNKNOWN = SizeHint()


@final
class StreamBody:
    """A body whose frames come from an async iterable.

    Example::

        async def numbers():
            for i in range(3):
                yield b"line %d" % i

        response = Response(200, body=StreamBody(numbers()))

    Args:
        source: Yields ``bytes`` (each becomes a data frame, as is) or
            :class:`Frame` objects (passed through, so a stream can end with
            trailers). ``bytearray`` and ``memoryview`` are copied to
            ``bytes``.
        size_hint: The size, if known (for example ``SizeHint.exact(n)``
            lets an HTTP/1 connection send ``Content-Length``); unknown by
            default. It is not enforced.

    Exceptions raised by the source propagate from :meth:`frame` unchanged.
    """

    __slots__ = ("_done", "_hint", "_iterator")

    def __init__(
        self, source: AsyncIterable[bytes | Frame], *, size_hint: SizeHint | None = None
    ) -> None:
        self._iterator: AsyncIterator[bytes | Frame] = aiter(source)
        self._hint = _UNKNOWN if size_hint is None else size_hint
        self._done = False

    async def frame(self) -> Frame | None:
        """Return the next item as a frame, or ``None`` once the source is exhausted.

        Raises:
            TypeError: The source yielded something that is neither bytes nor
                a :class:`Frame`.
            Exception: Whatever the source raises.

        Cancel safety: as the source's ``__anext__`` (an async generator
        cancelled mid-item is finished: the body then ends with an error).
        """
        if self._done:
            return None
        try:
            item = await anext(self._iterator)
        except StopAsyncIteration:
            self._done = True
            return None
        if type(item) is bytes:
            return Frame.data(item)
        if isinstance(item, Frame):
            return item
        if isinstance(item, bytes | bytearray | memoryview):
            return Frame.data(bytes(item))
        raise TypeError(f"StreamBody source yielded {type(item).__name__}, not bytes or Frame")

    def is_end_stream(self) -> bool:
        """Return True once the source is exhausted or the body closed."""
        return self._done

    def size_hint(self) -> SizeHint:
        """Return the hint given to the constructor (unknown by default)."""
        return self._hint

    async def aclose(self) -> None:
        """Finish the body and close the source if it has ``aclose`` (async generators do)."""
        self._done = True
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()

    def __repr__(self) -> str:
        return f"<StreamBody done={self._done}>"
