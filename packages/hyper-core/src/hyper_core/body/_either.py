"""Either: one of two bodies behind one type (http-body-util's ``Either``).

What belongs here: :class:`Either`.

Strategy: Python needs no wrapper to return one of two body types (any
object with ``frame()`` is a body), but typed code does: a service declared
as returning ``Response[Either[Full, StreamBody]]`` says exactly which two
bodies it may hand out, and callers can ask which one it was
(:attr:`Either.is_left`) and take it back out (:meth:`Either.into_inner`).
Every call goes straight to the chosen body; nothing is added to it.
"""

from __future__ import annotations

from typing import Generic, TypeVar, final

from hyper_core.body._body import Body
from hyper_core.body._frame import Frame, SizeHint

__all__ = ["Either"]

L = TypeVar("L", bound=Body)
R = TypeVar("R", bound=Body)


@final
class Either(Generic[L, R]):
    """A body that is one of two bodies: the left one or the right one.

    Make it with :meth:`left` or :meth:`right`::

        def body_for(cached: bytes | None) -> Either[Full, StreamBody]:
            if cached is not None:
                return Either.left(Full(cached))
            return Either.right(StreamBody(produce()))

    Frames, errors, the end of stream, the size hint and closing are all
    the chosen body's.
    """

    __slots__ = ("_body", "_is_left")

    _body: L | R
    _is_left: bool

    def __init__(self) -> None:
        raise TypeError("use Either.left(body) or Either.right(body)")

    @classmethod
    def left(cls, body: L, /) -> Either[L, R]:
        """Return an ``Either`` holding ``body`` as its left side."""
        either: Either[L, R] = object.__new__(cls)
        either._body = body
        either._is_left = True
        return either

    @classmethod
    def right(cls, body: R, /) -> Either[L, R]:
        """Return an ``Either`` holding ``body`` as its right side."""
        either: Either[L, R] = object.__new__(cls)
        either._body = body
        either._is_left = False
        return either

    @property
    def is_left(self) -> bool:
        """True when the body is the left one."""
        return self._is_left

    @property
    def is_right(self) -> bool:
        """True when the body is the right one."""
        return not self._is_left

    def into_inner(self) -> L | R:
        """Return the body held, whichever side it is."""
        return self._body

    async def frame(self) -> Frame | None:
        """Return the chosen body's next frame.

        Raises:
            Exception: Whatever the chosen body raises.

        Cancel safety: as the chosen body's.
        """
        return await self._body.frame()

    def is_end_stream(self) -> bool:
        """Return the chosen body's answer."""
        return self._body.is_end_stream()

    def size_hint(self) -> SizeHint:
        """Return the chosen body's hint."""
        return self._body.size_hint()

    async def aclose(self) -> None:
        """Close the chosen body."""
        await self._body.aclose()

    def __repr__(self) -> str:
        side = "left" if self._is_left else "right"
        return f"Either.{side}({self._body!r})"
