"""The rewind IO: an IO that first replays bytes already read from it.

What belongs here: :class:`Rewind` only. The auto server reads the first
bytes of a connection to tell HTTP/1 from HTTP/2, then hands the connection
to the chosen protocol with those bytes put back in front, so nothing is
lost or reordered (hyper-util's ``Rewind``).

Strategy: ``receive`` returns the saved prefix (in slices of at most
``max_bytes``) before it reads the inner IO; every other call goes straight
through. An empty prefix costs one attribute check per receive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

import anyio

from hyper_core.rt import IO, flush, send_all

__all__ = ["Rewind"]


@final
class Rewind:
    """An :class:`~hyper_core.rt.IO` replaying ``prefix`` before reading ``io``.

    Args:
        io: The inner stream.
        prefix: Bytes already read from ``io`` that the next reader must see first.
    """

    __slots__ = ("_io", "_prefix")

    def __init__(self, io: IO, prefix: bytes = b"") -> None:
        self._io = io
        self._prefix = prefix

    @property
    def inner(self) -> IO:
        """The wrapped IO."""
        return self._io

    @property
    def prefix(self) -> bytes:
        """The saved bytes not yet returned by :meth:`receive`."""
        return self._prefix

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """Return saved bytes first, then bytes from the inner IO.

        Raises:
            anyio.EndOfStream: The peer shut down its write side (and no
                saved bytes are left).
        """
        prefix = self._prefix
        if prefix:
            if len(prefix) <= max_bytes:
                self._prefix = b""
                return prefix
            self._prefix = prefix[max_bytes:]
            return prefix[:max_bytes]
        data = await self._io.receive(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes, /) -> None:
        """Write all of ``item`` to the inner IO."""
        await self._io.send(item)

    async def send_many(self, items: Sequence[bytes], /) -> None:
        """Write several chunks (vectored when the inner IO supports it)."""
        await send_all(self._io, items)

    async def flush(self) -> None:
        """Flush the inner IO if it buffers writes."""
        await flush(self._io)

    async def send_eof(self) -> None:
        """Shut down the write side of the inner IO."""
        await self._io.send_eof()

    async def aclose(self) -> None:
        """Close the inner IO."""
        await self._io.aclose()

    def __repr__(self) -> str:
        return f"Rewind(io={self._io!r}, prefix=<{len(self._prefix)} bytes>)"
