"""MapFrame and MapErr: a body seen through a function (http-body-util's combinators).

What belongs here: the two wrappers that change what a body yields without
reading it ahead: :class:`MapFrame` applies a function to each frame,
:class:`MapErr` to each error.

Strategy: one call per frame (or per error) on top of the inner body's, and
nothing buffered: the wrapped body is pulled exactly when the wrapper is.
:class:`MapFrame` reports an unknown size (the function may change the
data), and no end of stream of its own beyond the inner body's, as
``http_body_util::combinators::MapFrame`` does. :class:`MapErr` changes
nothing but the error, so it forwards both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

from hyper_core.body._body import Body
from hyper_core.body._frame import Frame, SizeHint

__all__ = ["MapErr", "MapFrame"]

_UNKNOWN = SizeHint()


@final
class MapFrame:
    """A body whose frames are ``fn(frame)`` for each frame of ``body``.

    Example: upper-case every data chunk, leaving trailers alone::

        def shout(frame: Frame) -> Frame:
            data = frame.data_ref
            return frame if data is None else Frame.data(data.upper())

        body = MapFrame(inner, shout)

    Args:
        body: The body to read.
        fn: Called once per frame, in order, on the reading task; it returns
            the frame to pass on (of any kind: data may become trailers). It
            must not block; an exception from it propagates from
            :meth:`frame` and ends nothing (the caller closes the body).

    The size hint is unknown (``fn`` may change the length); to keep
    ``Content-Length``, use a function that keeps lengths and set it on
    the message yourself.
    """

    __slots__ = ("_fn", "_inner")

    def __init__(self, body: Body, fn: Callable[[Frame], Frame]) -> None:
        self._inner = body
        self._fn = fn

    @property
    def inner(self) -> Body:
        """The wrapped body."""
        return self._inner

    async def frame(self) -> Frame | None:
        """Return ``fn`` of the inner body's next frame, or ``None`` at its end.

        Raises:
            Exception: Whatever the inner body or ``fn`` raises.

        Cancel safety: as the inner body's (``fn`` runs only once a frame
        has arrived).
        """
        frame = await self._inner.frame()
        if frame is None:
            return None
        return self._fn(frame)

    def is_end_stream(self) -> bool:
        """Return the inner body's answer."""
        return self._inner.is_end_stream()

    def size_hint(self) -> SizeHint:
        """Return an unknown size: ``fn`` may change the data."""
        return _UNKNOWN

    async def aclose(self) -> None:
        """Close the inner body."""
        await self._inner.aclose()

    def __repr__(self) -> str:
        return f"MapFrame({self._inner!r}, {self._fn!r})"


@final
class MapErr:
    """A body that raises ``fn(error)`` where ``body`` raises ``error``.

    For turning one library's errors into another's: a proxy that streams
    an upstream body to its client can make an upstream failure its own::

        body = MapErr(upstream.body, lambda exc: BadGatewayError(str(exc)))

    Args:
        body: The body to read.
        fn: Called with each ``Exception`` the inner body raises; the
            exception it returns is raised instead, with the original as its
            ``__cause__``. Cancellation and other ``BaseException`` (which
            are not errors of the body) pass through untouched.

    Frames, the end of stream and the size hint are the inner body's.
    """

    __slots__ = ("_fn", "_inner")

    def __init__(self, body: Body, fn: Callable[[Exception], BaseException]) -> None:
        self._inner = body
        self._fn = fn

    @property
    def inner(self) -> Body:
        """The wrapped body."""
        return self._inner

    async def frame(self) -> Frame | None:
        """Return the inner body's next frame, or ``None`` at its end.

        Raises:
            BaseException: ``fn(error)`` when the inner body raised ``error``.

        Cancel safety: as the inner body's.
        """
        try:
            return await self._inner.frame()
        except Exception as exc:
            raise self._fn(exc) from exc

    def is_end_stream(self) -> bool:
        """Return the inner body's answer."""
        return self._inner.is_end_stream()

    def size_hint(self) -> SizeHint:
        """Return the inner body's hint."""
        return self._inner.size_hint()

    async def aclose(self) -> None:
        """Close the inner body (an error from closing is mapped too)."""
        try:
            await self._inner.aclose()
        except Exception as exc:
            raise self._fn(exc) from exc

    def __repr__(self) -> str:
        return f"MapErr({self._inner!r}, {self._fn!r})"
