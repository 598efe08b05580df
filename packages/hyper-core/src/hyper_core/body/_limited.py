"""Limited: a body that fails once it exceeds a number of bytes.

What belongs here: :class:`Limited`, the guard an application puts on a body
it reads into memory (``await collect(Limited(request.body, 1 << 20))``).

Strategy: as ``http_body_util::Limited``, count the data bytes that pass and
raise :class:`~hyper_core.error.LengthLimitError` on the first data frame
that would go past the limit, without passing any of that frame on. The size
hint is clamped to what is still allowed. Trailers and other frames do not
count.
"""

from __future__ import annotations

from typing import final

from hyper_core.body._body import Body
from hyper_core.body._frame import Frame, SizeHint
from hyper_core.error import LengthLimitError

__all__ = ["Limited"]


@final
class Limited:
    """Wrap ``body`` so that reading more than ``limit`` data bytes fails.

    A body of exactly ``limit`` bytes reads in full; one byte more raises.

    Args:
        body: The body to read through.
        limit: The most data bytes allowed (0 or more).

    Raises:
        ValueError: ``limit`` is negative.
    """

    __slots__ = ("_exceeded", "_inner", "_limit", "_remaining")

    def __init__(self, body: Body, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"limit must be 0 or more bytes (got {limit})")
        self._inner = body
        self._limit = limit
        self._remaining = limit
        self._exceeded = False

    @property
    def inner(self) -> Body:
        """The wrapped body."""
        return self._inner

    @property
    def limit(self) -> int:
        """The limit, in bytes."""
        return self._limit

    async def frame(self) -> Frame | None:
        """Return the inner body's next frame if it stays within the limit.

        Raises:
            LengthLimitError: This data frame would take the body past the
                limit (and every call after that one).
            Exception: Whatever the inner body raises.

        Cancel safety: as the inner body's.
        """
        if self._exceeded:
            raise LengthLimitError(self._limit)
        frame = await self._inner.frame()
        if frame is not None:
            data = frame.data_ref
            if data is not None:
                if len(data) > self._remaining:
                    self._exceeded = True
                    raise LengthLimitError(self._limit)
                self._remaining -= len(data)
        return frame

    def is_end_stream(self) -> bool:
        """Return the inner body's answer."""
        return self._inner.is_end_stream()

    def size_hint(self) -> SizeHint:
        """Return the inner hint, clamped to the bytes still allowed."""
        hint = self._inner.size_hint()
        remaining = self._remaining
        if hint.lower >= remaining:
            # Enough bytes are certain to come that this is all that can pass
            # (http-body-util reports the same).
            return SizeHint.with_exact(remaining)
        upper = hint.upper
        return SizeHint(hint.lower, remaining if upper is None else min(upper, remaining))

    async def aclose(self) -> None:
        """Close the inner body."""
        await self._inner.aclose()

    def __repr__(self) -> str:
        return f"Limited({self._inner!r}, {self._limit})"
