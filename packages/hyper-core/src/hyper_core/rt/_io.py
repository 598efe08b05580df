"""The IO interface: the byte stream a connection runs over.

What belongs here: the protocol every transport satisfies, its optional
capabilities, and the small helpers that use a capability when it is there.

Strategy: the interface is exactly the method set of ``anyio.abc.ByteStream``
(``receive``, ``send``, ``send_eof``, ``aclose``), so every anyio stream
(TCP, Unix, TLS, stapled, buffered...) is an :class:`IO` without a wrapper.
Parameters are positional-only, so an implementation may name them freely.
Some capabilities are optional and found by attribute lookup, never by
``isinstance`` (a runtime-checkable protocol check costs far more):

* ``send_many(chunks)``: a vectored write (``writelines`` on an asyncio
  transport); without it, :func:`send_all` joins the chunks and sends once.
* ``flush()``: for a transport that buffers writes; without it, a write is
  flushed when ``send`` returns.
* ``notify_receivable``, ``receive_nowait`` and ``interrupt_receive``, all
  three or none: :class:`~hyper_core.rt.SupportsReceiveWatch`. The HTTP/1
  client watches an idle connection with them; over an IO without them it
  reads through a :class:`~hyper_core.rt.ReceiveWatcher`, which provides
  them over ``receive``.

End of stream: ``receive`` raises ``anyio.EndOfStream`` (anyio's convention)
or returns ``b""`` (a plain-socket convention); :func:`receive_or_eof` turns
both into ``b""``. ``anyio.BrokenResourceError`` (the peer reset the
connection) and ``anyio.ClosedResourceError`` (this side closed it) are
errors, not end of stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import anyio

__all__ = ["IO", "SupportsFlush", "SupportsSendMany", "flush", "receive_or_eof", "send_all"]


class IO(Protocol):
    """A bidirectional byte stream; ``anyio.abc.ByteStream`` satisfies it as is.

    Calls on one direction must not overlap (one reader and one writer at a
    time), as with anyio streams.
    """

    async def receive(self, max_bytes: int = 65536, /) -> bytes:
        """Return between 1 and ``max_bytes`` bytes, waiting for at least one.

        Raises:
            anyio.EndOfStream: The peer shut down its write side (an
                implementation may instead return ``b""``).
            anyio.BrokenResourceError: The connection failed.
            anyio.ClosedResourceError: This stream was closed.

        Cancel safety: no data is lost if cancelled while waiting.
        """
        ...

    async def send(self, item: bytes, /) -> None:
        """Write all of ``item``, waiting while the transport is full.

        Raises:
            anyio.BrokenResourceError: The connection failed or the peer closed it.
            anyio.ClosedResourceError: This stream was closed or its write side shut.

        Cancel safety: a cancelled send may have written part of ``item``;
        the stream is then unusable for framed protocols and should be closed.
        """
        ...

    async def send_eof(self) -> None:
        """Shut down the write side (TCP half-close); receiving still works."""
        ...

    async def aclose(self) -> None:
        """Close both directions and release the transport.

        It always closes, even when cancelled.
        """
        ...


class SupportsSendMany(Protocol):
    """Optional IO capability: write several chunks in one call (vectored write)."""

    async def send_many(self, items: Sequence[bytes], /) -> None:
        """Write every chunk of ``items``, in order, as :meth:`IO.send` would."""
        ...


class SupportsFlush(Protocol):
    """Optional IO capability: push buffered writes to the transport."""

    async def flush(self) -> None:
        """Return once every byte given to ``send`` so far is handed to the transport."""
        ...


async def send_all(io: IO, chunks: Sequence[bytes], /) -> None:
    """Write ``chunks`` in order with one vectored write when ``io`` has one.

    Uses ``io.send_many(chunks)`` if the stream has it; otherwise joins the
    chunks and calls ``io.send`` once (one call, not one per chunk: each call
    may be a system call and a scheduling round). Nothing is sent for an empty
    sequence.

    Args:
        io: The stream to write to.
        chunks: The chunks, in order.

    Raises:
        Whatever ``io.send`` or ``io.send_many`` raises.
    """
    send_many = getattr(io, "send_many", None)
    if send_many is not None:
        await send_many(chunks)
    elif len(chunks) == 1:
        await io.send(chunks[0])
    elif chunks:
        await io.send(b"".join(chunks))


async def receive_or_eof(io: IO, max_bytes: int = 65536, /) -> bytes:
    """Receive up to ``max_bytes`` bytes; return ``b""`` at end of stream.

    Args:
        io: The stream to read from.
        max_bytes: The most bytes to return.

    Returns:
        The bytes received, or ``b""`` once the peer shut down its write side.

    Raises:
        anyio.BrokenResourceError: The connection failed.
        anyio.ClosedResourceError: This stream was closed.
    """
    try:
        return await io.receive(max_bytes)
    except anyio.EndOfStream:
        return b""


async def flush(io: IO, /) -> None:
    """Call ``io.flush()`` if the stream buffers writes; otherwise do nothing.

    Without a ``flush`` method this returns at once, without a checkpoint: an
    unbuffered stream has nothing to wait for.
    """
    flush_method = getattr(io, "flush", None)
    if flush_method is not None:
        await flush_method()
