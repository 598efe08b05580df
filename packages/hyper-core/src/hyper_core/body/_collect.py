"""collect(): read a whole body into memory.

What belongs here: :func:`collect` and its result, :class:`Collected`.

Strategy: read frames to the end, keep the data chunks in a list and join
them once (a single chunk is returned as is, without a copy). Trailers are
kept; several trailers frames (a body should have at most one) merge in
order. Frames of unknown kinds are skipped. There is no size limit here:
wrap the body in :class:`~hyper_core.body.Limited` to have one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from hyper_core.body._body import Body

if TYPE_CHECKING:
    from hyper_core.http import Headers

__all__ = ["Collected", "collect"]


@final
class Collected:
    """A whole body read into memory.

    Attributes:
        data: Every data byte, in order.
        trailers: The trailers, or ``None`` if the body had none.
    """

    __slots__ = ("data", "trailers")

    def __init__(self, data: bytes, trailers: Headers | None = None) -> None:
        self.data = data
        self.trailers = trailers

    def to_bytes(self) -> bytes:
        """Return the data (the trailers are not part of it)."""
        return self.data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Collected):
            return NotImplemented
        return self.data == other.data and self.trailers == other.trailers

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Collected(data={self.data!r}, trailers={self.trailers!r})"


async def collect(body: Body) -> Collected:
    """Read ``body`` to its end and return its data and trailers.

    The body is not closed: the caller still owns it (after the end there is
    nothing left to release; after an error, call ``aclose()``).

    Args:
        body: The body to read.

    Returns:
        The data, joined, and the trailers if there were any.

    Raises:
        Exception: Whatever ``body.frame()`` raises (for example
            :class:`~hyper_core.error.LengthLimitError` from a
            :class:`~hyper_core.body.Limited` body).

    Cancel safety: the frames read so far are lost; the body stays where the
    reading stopped.
    """
    chunks: list[bytes] = []
    trailers: Headers | None = None
    while (frame := await body.frame()) is not None:
        data = frame.data_ref
        if data is not None:
            chunks.append(data)
            continue
        more = frame.trailers_ref
        if more is not None:
            if trailers is None:
                trailers = more
            else:
                trailers = trailers.copy()
                trailers.extend(more)
    if len(chunks) == 1:
        return Collected(chunks[0], trailers)
    return Collected(b"".join(chunks), trailers)
