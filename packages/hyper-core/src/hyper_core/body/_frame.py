"""Frame and SizeHint: the units a body is made of and the size it announces.

What belongs here: :class:`Frame` (one piece of a body: data, trailers, or a
kind not yet known), :class:`FrameKind`, and :class:`SizeHint`.

Strategy: both are small immutable ``__slots__`` objects, made in the hot
path of every connection, so their constructors do no validation beyond what
keeps them consistent. A frame's payload is stored as is: data is ``bytes``
(never copied), trailers a :class:`~hyper_core.http.Headers`. Frame kinds a
future protocol may add (an HTTP/3 datagram, say) travel as
``Frame.other(kind, payload)``: bodies pass them through, and code that does
not know a kind ignores it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, final, overload

if TYPE_CHECKING:
    from hyper_core.http import Headers

__all__ = ["Frame", "FrameKind", "SizeHint"]


class FrameKind(enum.Enum):
    """What a :class:`Frame` carries."""

    DATA = "data"
    """Body bytes."""
    TRAILERS = "trailers"
    """Header fields sent after the data (the last frame of a body)."""
    OTHER = "other"
    """A kind this version does not know; see :attr:`Frame.other_kind`."""


_DATA: Final = FrameKind.DATA
_TRAILERS: Final = FrameKind.TRAILERS
_OTHER: Final = FrameKind.OTHER


@final
class Frame:
    """One piece of a body: data, trailers, or a kind not yet known.

    Make frames with :meth:`data`, :meth:`trailers` or :meth:`other`; read
    them with :attr:`data_ref` / :attr:`trailers_ref` (``None`` when the frame
    is of another kind), which is one attribute read on the hot path::

        frame = await body.frame()
        if frame is None:
            ...  # end of body
        elif (data := frame.data_ref) is not None:
            ...
        elif (trailers := frame.trailers_ref) is not None:
            ...
        # else: a kind this code does not know; skip it

    Frames are immutable and compare equal when kind and payload are equal.
    """

    __slots__ = ("_kind", "_other_kind", "_payload")

    _kind: FrameKind
    _payload: object
    _other_kind: str | None

    def __init__(self) -> None:
        raise TypeError("use Frame.data(), Frame.trailers() or Frame.other()")

    @classmethod
    def data(cls, data: bytes, /) -> Frame:
        """Return a data frame carrying ``data`` (not copied; may be empty)."""
        frame = object.__new__(cls)
        frame._kind = _DATA
        frame._payload = data
        frame._other_kind = None
        return frame

    @classmethod
    def trailers(cls, trailers: Headers, /) -> Frame:
        """Return a trailers frame carrying ``trailers`` (not copied)."""
        frame = object.__new__(cls)
        frame._kind = _TRAILERS
        frame._payload = trailers
        frame._other_kind = None
        return frame

    @classmethod
    def other(cls, kind: str, payload: object, /) -> Frame:
        """Return a frame of a kind not known to this version.

        Args:
            kind: A name for the kind (say ``"h3-datagram"``); read it back
                from :attr:`other_kind`.
            payload: Anything; read it back from :attr:`payload`.
        """
        frame = object.__new__(cls)
        frame._kind = _OTHER
        frame._payload = payload
        frame._other_kind = kind
        return frame

    @property
    def kind(self) -> FrameKind:
        """What this frame carries."""
        return self._kind

    @property
    def is_data(self) -> bool:
        """True for a data frame."""
        return self._kind is _DATA

    @property
    def is_trailers(self) -> bool:
        """True for a trailers frame."""
        return self._kind is _TRAILERS

    @property
    def data_ref(self) -> bytes | None:
        """The bytes of a data frame; ``None`` for any other kind."""
        if self._kind is _DATA:
            return self._payload  # type: ignore[return-value]
        return None

    @property
    def trailers_ref(self) -> Headers | None:
        """The header fields of a trailers frame; ``None`` for any other kind."""
        if self._kind is _TRAILERS:
            return self._payload  # type: ignore[return-value]
        return None

    @property
    def other_kind(self) -> str | None:
        """The name given to :meth:`other`; ``None`` for data and trailers."""
        return self._other_kind

    @property
    def payload(self) -> object:
        """What the frame carries, whatever its kind."""
        return self._payload

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (
            self._kind is other._kind
            and self._other_kind == other._other_kind
            and self._payload == other._payload
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._kind is _DATA:
            return f"Frame.data({self._payload!r})"
        if self._kind is _TRAILERS:
            return f"Frame.trailers({self._payload!r})"
        return f"Frame.other({self._other_kind!r}, {self._payload!r})"


class _ExactAccessor:
    """``SizeHint.exact``: a constructor on the class, a reading on an instance.

    ``SizeHint.exact(n)`` makes a hint of exactly ``n`` bytes; ``hint.exact``
    reads the exact size of a hint, or ``None`` when it is not exact.
    """

    @overload
    def __get__(self, obj: None, owner: type[SizeHint]) -> Callable[[int], SizeHint]: ...

    @overload
    def __get__(self, obj: SizeHint, owner: type[SizeHint]) -> int | None: ...

    def __get__(
        self, obj: SizeHint | None, owner: type[SizeHint]
    ) -> Callable[[int], SizeHint] | int | None:
        if obj is None:
            return owner.with_exact
        return obj._lower if obj._lower == obj._upper else None


@final
class SizeHint:
    """The size of a body, in bytes, as far as it is known: a lower and upper bound.

    ``SizeHint()`` knows nothing (0 or more bytes, no upper bound).
    ``SizeHint.exact(n)`` (or :meth:`with_exact`) is exactly ``n`` bytes;
    on an instance, ``hint.exact`` is that size, or ``None`` when the bounds
    differ. A connection uses an exact hint to send ``Content-Length`` instead
    of chunked encoding. Hints add up with ``+``.

    Args:
        lower: The fewest bytes the body can have (0 or more).
        upper: The most bytes it can have, or ``None`` for no known bound.

    Raises:
        ValueError: ``lower`` is negative or ``upper`` is less than ``lower``.
    """

    __slots__ = ("_lower", "_upper")

    _lower: int
    _upper: int | None

    exact = _ExactAccessor()

    def __init__(self, lower: int = 0, upper: int | None = None) -> None:
        if lower < 0:
            raise ValueError(f"a size hint's lower bound cannot be negative (got {lower})")
        if upper is not None and upper < lower:
            raise ValueError(f"upper bound {upper} is less than lower bound {lower}")
        self._lower = lower
        self._upper = upper

    @classmethod
    def with_exact(cls, size: int) -> SizeHint:
        """Return a hint of exactly ``size`` bytes (hyper's ``SizeHint::with_exact``).

        Raises:
            ValueError: ``size`` is negative.
        """
        if size < 0:
            raise ValueError(f"a body size cannot be negative (got {size})")
        hint = object.__new__(cls)
        hint._lower = hint._upper = size
        return hint

    @property
    def lower(self) -> int:
        """The fewest bytes the body can have."""
        return self._lower

    @property
    def upper(self) -> int | None:
        """The most bytes the body can have, or ``None`` when unbounded."""
        return self._upper

    def __add__(self, other: SizeHint) -> SizeHint:
        if not isinstance(other, SizeHint):
            return NotImplemented
        upper = None if self._upper is None or other._upper is None else self._upper + other._upper
        return SizeHint(self._lower + other._lower, upper)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SizeHint):
            return NotImplemented
        return self._lower == other._lower and self._upper == other._upper

    def __hash__(self) -> int:
        return hash((self._lower, self._upper))

    def __repr__(self) -> str:
        if self._lower == self._upper:
            return f"SizeHint.exact({self._lower})"
        return f"SizeHint(lower={self._lower}, upper={self._upper})"
