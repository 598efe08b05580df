"""Which IO path to use: a fast path of the running loop or anyio's streams.

What belongs here: the one decision every constructor in :mod:`hyper_util.rt`
makes, so that they all make it the same way.

Strategy: ``fast=None`` asks sniffio which async library is running (as
anyio itself does when sniffio is present); the fast path of that library
is chosen (the asyncio transport path on asyncio, uvloop included; the trio
stream on trio), anyio's streams anywhere else. ``fast=False`` always picks
anyio's streams; ``fast=True`` insists on a fast path and fails outside
asyncio and trio rather than silently falling back.
"""

from __future__ import annotations

from typing import Literal

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


def use_fast_path(fast: bool | None) -> Literal["asyncio", "trio"] | None:
    """Resolve a ``fast`` argument: the library whose fast path to take, or None for anyio's.

    Raises:
        RuntimeError: ``fast=True`` outside asyncio and trio.
    """
    if fast is False:
        return None
    library = current_library()
    if library == "asyncio":
        return "asyncio"
    if library == "trio":
        return "trio"
    if fast:
        raise RuntimeError("the fast path (fast=True) needs a running asyncio or trio event loop")
    return None
