"""The reading, writing and timing half of the HTTP/1 server connection.

What belongs here: :class:`ServerIO`, the first base class of
``_server.ServerDispatcher`` with everything that touches the IO or the
clock outside the request loop: ``receive``, the writes (``_write``,
``_write_all``, and ``pipeline_flush``'s held answers: ``_hold_or_send``,
``_flush_held``), and the counters the watchdog behind
``header_read_timeout`` and ``send_stall_timeout`` reads (its shared task
is in ``_server_watchdog.py``). The reader task that watches for a client that
leaves is in ``_server_watch.py``, the responses and upgrades in
``_server_respond.py``, the request loop in ``_server.py``. The state
these methods use has its slots here; the dispatcher sets it.

Strategy (bounded memory and time, nothing per request):

* No ``send`` carries more than ``WRITE_CHUNK`` bytes of a larger write: a
  big body goes out in pieces (bytes slices, as the IO contract says), so
  what waits in the IO's write buffer for a slow reader is bounded by that
  buffer's own limit plus one piece, not by the size of the response, and
  a big ``Full`` body is never joined to its head in one more copy (the
  dispatcher writes the head first).
* ``header_read_timeout`` costs no timer and no clock read per request: the
  connection only counts the idle periods it starts (an integer increment),
  and the watchdog (one task per event loop for every connection, see
  ``_server_watchdog.py``), looking a few times per timeout period, reads the
  clock and closes the connection once one idle period has lasted the
  timeout. An idle period is timed from the watchdog's first look at it, so
  the connection closes between ``header_read_timeout`` and
  ``header_read_timeout * (1 + 1 / WATCHDOG_LOOKS)`` after it went idle,
  never earlier (the first period, from the connection's start, is timed
  exactly). Idle means waiting for a request head or draining an unread
  body: a silent or slow client is closed, never left holding the task.
* ``send_stall_timeout`` (nginx's ``send_timeout``) uses the same watchdog:
  each write counts itself in and out (two integer increments), and the
  watchdog closes the connection once one write has not finished for the
  timeout. Each write is at most ``WRITE_CHUNK`` bytes, so a client must
  read at least ``WRITE_CHUNK / send_stall_timeout`` bytes per second
  (about 1 KiB/s with the defaults) or be cut off.
* ``pipeline_flush`` holds answers up to ``min(max_buf_size, WRITE_CHUNK)``
  bytes together, so its one write of them keeps the same bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio

from hyper_core._caused import caused
from hyper_core._write_report import WriteReport
from hyper_core.error import ClosedError, HyperError
from hyper_core.rt import IO

from ._codec import CodecState
from ._server_config import ServerConfig
from ._writev import ChunkSender

if TYPE_CHECKING:
    from ._codec import Codec

__all__ = ["READ_SIZE", "WRITE_CHUNK", "ServerIO"]

#: Bytes asked of the IO per read (anyio's default receive size).
READ_SIZE: Final = 65536
#: Most bytes one ``send`` carries: a larger body goes out in pieces of this
#: size (64 KiB, asyncio's default transport high-water mark), so a slow
#: reader makes the IO buffer at most its own limit plus one piece. A body up
#: to this size is still written together with its head, in one ``send``.
WRITE_CHUNK: Final = 65_536

_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
_DONE: Final = CodecState.DONE


class ServerIO:
    """Reads, bounded writes and the timeout counters of one HTTP/1 server connection.

    Holds the slots of the state these use; ``ServerDispatcher`` sets them.
    """

    __slots__ = (
        "_config",
        "_flush_error",
        "_held",
        "_held_size",
        "_idle",
        "_idle_mark",
        "_io",
        "_report",
        "_scope",
        "_send_chunks",
        "_send_mark",
        "_send_timed_out",
        "_timed_out",
        "codec",
    )

    _config: ServerConfig
    _io: IO
    _send_chunks: ChunkSender  # writes a list of pieces as writev says (_writev.py)
    _held: list[bytes]  # answers held by pipeline_flush (empty without it)
    _held_size: int
    _flush_error: HyperError | None  # a failed write of held answers, while a service ran
    _send_mark: int  # writes started plus writes finished: odd while one runs
    _idle: bool  # waiting for the client (a request head, or a drain)
    _idle_mark: int  # idle periods started so far
    _report: WriteReport | None  # the response being written carries on_write's hook
    _scope: anyio.CancelScope | None
    _timed_out: bool  # header_read_timeout fired
    _send_timed_out: bool  # send_stall_timeout fired
    codec: Codec

    async def receive(self) -> bytes:
        """Read from the IO; ``b""`` at end of stream or on a reset connection."""
        try:
            return await self._io.receive(READ_SIZE)
        except anyio.EndOfStream:
            return b""
        except _IO_ERRORS:
            # A reset while reading is an end of the client's data; what it
            # means (clean close or cut-off message) is the codec's call.
            return b""

    async def _write(self, data: bytes) -> None:
        if len(data) > WRITE_CHUNK:
            await self._write_all([data])
            return
        self._send_mark += 1
        try:
            await self._io.send(data)
        except _IO_ERRORS as exc:
            self.codec.send_failed()
            raise caused(
                ClosedError("the connection failed while writing the response"), exc
            ) from exc
        except BaseException:
            self.codec.send_failed()
            raise
        finally:
            self._send_mark += 1

    async def _write_all(self, chunks: list[bytes]) -> None:
        try:
            if sum(map(len, chunks)) > WRITE_CHUNK:
                await self._write_pieces(chunks)
                return
            self._send_mark += 1
            try:
                await self._send_chunks(chunks)
            finally:
                self._send_mark += 1
        except _IO_ERRORS as exc:
            self.codec.send_failed()
            raise caused(
                ClosedError("the connection failed while writing the response"), exc
            ) from exc
        except BaseException:
            self.codec.send_failed()
            raise

    async def _write_pieces(self, chunks: list[bytes]) -> None:
        # A large write, in sends of at most WRITE_CHUNK bytes each (see the
        # module docstring). The slices are bytes, as the IO contract says.
        send = self._io.send
        for chunk in chunks:
            for offset in range(0, len(chunk), WRITE_CHUNK):
                self._send_mark += 1
                try:
                    await send(chunk[offset : offset + WRITE_CHUNK])
                finally:
                    self._send_mark += 1

    async def _hold_or_send(self, data: bytes) -> None:
        """Send a plain answer, or hold it while more requests are buffered (pipeline_flush).

        The caller counts the write for the watchdog and handles a failed
        one, as for ``io.send``.
        """
        codec = self.codec
        held = self._held
        if codec.input_pending and codec.our_state is _DONE and codec.their_state is _DONE:
            limit = min(self._config.max_buf_size, WRITE_CHUNK)
            if held and self._held_size + len(data) > limit:
                # Full: what is held goes out first, so no write exceeds the
                # bound unless one answer alone does.
                out = b"".join(held)
                held.clear()
                self._held_size = 0
                await self._io.send(out)
            if len(data) <= limit:
                held.append(data)
                self._held_size += len(data)
                return
        if held:
            held.append(data)
            data = b"".join(held)
            held.clear()
            self._held_size = 0
        await self._io.send(data)

    async def _flush_held(self) -> None:
        """Write the answers held by ``pipeline_flush``."""
        data = b"".join(self._held)
        self._held.clear()
        self._held_size = 0
        await self._write(data)
