"""The trio fast path: a socket stream on trio's own IO waits, with batched writes.

What belongs here: :class:`TrioSocketStream` (an ``anyio.abc.SocketStream``
and so a :class:`hyper_core.rt.IO`), :func:`wrap_trio_socket`, which makes
one of a connected or accepted socket, and the trio end of a pass for
``_write_batch``.

Why: anyio's trio stream goes through trio's socket wrapper, which passes
a checkpoint before and a shielded yield to the scheduler after every
``send`` (a full pass of trio's run loop per response), and writes each
response the moment it is ready, one wake-up of the peer's core per
response (see ``_write_batch``). Measured on a 2-core KVM guest (``serve()``
hello world, wrk -c50, pure build): 70 us of server CPU per request, 20 of
them in the kernel, and 0.55 wake-ups of wrk's core per request.

Strategy: the socket is non-blocking and used directly.

* ``receive`` waits for readability first (``trio.lowlevel.wait_readable``,
  a real checkpoint), then reads. In request/response traffic the next
  request is seldom there yet when the previous answer is written, so
  trying the read first would mostly cost a failed system call and an
  exception; when bytes are already there the wait returns in the next
  scheduler pass, which trio's own socket takes after a read anyway.
* ``send`` holds its bytes (up to 64 KiB per stream) when another write
  already went out in this pass of trio's scheduler; a system task,
  rescheduled by the pass's first write, writes the held bytes of every
  stream in the next pass. Other writes go to the socket at once, and
  ``send`` waits for writability only when the kernel's buffer is full.
  ``send`` that did not wait does not checkpoint (as asyncio's
  ``StreamWriter.write``): it never blocks, and a writer that never waits
  is bounded by the socket's buffer, after which it waits.
* Held bytes that the kernel does not take at once are written by a system
  task of their own that waits for writability; the stream's next ``send``,
  ``send_eof`` and ``aclose`` wait for it first, so bytes stay in order and
  at most ``HOLD_LIMIT`` of them wait outside the kernel.
* Errors are anyio's, as with anyio's stream: ``EndOfStream``,
  ``BrokenResourceError`` (cause chained), ``ClosedResourceError``,
  ``BusyResourceError``. A write error found while writing held bytes is
  raised by the next ``send``.
* ``aclose`` writes what is held and closes the socket (the kernel still
  sends what it holds); bytes a slow peer has not let into the kernel
  within ``close_timeout`` are dropped with a reset (RST), so the peer never
  mistakes the cut for a complete message.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, final

import anyio
import anyio.abc
import trio
import trio.lowlevel

from ._asyncio_stream import DEFAULT_CLOSE_TIMEOUT, _address, set_nodelay, socket_attributes
from ._write_batch import HeldWrites, WriteBatch

__all__ = ["TrioSocketStream", "TrioStreamStatistics", "trio_batch", "wrap_trio_socket"]

_BATCH: Final[trio.lowlevel.RunVar[WriteBatch]] = trio.lowlevel.RunVar("hyper_util.rt.write_batch")


def _abort(_: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED


class _PassEnd:
    """Runs a batch's end of pass in the scheduler pass after the one that asked.

    A system task parked in ``wait_task_rescheduled``: rescheduling it puts
    it in the next batch of runnable tasks, that is after every task that is
    runnable now, as ``call_soon`` does on asyncio.
    """

    __slots__ = ("_task",)

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None

    def __call__(self, end_pass: Callable[[], None]) -> None:
        task = self._task
        if task is not None:
            trio.lowlevel.reschedule(task)
            return
        try:
            self._task = trio.lowlevel.spawn_system_task(
                self._run, end_pass, name="hyper_util write batch"
            )
        except RuntimeError:  # the run is shutting down: no pass ends any more
            end_pass()

    async def _run(self, end_pass: Callable[[], None]) -> None:
        try:
            while True:
                end_pass()
                await trio.lowlevel.wait_task_rescheduled(_abort)
        finally:
            self._task = None


def trio_batch() -> WriteBatch:
    """Return the running trio run's write batch."""
    try:
        return _BATCH.get()
    except LookupError:
        batch = WriteBatch(_PassEnd(), None)
        _BATCH.set(batch)
        return batch


@final
@dataclass(frozen=True, slots=True)
class TrioStreamStatistics:
    """A snapshot of a :class:`TrioSocketStream`'s write side (it reads nothing ahead).

    Attributes:
        write_buffered: Bytes written to the stream and not yet in the kernel.
        writing_paused: ``send`` waits for held bytes the kernel has not taken.
    """

    write_buffered: int
    writing_paused: bool


