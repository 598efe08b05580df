"""The queue between a WebSocket's frame reader and its owner.

What belongs here: :class:`Inbox`, the bounded queue of whole received
messages that :class:`~hyper_util.ws.WebSocketConnection` keeps. It is the
receive side's backpressure: when it is full the reader stops reading, and
TCP (or HTTP/2 flow control) holds the peer back.
"""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["Inbox"]


class Inbox:
    """Whole messages from the reader to the owner: a queue of at most ``limit``.

    Cheaper than a memory object stream on the hot path: a message that is
    ready is taken, and one that fits is put, without a trip through the
    event loop (asyncio's ``StreamReader`` does the same); only an empty
    inbox (``get``) or a full one (``put``) waits, on an event shared by the
    waiters of that side.
    """

    __slots__ = ("_closed", "_items", "_limit", "_readable", "_writable")

    def __init__(self, limit: int) -> None:
        self._items: deque[str | bytes] = deque()
        self._limit = limit
        self._closed = False  # nothing more goes in; what is in still comes out
        self._readable = anyio.Event()
        self._writable = anyio.Event()

    async def get(self) -> str | bytes | None:
        """The next message, or ``None`` once closed and empty."""
        items = self._items
        while not items:
            if self._closed:
                return None
            await self._readable.wait()
        if len(items) == self._limit:
            self._writable.set()
        return items.popleft()

    async def put(self, item: str | bytes) -> None:
        """Queue ``item``, waiting while full; dropped once closed."""
        while len(self._items) >= self._limit and not self._closed:
            if self._writable.is_set():
                self._writable = anyio.Event()
            await self._writable.wait()
        if self._closed:
            return
        self._items.append(item)
        readable = self._readable
        if not readable.is_set():
            readable.set()
            self._readable = anyio.Event()

    def close(self) -> None:
        """Nothing more goes in; ``get`` returns what is in, then ``None``."""
        self._closed = True
        self._readable.set()
        self._writable.set()

    def release(self) -> None:
        """The owner reads no more: close and drop what is queued."""
        self.close()
        self._items.clear()
