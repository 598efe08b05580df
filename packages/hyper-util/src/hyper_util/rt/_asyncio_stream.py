"""The asyncio fast path: a socket stream driven by an asyncio transport and protocol.

What belongs here: :class:`AsyncioSocketStream` (an ``anyio.abc.SocketStream``
and so a :class:`hyper_core.rt.IO`), its buffer limits and statistics, and
:func:`wrap_asyncio_socket`, which makes one of a connected or accepted
socket. The ``asyncio.Protocol`` behind it is in ``_asyncio_protocol``;
connecting (TCP with happy eyeballs, Unix) is in ``_asyncio_open``.

Strategy: anyio's asyncio socket stream pays, on every call, for what a
portable stream has to promise: ``receive`` resumes and pauses the
transport's reading around each read (two ``epoll_ctl`` calls), and ``send``
passes two checkpoints (one of them a shielded extra pass of the event
loop). Here the protocol reads ahead into a buffer and the stream only
waits when it must:

* Read side: ``data_received`` appends to a list of chunks. A list, not a
  deque: every idle keep-alive connection holds an empty one, 56 bytes
  against a deque's 700, and it seldom holds more than a chunk or two
  (``receive`` takes all it may at once, and ``read_high_water`` bounds it),
  so taking from its front costs no more. ``receive`` returns buffered bytes
  at once, without yielding to the event loop, and waits on a future only
  when the buffer is empty. Reading is paused when the buffer reaches
  ``read_high_water`` bytes and resumed once ``receive`` has drained it to a
  quarter of that, so a peer that sends faster than the application reads is
  held back by TCP, not by memory. A cancelled ``receive`` has taken nothing
  from the buffer (bytes are only removed after the wait), so no byte is
  lost.
* Write side: the first write of the event loop's pass goes at once; later
  ones, up to 64 KiB per stream, are held until the pass ends
  (``_write_batch``: the writes of every connection served in a pass then
  reach the kernel together, one or two wake-ups of their readers instead
  of one each); a larger write goes to ``transport.write`` (which tries the
  ``send`` system call at once) with what was held before it. ``send``
  returns without a checkpoint unless the transport's buffer is above
  ``write_high_water``: then it waits for ``resume_writing`` (the transport
  drained to a quarter). Several held pieces are written with one
  ``transport.writelines`` (a vectored ``sendmsg`` on Python 3.12+).
* Four optional IO capabilities: :meth:`AsyncioSocketStream.notify_receivable`
  (a one-shot callback, run from the protocol callback, for when ``receive``
  would not wait), :meth:`AsyncioSocketStream.receive_nowait`,
  :meth:`AsyncioSocketStream.interrupt_receive` (make a waiting ``receive``
  raise a given error) and :meth:`AsyncioSocketStream.unreceive` (put bytes
  back in front). hyper-core's HTTP/1 client uses the first three to watch an
  idle pooled connection for the server's close with no task and no wake-up
  per request, and to stop a read when its connection closes without a
  cancel scope per request; the auto server gives back the bytes it read to
  tell HTTP/1 from HTTP/2 with the fourth, instead of wrapping the stream.
* Errors are anyio's: ``EndOfStream`` once the peer shut down its side and
  the buffer is empty, ``BrokenResourceError`` (cause chained) when the
  connection failed, ``ClosedResourceError`` after :meth:`aclose` or, for
  sends, after :meth:`send_eof`; ``BusyResourceError`` for a second task
  waiting on the same direction.
* ``aclose`` closes the transport gracefully (queued bytes are still sent)
  and waits for ``connection_lost``, at most ``close_timeout`` seconds; after
  that, or when cancelled, it aborts the transport with a reset (RST), so
  the peer cannot mistake the cut for a complete message.

Not yielding when data is ready is what asyncio's own ``StreamReader`` and
``StreamWriter.drain`` do. It is bounded: a task can run at most
``read_high_water`` buffered bytes (plus one read) without a suspension, since
once the buffer is empty ``receive`` must wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, final

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ._asyncio_protocol import StreamProtocol, new_protocol, wake, writelines_pauses
from ._write_batch import HeldWrites, batch_for

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_READ_HIGH_WATER",
    "DEFAULT_WRITE_HIGH_WATER",
    "AsyncioSocketStream",
    "AsyncioStreamStatistics",
    "set_nodelay",
    "wrap_asyncio_socket",
]

#: Bytes buffered on the read side before reading from the socket pauses:
#: 1 MiB, four of the largest reads asyncio's selector transport makes
#: (``_SelectorSocketTransport.max_size``, 256 KiB). With a mark of one read,
#: every full read paused the socket and the next ``receive`` resumed it (two
#: ``epoll_ctl`` calls per 256 KiB of a download, about 7% of its CPU time);
#: four reads of slack let a reader that keeps up never pause. The buffer
#: holds at most this plus one read (1.25 MiB).
DEFAULT_READ_HIGH_WATER: Final = 1_048_576
#: Chunks received are joined into one ``receive`` result only while the
#: first is smaller than this, in bytes (64 KiB): the parser then runs once
#: for many small chunks, and a big chunk (a download) is never copied.
_COALESCE_BELOW: Final = 65_536
#: Bytes queued in the transport before ``send`` waits: 64 KiB, asyncio's own
#: default high-water mark for transports (4 x its 16 KiB low-water mark).
DEFAULT_WRITE_HIGH_WATER: Final = 65_536
#: Seconds :meth:`AsyncioSocketStream.aclose` waits for queued bytes to reach
#: a peer that does not read before it aborts the connection: 5 s, nginx's
#: ``lingering_timeout`` default (how long nginx lingers for a peer at close).
DEFAULT_CLOSE_TIMEOUT: Final = 5.0


@final
@dataclass(frozen=True, slots=True)
class AsyncioStreamStatistics:
    """A snapshot of an :class:`AsyncioSocketStream`'s buffers.

    Attributes:
        read_buffered: Bytes received and not yet returned by ``receive``.
        write_buffered: Bytes queued in the transport, not yet sent.
        reading_paused: Reading from the socket is paused (read buffer full).
        writing_paused: ``send`` waits (write buffer above its high-water mark).
    """

    read_buffered: int
    write_buffered: int
    reading_paused: bool
    writing_paused: bool


def _address(sockaddr: Any) -> Any:
    """A socket address as anyio gives it: an IPv6 one as ``(host, port)``, the scope kept."""
    if isinstance(sockaddr, tuple) and len(sockaddr) == 4:
        host, port, _, scope_id = sockaddr
        return (f"{host.split('%')[0]}%{scope_id}", port) if scope_id else (host, port)
    return sockaddr


def socket_attributes(sock: Any, local: Any, peer: Any) -> dict[Any, Callable[[], Any]]:
    """Return anyio's socket attributes of ``sock``; ``peer`` None: it is gone."""
    attributes: dict[Any, Callable[[], Any]] = {
        SocketAttribute.family: lambda: sock.family,
        SocketAttribute.local_address: lambda: local,
        SocketAttribute.raw_socket: lambda: sock,
    }
    if peer is not None:
        attributes[SocketAttribute.remote_address] = lambda: peer
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        attributes[SocketAttribute.local_port] = lambda: local[1]
        if peer is not None:
            attributes[SocketAttribute.remote_port] = lambda: peer[1]
    return attributes


