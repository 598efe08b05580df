"""BodyStream and BodyDataStream: a body read with ``async for``.

What belongs here: the two async iterators over any body that
http-body-util calls ``BodyStream`` (every frame) and ``BodyDataStream``
(the data only).

Strategy: each step is one ``frame()`` call on the body, so iterating pulls
the body exactly as fast as the loop runs and holds nothing ahead.
:class:`BodyStream` stays a body itself (its frames, end of stream and size
are the inner body's), so it can be handed on after a partial read.
:class:`BodyDataStream` skips every frame that is not data; the trailers it
passes over are kept in :attr:`BodyDataStream.trailers`, so nothing a peer
sent is silently lost. Both close the body when ``aclose()`` is called or
an ``async with`` block around them ends.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self, final

from hyper_core.body._body import Body
from hyper_core.body._collect import merge_trailers
from hyper_core.body._frame import Frame, SizeHint

if TYPE_CHECKING:
    from hyper_core.http import Headers

__all__ = ["BodyDataStream", "BodyStream"]


class _Reading:
    """What both iterators share: the body they read, closed by ``aclose`` or ``async with``."""

    __slots__ = ("_inner",)

    def __init__(self, body: Body) -> None:
        self._inner = body

    @property
    def inner(self) -> Body:
        """The body being read."""
        return self._inner

    async def aclose(self) -> None:
        """Close the body."""
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._inner.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._inner!r})"


@final
class BodyStream(_Reading):
    """Every frame of ``body`` as an async iterator; also still a body.

    Example::

        async with BodyStream(response.body) as frames:
            async for frame in frames:
                if (data := frame.data_ref) is not None:
                    sink.write(data)
                elif (trailers := frame.trailers_ref) is not None:
                    check(trailers)

    Leaving the ``async with`` block (or calling ``aclose()``) closes the
    body, so a loop left early releases the connection behind it.

    Args:
        body: The body to read.
    """

    __slots__ = ()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Frame:
        """Return the next frame of any kind.

        Raises:
            StopAsyncIteration: The body ended.
            Exception: Whatever the body raises.
        """
        frame = await self._inner.frame()
        if frame is None:
            raise StopAsyncIteration
        return frame

    async def frame(self) -> Frame | None:
        """Return the body's next frame (the :class:`~hyper_core.body.Body` protocol)."""
        return await self._inner.frame()

    def is_end_stream(self) -> bool:
        """Return the body's answer."""
        return self._inner.is_end_stream()

    def size_hint(self) -> SizeHint:
        """Return the body's hint."""
        return self._inner.size_hint()


@final
class BodyDataStream(_Reading):
    """The data chunks of ``body`` as an async iterator of ``bytes``.

    Frames that are not data are skipped; the trailers, if the body has
    any, are in :attr:`trailers` once the loop has passed them (that is,
    after it ended)::

        async with BodyDataStream(response.body) as chunks:
            async for chunk in chunks:
                digest.update(chunk)
        if chunks.trailers is not None:
            check(chunks.trailers["x-checksum"])

    Args:
        body: The body to read.
    """

    __slots__ = ("_trailers",)

    def __init__(self, body: Body) -> None:
        super().__init__(body)
        self._trailers: Headers | None = None

    @property
    def trailers(self) -> Headers | None:
        """The trailers passed over so far (several frames merged), or ``None``."""
        return self._trailers

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        """Return the next data chunk.

        Raises:
            StopAsyncIteration: The body ended.
            Exception: Whatever the body raises.
        """
        inner = self._inner
        while (frame := await inner.frame()) is not None:
            data = frame.data_ref
            if data is not None:
                return data
            trailers = frame.trailers_ref
            if trailers is not None:
                self._trailers = merge_trailers(self._trailers, trailers)
        raise StopAsyncIteration
