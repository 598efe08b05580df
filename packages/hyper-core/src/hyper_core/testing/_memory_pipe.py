"""memory_pipe(): two connected in-memory byte streams, like a socket pair.

What belongs here: the in-memory transport used by tests (and by users
testing their own services) in place of a TCP connection.

Strategy: each direction is a :class:`_Direction`, a bytearray bounded by
``max_buffer`` bytes plus the flags a TCP connection has (write side shut,
reader gone). Each end is a :class:`MemoryByteStream` holding its outgoing
and incoming direction. Waiting is done on one-shot ``anyio.Event`` objects
made when a task must wait and set by whoever changes the state it waits on.

Behaviour mirrors a TCP socket pair, with anyio's exceptions:

* ``send`` waits while the peer's buffer is full (backpressure). A chunk that
  fits in ``max_buffer`` is buffered whole or not at all, so a cancelled send
  writes nothing; a larger chunk is written in ``max_buffer``-sized parts.
* ``send_eof`` shuts down the write side: the peer reads what is buffered,
  then ``receive`` raises ``anyio.EndOfStream``.
* ``aclose`` does both halves: the peer reads what is buffered and then gets
  ``anyio.EndOfStream``; the peer's ``send`` raises
  ``anyio.BrokenResourceError``; any use of the closed end raises
  ``anyio.ClosedResourceError``, including a call already waiting on it.
* Two tasks receiving (or sending) on one end at once raise
  ``anyio.BusyResourceError``, as anyio sockets do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = ["MemoryByteStream", "memory_pipe"]

# Bytes buffered per direction before a sender waits. 64 KiB is anyio's
# default receive size, and small enough that tests sending a few hundred KiB
# exercise backpressure.
DEFAULT_MAX_BUFFER = 65536


@final
class _Direction:
    """The bytes in flight from one end to the other, and that path's state."""

    __slots__ = ("buffer", "eof", "max_buffer", "readable", "reader_closed", "writable")

    def __init__(self, max_buffer: int) -> None:
        self.buffer = bytearray()
        self.max_buffer = max_buffer
        self.eof = False  # the writer shut down its side: no more bytes will come
        self.reader_closed = False  # the reading end is closed: bytes have nowhere to go
        self.readable: anyio.Event | None = None  # set when bytes, EOF or closure arrive
        self.writable: anyio.Event | None = None  # set when room appears or the reader goes

    def wake_reader(self) -> None:
        if self.readable is not None:
            self.readable.set()
            self.readable = None

    def wake_writer(self) -> None:
        if self.writable is not None:
            self.writable.set()
            self.writable = None

    async def wait_readable(self) -> None:
        if self.readable is None:
            self.readable = anyio.Event()
        await self.readable.wait()

    async def wait_writable(self) -> None:
        if self.writable is None:
            self.writable = anyio.Event()
        await self.writable.wait()