@final
class AsyncioSocketStream(anyio.abc.SocketStream, HeldWrites):
    """A socket stream on an asyncio transport: the fast path of :mod:`hyper_util.rt`.

    It is an ``anyio.abc.SocketStream``, so it is a
    :class:`hyper_core.rt.IO`, can be wrapped by anyio's ``TLSStream`` and
    buffered streams, and answers ``extra(SocketAttribute.remote_address)``
    and the other socket attributes. It works only under asyncio (uvloop
    included). Make one with :func:`hyper_util.rt.connect_tcp`, a listener
    from :func:`hyper_util.rt.create_tcp_listener`, or
    :func:`hyper_util.rt.wrap_connected_socket`.

    One task may receive while another sends; two tasks receiving (or two
    sending) at once get ``anyio.BusyResourceError``.
    """

    __slots__ = (
        "_batch",
        "_close_timeout",
        "_held",
        "_held_size",
        "_loop",
        "_protocol",
        "_transport",
        "_writelines_pauses",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: StreamProtocol,
        *,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = loop = asyncio.get_running_loop()
        self._close_timeout = close_timeout
        self._writelines_pauses = writelines_pauses(type(transport))
        self._batch = batch_for(loop)
        # Writes held until the end of the loop's pass (see _write_batch).
        self._held: list[bytes] | None = None
        self._held_size = 0

    @property
    def _raw_socket(self) -> socket.socket:
        sock: socket.socket = self._transport.get_extra_info("socket")
        return sock

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The socket attributes anyio defines, from the addresses the transport read once.

        anyio's own mapping asks the kernel for the peer's address each time
        it is built, that is at each ``extra()`` call (a server looks up a
        connection's addresses several times as it starts it); the transport
        read both addresses when it was made. Same attributes and values,
        except that the peer's address stays known after it disconnected.
        """
        transport = self._transport
        return socket_attributes(
            self._raw_socket,
            _address(transport.get_extra_info("sockname")),
            _address(transport.get_extra_info("peername")),
        )

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return between 1 and ``max_bytes`` bytes, waiting only if none are buffered.

        Raises:
            anyio.EndOfStream: The peer shut down its write side and every
                byte before that was returned.
            anyio.BrokenResourceError: The connection failed (reset); bytes
                received before the failure are returned first.
            anyio.ClosedResourceError: This stream was closed.
            anyio.BusyResourceError: Another task is already waiting in ``receive``.
            ValueError: ``max_bytes`` is less than 1.

        Cancel safety: nothing is taken from the buffer until the wait is
        over, so a cancelled ``receive`` loses no bytes.
        """
        p = self._protocol
        chunks = p.chunks
        if not chunks:
            if p.closed or p.eof or p.lost:
                raise p.read_error()
            if p.read_waiter is not None:
                raise anyio.BusyResourceError("reading from")
            if max_bytes < 1:
                raise ValueError("max_bytes must be a positive integer")
            waiter = p.read_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                p.read_waiter = None
            if not chunks:
                raise p.read_error()
        return self._take(max_bytes)

    def receive_nowait(self, max_bytes: int = 65536) -> bytes:
        """Return between 1 and ``max_bytes`` buffered bytes without waiting.

        An optional IO capability (see :meth:`notify_receivable`).

        Raises:
            anyio.WouldBlock: Nothing is buffered and more may come.
            anyio.EndOfStream: As :meth:`receive`.
            anyio.BrokenResourceError: As :meth:`receive`.
            anyio.ClosedResourceError: As :meth:`receive`.
            ValueError: ``max_bytes`` is less than 1.
        """
        p = self._protocol
        if not p.chunks:
            if p.closed or p.eof or p.lost:
                raise p.read_error()
            raise anyio.WouldBlock
        return self._take(max_bytes)

    def notify_receivable(self, callback: Callable[[], object] | None) -> bool:
        """Have ``callback()`` called once :meth:`receive` would not wait.

        An optional IO capability: it lets a connection watch the stream
        without a task waiting in :meth:`receive` (which takes a task
        wake-up per message and a cancel scope to interrupt). The callback
        runs once, inside the transport's callback (``data_received``,
        ``eof_received``, ``connection_lost``) or :meth:`aclose`, when bytes
        arrive, the peer shuts down its side, the connection fails or the
        stream is closed. It must not raise and must not block. One callback
        at a time: a new one replaces the previous one; ``None`` withdraws it.

        Returns:
            True if :meth:`receive` would not wait right now; the callback
            is then not registered (the caller acts at once instead).
        """
        p = self._protocol
        if callback is None:
            p.notify = None
            return False
        if p.chunks or p.closed or p.eof or p.lost:
            p.notify = None
            return True
        p.notify = callback
        return False

    def interrupt_receive(self, error: BaseException) -> bool:
        """Make the :meth:`receive` waiting now raise ``error``.

        An optional IO capability: a connection closed by its own logic (not
        by a peer) stops the task reading for it without a cancel scope
        around every read. The stream itself is unchanged: no byte is lost,
        and the next ``receive`` works as usual.

        Returns:
            Whether a ``receive`` was waiting.
        """
        waiter = self._protocol.read_waiter
        if waiter is None or waiter.done():
            return False
        waiter.set_exception(error)
        return True

    def unreceive(self, data: bytes) -> None:
        """Put ``data`` back in front of the buffer: the next :meth:`receive` returns it first.

        An optional IO capability: a server that read a connection's first
        bytes to choose its protocol hands them back to the protocol's
        connection without a wrapper around every later ``receive``.
        ``data`` must be bytes this stream returned (the read-side limits
        count them again).
        """
        if data:
            p = self._protocol
            p.chunks.insert(0, data)
            p.buffered += len(data)
            wake(p.read_waiter)

    def _take(self, max_bytes: int) -> bytes:
        p = self._protocol
        chunks = p.chunks
        chunk = chunks.pop(0)
        size = len(chunk)
        if size > max_bytes:
            if max_bytes < 1:
                chunks.insert(0, chunk)
                raise ValueError("max_bytes must be a positive integer")
            chunks.insert(0, chunk[max_bytes:])
            chunk = chunk[:max_bytes]
            size = max_bytes
        elif chunks and size < _COALESCE_BELOW:
            # Several small chunks waiting (pipelined requests, a burst of
            # small writes): return as much as asked in one piece, so the
            # caller's parser runs once instead of once per chunk. A big
            # chunk goes alone: joining it would copy it for nothing.
            pieces = [chunk]
            while chunks and size < max_bytes:
                nxt = chunks.pop(0)
                room = max_bytes - size
                if len(nxt) > room:
                    chunks.insert(0, nxt[room:])
                    nxt = nxt[:room]
                pieces.append(nxt)
                size += len(nxt)
            chunk = b"".join(pieces)
        p.buffered -= size
        if p.reading_paused and p.buffered <= p.read_low and not p.lost:
            p.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def send(self, item: bytes) -> None:
        """Write all of ``item``; wait only while the transport's buffer is full.

        Returns once ``item`` is with the transport (sent, or queued below
        the high-water mark) or, if another write went out in this pass of
        the event loop, held by this stream (up to 64 KiB). Held bytes go to
        the transport, in order, when the loop's current pass ends, or before
        :meth:`send_eof` or :meth:`aclose` acts, whichever comes first:
        writes of many connections in one pass then reach the kernel
        together, which wakes their readers once rather than once each.

        Raises:
            anyio.BrokenResourceError: The connection failed or the peer reset it.
            anyio.ClosedResourceError: This stream was closed or :meth:`send_eof` called.
            anyio.BusyResourceError: Another task is already waiting in ``send``.

        Cancel safety: a send cancelled while waiting for room before the
        write wrote nothing; one cancelled while waiting after the write
        (the buffer went over the mark) has queued all of ``item``.
        """
        p = self._protocol
        if p.write_paused or p.closed or p.eof_sent or p.lost:
            await self._wait_writable(p)
        if self._hold((item,), len(item)):
            return
        if p.write_paused:
            await self._wait_writable(p)
        transport = self._transport
        transport.write(item)
        if p.write_paused or transport.is_closing():
            await self._wait_writable(p)

    async def send_many(self, items: Sequence[bytes]) -> None:
        """Write every chunk of ``items`` in order, held like :meth:`send`'s, in one write.

        Raises and cancel safety: as :meth:`send`.
        """
        p = self._protocol
        if p.write_paused or p.closed or p.eof_sent or p.lost:
            await self._wait_writable(p)
        if self._hold(items, sum(map(len, items))):
            return
        if p.write_paused:
            await self._wait_writable(p)
        self._write_all(items)
        if p.write_paused or self._transport.is_closing():
            await self._wait_writable(p)

    def flush_held(self) -> None:
        """Hand the held writes to the transport now (the batch calls this)."""
        held = self._held
        if held is None:
            return
        self._held = None
        self._held_size = 0
        if not self._protocol.lost:
            # Once lost, the next send raises the connection's error and
            # nobody can take these bytes any more.
            self._write_all(held)

    def _write_all(self, items: Sequence[bytes]) -> None:
        transport = self._transport
        if len(items) == 1:
            transport.write(items[0])
        elif self._writelines_pauses:
            transport.writelines(items)
        else:
            # This transport's writelines never pauses the protocol: one
            # write(), which does (see writelines_pauses); mixing the two
            # lost a piece on CPython 3.13.0.
            transport.write(b"".join(items))

    async def _wait_writable(self, p: StreamProtocol) -> None:
        while True:
            error = p.write_error()
            if error is not None:
                if isinstance(error, anyio.BrokenResourceError) and not p.lost:
                    # The transport failed inside write(); connection_lost
                    # comes on the next loop pass and carries the cause.
                    await self._wait_lost(p)
                    error = p.write_error()
                    assert error is not None
                raise error
            if not p.write_paused:
                return
            if p.write_waiter is not None:
                raise anyio.BusyResourceError("writing to")
            waiter = p.write_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                p.write_waiter = None

    async def _wait_lost(self, p: StreamProtocol) -> None:
        if not p.lost:
            if p.lost_waiter is None:
                p.lost_waiter = self._loop.create_future()
            await asyncio.shield(p.lost_waiter)

    async def send_eof(self) -> None:
        """Shut down the write side once queued bytes are sent; receiving still works.

        Raises:
            anyio.ClosedResourceError: This stream was closed.
        """
        p = self._protocol
        if p.closed:
            raise anyio.ClosedResourceError
        p.eof_sent = True
        self.flush_held()
        if not p.lost:
            # OSError: the peer is already gone; there is nothing to shut down.
            with contextlib.suppress(OSError):
                self._transport.write_eof()

    async def aclose(self) -> None:
        """Close the connection, sending what is queued first; wake any waiting task.

        Waits until the transport has delivered its queued bytes and closed
        the socket, at most ``close_timeout`` seconds, then aborts it: the
        rest is discarded and the peer sees a reset (RST), never a clean end
        of stream after a truncated message. A task blocked in
        :meth:`receive` or :meth:`send` gets ``anyio.ClosedResourceError``.

        Cancel safety: when cancelled, it aborts the transport and re-raises:
        the stream is closed either way.
        """
        p = self._protocol
        if not p.closed:
            self.flush_held()
            p.closed = True
            p.chunks.clear()
            p.buffered = 0
            wake(p.read_waiter)
            wake(p.write_waiter)
            p.fire_notify()
            if not p.lost:
                self._transport.close()
        if p.lost:
            return
        try:
            with anyio.move_on_after(self._close_timeout):
                await self._wait_lost(p)
        finally:
            if not p.lost:
                self._abort()

    def _abort(self) -> None:
        # A zero linger makes the close a reset: without it the kernel would
        # still send what it holds and then a FIN, and the peer would take a
        # truncated message (a close-delimited HTTP body, say) as complete.
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._transport.abort()

    def statistics(self) -> AsyncioStreamStatistics:
        """Return the sizes of the read and write buffers and whether each side waits."""
        p = self._protocol
        return AsyncioStreamStatistics(
            read_buffered=p.buffered,
            write_buffered=self._transport.get_write_buffer_size() + self._held_size,
            reading_paused=p.reading_paused,
            writing_paused=p.write_paused,
        )

    def __repr__(self) -> str:
        return f"<AsyncioSocketStream transport={self._transport!r}>"


def set_nodelay(sock: socket.socket) -> None:
    """Turn on ``TCP_NODELAY`` for a TCP socket; do nothing for other families.

    HTTP writes whole messages, so Nagle's algorithm only delays the last
    segment of each while waiting for an ACK that the peer delays too.
    """
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def wrap_asyncio_socket(
    sock: socket.socket,
    *,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> AsyncioSocketStream:
    """Make an :class:`AsyncioSocketStream` of a connected socket (takes ownership).

    Raises:
        RuntimeError: No asyncio event loop is running.
        ValueError: A high-water mark is not positive.
    """
    protocol = new_protocol(read_high_water, write_high_water)
    loop = asyncio.get_running_loop()
    try:
        set_nodelay(sock)
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
    except BaseException:
        sock.close()
        raise
    return AsyncioSocketStream(transport, protocol, close_timeout=close_timeout)
