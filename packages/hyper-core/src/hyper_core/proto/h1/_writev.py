"""How an HTTP/1 connection hands the pieces of a message to its IO: hyper's ``writev``.

What belongs here: :func:`chunk_sender`, which turns the ``writev`` option
(``None`` for auto, ``True``, ``False``) into the one function a dispatcher
calls with the pieces of a message (a chunk header, the body bytes, the
CRLF after them...). The bytes on the wire are the same whichever it picks;
only the calls on the IO, and the copies, differ.

Strategy (hyper's three write strategies, in Python terms):

* ``True`` ("queue"): never copy the pieces. ``send_many`` when the IO has
  a vectored write (an asyncio transport's ``writelines``, a TLS stream's
  own), else one ``send`` per piece.
* ``False`` ("flatten"): join the pieces into one ``bytes`` and ``send`` it
  once; a copy of every body byte, one call per write.
* ``None`` (auto, the default): ``send_many`` when the IO has it, else join
  and ``send`` once (:func:`hyper_core.rt.send_all`): for an IO without a
  vectored write, one call usually costs more than copying a few KiB.

The choice is made once per connection, so a write costs one call whatever
the option.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from hyper_core.rt import IO, send_all

__all__ = ["ChunkSender", "chunk_sender"]

ChunkSender = Callable[[Sequence[bytes]], Awaitable[None]]


def chunk_sender(io: IO, writev: bool | None) -> ChunkSender:
    """Return the function that writes a sequence of pieces to ``io`` under ``writev``."""
    send_many: ChunkSender | None = getattr(io, "send_many", None)
    if writev is False:
        return functools.partial(_flatten, io.send)
    if send_many is not None:
        return send_many
    if writev is None:
        return functools.partial(send_all, io)
    return functools.partial(_one_by_one, io.send)


async def _flatten(send: Callable[[bytes], Awaitable[None]], chunks: Sequence[bytes]) -> None:
    if len(chunks) == 1:
        await send(chunks[0])
    elif chunks:
        await send(b"".join(chunks))


async def _one_by_one(send: Callable[[bytes], Awaitable[None]], chunks: Sequence[bytes]) -> None:
    for chunk in chunks:
        await send(chunk)