@final
class TrioSocketStream(anyio.abc.SocketStream, HeldWrites):
    """A socket stream on trio's IO waits: the trio fast path of :mod:`hyper_util.rt`.

    It is an ``anyio.abc.SocketStream`` (so a :class:`hyper_core.rt.IO`,
    wrappable by anyio's ``TLSStream``) and answers the socket extra
    attributes. It works only under trio. Make one with
    :func:`hyper_util.rt.connect_tcp`, a listener from
    :func:`hyper_util.rt.create_tcp_listener`, or
    :func:`hyper_util.rt.wrap_connected_socket`, on trio.

    One task may receive while another sends; two tasks receiving (or two
    sending) at once get ``anyio.BusyResourceError``.
    """

    __slots__ = (
        "_addresses",
        "_batch",
        "_close_timeout",
        "_closed",
        "_drained",
        "_eof_sent",
        "_held",
        "_held_size",
        "_receiving",
        "_sending",
        "_sock",
        "_unsent",
        "_write_error",
    )

    def __init__(
        self, sock: socket.socket, *, close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    ) -> None:
        self._sock = sock
        self._close_timeout = close_timeout
        self._batch = trio_batch()
        self._held: list[bytes] | None = None
        self._held_size = 0
        # Held bytes the kernel did not take at once, and the event their
        # writer task sets when they are all written (or failed).
        self._unsent: memoryview | None = None
        self._drained: trio.Event | None = None
        self._write_error: OSError | None = None
        self._closed = False
        self._eof_sent = False
        self._receiving = False
        self._sending = False
        # (local, peer), read at the first extra() call. Kept rather than the
        # attribute mapping, whose six closures would cost an idle
        # connection about 1 KiB.
        self._addresses: tuple[Any, Any] | None = None

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The socket attributes anyio defines; the addresses are read once."""
        sock = self._sock
        addresses = self._addresses
        if addresses is None:
            try:
                peer = _address(sock.getpeername())
            except OSError:
                peer = None
            addresses = self._addresses = (_address(sock.getsockname()), peer)
        return socket_attributes(sock, *addresses)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Wait until the socket is readable, then return between 1 and ``max_bytes`` bytes.

        Raises:
            anyio.EndOfStream: The peer shut down its write side.
            anyio.BrokenResourceError: The connection failed (reset).
            anyio.ClosedResourceError: This stream was closed (also while waiting).
            anyio.BusyResourceError: Another task is already in ``receive``.
            ValueError: ``max_bytes`` is less than 1.

        Cancel safety: a cancelled ``receive`` has read nothing.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._receiving:
            raise anyio.BusyResourceError("reading from")
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        sock = self._sock
        self._receiving = True
        try:
            while True:
                await trio.lowlevel.wait_readable(sock)
                try:
                    data = sock.recv(max_bytes)
                    break
                except (BlockingIOError, InterruptedError):
                    continue
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        except OSError as exc:
            if self._closed:
                raise anyio.ClosedResourceError from None
            raise anyio.BrokenResourceError from exc
        finally:
            self._receiving = False
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Write all of ``item``; wait only while the kernel's buffer is full.

        Returns once ``item`` is in the kernel's buffer or, if another write
        went out in this pass of trio's scheduler, held by this stream (up to
        64 KiB). Held bytes are written in order, in the next pass, or before
        :meth:`send_eof` or :meth:`aclose` acts.

        Raises:
            anyio.BrokenResourceError: The connection failed or the peer reset it.
            anyio.ClosedResourceError: This stream was closed or :meth:`send_eof` called.
            anyio.BusyResourceError: Another task is already waiting in ``send``.

        Cancel safety: a cancelled ``send`` may have written part of ``item``;
        the stream is then unusable for framed protocols, as with any stream.
        """
        await self.send_many((item,))

    async def send_many(self, items: Sequence[bytes]) -> None:
        """Write every chunk of ``items`` in order, held like :meth:`send`'s.

        Raises and cancel safety: as :meth:`send`.
        """
        if self._sending:
            raise anyio.BusyResourceError("writing to")
        if self._closed or self._eof_sent:
            raise anyio.ClosedResourceError
        if self._write_error is not None:
            raise anyio.BrokenResourceError from self._write_error
        self._sending = True
        try:
            if self._unsent is not None:
                await self._wait_drained()
            size = sum(map(len, items)) if len(items) != 1 else len(items[0])
            if self._hold(items, size):
                return
            if self._unsent is not None:  # what _hold wrote first went only in part
                await self._wait_drained()
            await self._write(items[0] if len(items) == 1 else b"".join(items))
        finally:
            self._sending = False

    async def _write(self, data: bytes) -> None:
        sock = self._sock
        view: memoryview | bytes = data
        try:
            while True:
                try:
                    sent = sock.send(view)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                if sent == len(view):
                    return
                if not isinstance(view, memoryview):
                    view = memoryview(view)
                view = view[sent:]
                await trio.lowlevel.wait_writable(sock)
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        except OSError as exc:
            if self._closed:
                raise anyio.ClosedResourceError from None
            self._write_error = exc
            raise anyio.BrokenResourceError from exc

    def flush_held(self) -> None:
        """Hand the held writes to the kernel now (the batch calls this); never raises."""
        held = self._held
        if held is None:
            return
        self._held = None
        self._held_size = 0
        if self._write_error is not None or self._sock.fileno() < 0:
            return
        data = held[0] if len(held) == 1 else b"".join(held)
        if self._unsent is not None:
            # An earlier flush is still being written: these go after it.
            self._unsent = memoryview(bytes(self._unsent) + data)
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._write_error = exc
            return
        if sent < len(data):
            self._unsent = memoryview(data)[sent:]
            self._drained = trio.Event()
            try:
                trio.lowlevel.spawn_system_task(self._drain, name="hyper_util held write")
            except RuntimeError as exc:  # the run is shutting down
                self._write_error = OSError(f"could not write held bytes: {exc}")
                self._end_drain()

    async def _drain(self) -> None:
        sock = self._sock
        try:
            while self._unsent is not None:
                await trio.lowlevel.wait_writable(sock)
                try:
                    sent = sock.send(self._unsent)
                except (BlockingIOError, InterruptedError):
                    continue
                if sent == len(self._unsent):
                    break
                self._unsent = self._unsent[sent:]
        except trio.ClosedResourceError:
            pass  # closed by aclose after its timeout: it reset the connection
        except OSError as exc:
            self._write_error = exc
        finally:
            self._end_drain()

    def _end_drain(self) -> None:
        self._unsent = None
        drained = self._drained
        self._drained = None
        if drained is not None:
            drained.set()

    async def _wait_drained(self) -> None:
        drained = self._drained
        if drained is not None:
            await drained.wait()
        if self._closed:
            raise anyio.ClosedResourceError
        if self._write_error is not None:
            raise anyio.BrokenResourceError from self._write_error

    async def send_eof(self) -> None:
        """Shut down the write side once held bytes are written; receiving still works.

        Raises:
            anyio.ClosedResourceError: This stream was closed.
            anyio.BrokenResourceError: Writing the held bytes failed.
            anyio.BusyResourceError: Another task is waiting in ``send``.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._sending:
            raise anyio.BusyResourceError("writing to")
        if self._eof_sent:
            return
        self.flush_held()
        if self._unsent is not None:
            self._sending = True
            try:
                await self._wait_drained()
            finally:
                self._sending = False
        self._eof_sent = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    async def aclose(self) -> None:
        """Close the connection after writing what is held; wake any waiting task.

        Bytes held that a slow peer does not let into the kernel within
        ``close_timeout`` seconds are dropped and the connection reset (RST),
        never ended cleanly after a truncated message. A task blocked in
        :meth:`receive` or :meth:`send` gets ``anyio.ClosedResourceError``.

        Cancel safety: when cancelled, it resets the connection and re-raises:
        the stream is closed either way.
        """
        if self._closed:
            return
        self.flush_held()
        sock = self._sock
        try:
            if self._unsent is not None and self._write_error is None:
                with anyio.move_on_after(self._close_timeout):
                    drained = self._drained
                    if drained is not None:
                        await drained.wait()
        finally:
            self._closed = True
            if self._unsent is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            trio.lowlevel.notify_closing(sock)
            sock.close()

    def statistics(self) -> TrioStreamStatistics:
        """Return how many written bytes are not in the kernel yet and whether ``send`` waits."""
        unsent = self._unsent
        return TrioStreamStatistics(
            write_buffered=self._held_size + (len(unsent) if unsent is not None else 0),
            writing_paused=unsent is not None,
        )

    def __repr__(self) -> str:
        return f"<TrioSocketStream fd={self._sock.fileno()}>"


def wrap_trio_socket(
    sock: socket.socket, *, close_timeout: float = DEFAULT_CLOSE_TIMEOUT
) -> TrioSocketStream:
    """Make a :class:`TrioSocketStream` of a connected socket (takes ownership).

    Sets it non-blocking and turns on ``TCP_NODELAY`` for TCP.
    """
    try:
        sock.setblocking(False)
        set_nodelay(sock)
    except BaseException:
        sock.close()
        raise
    return TrioSocketStream(sock, close_timeout=close_timeout)
