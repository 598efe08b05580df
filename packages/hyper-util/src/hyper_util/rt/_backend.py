"""Which IO path to use: the asyncio fast path or anyio's streams.

What belongs here: the one decision every constructor in :mod:`hyper_util.rt`
makes, so that they all make it the same way.

Strategy: ``fast=None`` asks sniffio which async library is running (as
anyio itself does when sniffio is present); the asyncio transport path is chosen
on asyncio (uvloop included), anyio's streams everywhere else. ``fast=False``
always picks anyio's streams; ``fast=True`` insists on the fast path and
fails outside asyncio rather than silently falling back.
"""

from __future__ import annotations

import sniffio

__all__ = ["current_library", "use_fast_path"]


def current_library() -> str | None:
    """Name the running async library (``"asyncio"``, ``"trio"``), or ``None``.

    Asks sniffio (a dependency of hyper-util; trio sets it too).
    """
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None


def use_fast_path(fast: bool | None) -> bool:
    """Resolve a ``fast`` argument: ``True`` for the asyncio transport path.

    Raises:
        RuntimeError: ``fast=True`` outside asyncio.
    """
    if fast is False:
        return False
    on_asyncio = current_library() == "asyncio"
    if fast and not on_asyncio:
        raise RuntimeError("the asyncio fast path (fast=True) needs a running asyncio event loop")
    return on_asyncio