@final
class MemoryByteStream(anyio.abc.ByteStream):
    """One end of a :func:`memory_pipe`: an ``anyio.abc.ByteStream`` in memory.

    Being a real anyio byte stream, it is an :class:`~hyper_core.rt.IO` and
    works wherever anyio streams do (``anyio.streams.tls.TLSStream.wrap``,
    buffered readers...). It also has ``send_many``.
    """

    __slots__ = ("_closed", "_incoming", "_outgoing", "_receive_guard", "_send_guard")

    def __init__(self, outgoing: _Direction, incoming: _Direction) -> None:
        self._outgoing = outgoing
        self._incoming = incoming
        self._closed = False
        self._receive_guard = anyio.ResourceGuard("reading from")
        self._send_guard = anyio.ResourceGuard("writing to")

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return between 1 and ``max_bytes`` buffered bytes, waiting for one.

        Raises:
            ValueError: ``max_bytes`` is less than 1.
            anyio.EndOfStream: The peer shut down its write side or closed,
                and every byte it sent has been read.
            anyio.ClosedResourceError: This end is closed.
            anyio.BusyResourceError: Another task is receiving on this end.

        Cancel safety: cancelled while waiting, nothing is consumed.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        with self._receive_guard:
            await anyio.lowlevel.checkpoint_if_cancelled()
            incoming = self._incoming
            while True:
                if self._closed:
                    raise anyio.ClosedResourceError
                if incoming.buffer:
                    data = bytes(incoming.buffer[:max_bytes])
                    del incoming.buffer[:max_bytes]
                    incoming.wake_writer()
                    await anyio.lowlevel.cancel_shielded_checkpoint()
                    return data
                if incoming.eof:
                    raise anyio.EndOfStream
                await incoming.wait_readable()

    async def send(self, item: bytes) -> None:
        """Buffer all of ``item`` for the peer, waiting while its buffer is full.

        Raises:
            anyio.BrokenResourceError: The peer closed its end.
            anyio.ClosedResourceError: This end is closed or its write side shut.
            anyio.BusyResourceError: Another task is sending on this end.

        Cancel safety: a chunk no larger than the pipe's buffer is written
        whole or not at all; a larger one may be cut short after a part.
        """
        with self._send_guard:
            await anyio.lowlevel.checkpoint_if_cancelled()
            outgoing = self._outgoing
            view = memoryview(item)
            while True:
                if self._closed or outgoing.eof:
                    raise anyio.ClosedResourceError
                if outgoing.reader_closed:
                    raise anyio.BrokenResourceError
                if not view:
                    break
                room = outgoing.max_buffer - len(outgoing.buffer)
                if room >= min(len(view), outgoing.max_buffer):
                    outgoing.buffer += view[:room]
                    view = view[room:]
                    outgoing.wake_reader()
                    continue
                await outgoing.wait_writable()
            await anyio.lowlevel.cancel_shielded_checkpoint()

    async def send_many(self, items: Sequence[bytes]) -> None:
        """Send the chunks of ``items`` in order, as one :meth:`send` of their join."""
        await self.send(b"".join(items))

    async def send_eof(self) -> None:
        """Shut down the write side: the peer reads what is buffered, then EOF.

        Calling it again does nothing.

        Raises:
            anyio.ClosedResourceError: This end is closed.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        self._outgoing.eof = True
        self._outgoing.wake_reader()
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close this end; the state changes at once, even if cancelled.

        Tasks waiting on this end raise ``anyio.ClosedResourceError``; the
        peer reads what was already sent, then gets ``anyio.EndOfStream``, and
        its sends raise ``anyio.BrokenResourceError``. Closing twice is fine.
        """
        if not self._closed:
            self._closed = True
            self._outgoing.eof = True
            self._outgoing.wake_reader()
            self._outgoing.wake_writer()
            self._incoming.reader_closed = True
            self._incoming.buffer.clear()
            self._incoming.wake_writer()
            self._incoming.wake_reader()
        await anyio.lowlevel.checkpoint()

    def buffered_outgoing(self) -> int:
        """Return how many bytes this end sent that the peer has not read yet."""
        return len(self._outgoing.buffer)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<MemoryByteStream {state} outgoing={len(self._outgoing.buffer)}B>"


def memory_pipe(max_buffer: int = DEFAULT_MAX_BUFFER) -> tuple[MemoryByteStream, MemoryByteStream]:
    r"""Return two connected in-memory byte streams, like a socket pair.

    What one end sends, the other receives. Both satisfy
    :class:`hyper_core.rt.IO`.

    Args:
        max_buffer: Bytes each direction holds before ``send`` waits (at least
            1). The default, 64 KiB, is anyio's default receive size.

    Raises:
        ValueError: ``max_buffer`` is less than 1.

    Example::

        client, server = memory_pipe()
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await server.receive()
    """
    if max_buffer < 1:
        raise ValueError("max_buffer must be at least 1 byte")
    a_to_b = _Direction(max_buffer)
    b_to_a = _Direction(max_buffer)
    return MemoryByteStream(a_to_b, b_to_a), MemoryByteStream(b_to_a, a_to_b)
