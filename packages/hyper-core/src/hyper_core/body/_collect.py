"""collect(): read a whole body into memory.

What belongs here: :func:`collect` and its result, :class:`Collected`.

Strategy: read frames to the end, keep the data chunks in a list and join
them once (a single chunk is returned as is, without a copy). Trailers are
kept; several trailers frames (a body should have at most one) merge in
order. Frames of unknown kinds are skipped. With ``limit``, the data is
counted as it arrives and the chunk that would take it past the limit is
dropped, not kept: memory never holds more than ``limit`` bytes of data (plus
that one chunk, which the connection already bounds); a size hint that is
already over the limit fails before anything is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from hyper_core.body._body import Body
from hyper_core.error import LengthLimitError

if TYPE_CHECKING:
    from hyper_core.http import Headers

__all__ = ["Collected", "collect", "merge_trailers"]


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


def merge_trailers(trailers: Headers | None, more: Headers) -> Headers:
    """Return ``more`` added after ``trailers`` (a body should send one trailers frame)."""
    if trailers is None:
        return more
    merged = trailers.copy()
    merged.extend(more)
    return merged


async def collect(body: Body, *, limit: int | None = None) -> Collected:
    """Read ``body`` to its end and return its data and trailers.

    The body is not closed: the caller still owns it (after the end there is
    nothing left to release; after an error, call ``aclose()``).

    Args:
        body: The body to read.
        limit: The most data bytes to accept (``None``: no limit). A body
            of exactly ``limit`` bytes is collected; one byte more raises,
            without the chunk that crossed the limit ever being kept. Use
            it on every body a peer controls.

    Returns:
        The data, joined, and the trailers if there were any.

    Raises:
        LengthLimitError: The body is longer than ``limit`` (its size hint
            says so up front, or its data went past it).
        ValueError: ``limit`` is negative.
        Exception: Whatever ``body.frame()`` raises.

    Cancel safety: the frames read so far are lost; the body stays where the
    reading stopped.
    """
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be 0 or more bytes (got {limit})")
        if body.size_hint().lower > limit:
            raise LengthLimitError(limit)
    size = 0
    chunks: list[bytes] = []
    trailers: Headers | None = None
    while (frame := await body.frame()) is not None:
        data = frame.data_ref
        if data is not None:
            if limit is not None:
                size += len(data)
                if size > limit:
                    raise LengthLimitError(limit)
            chunks.append(data)
            continue
        more = frame.trailers_ref
        if more is not None:
            trailers = merge_trailers(trailers, more)
    if len(chunks) == 1:
        return Collected(chunks[0], trailers)
    return Collected(b"".join(chunks), trailers)
