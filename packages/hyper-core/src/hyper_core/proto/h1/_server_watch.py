"""The HTTP/1 server's reader task: watching for a client that leaves.

What belongs here: :class:`ServerWatch`, the base class of
``_server_respond.ServerResponses`` (and so of
``_server.ServerDispatcher``), with the one reader task per connection:
started when a service suspends (``_service_suspended``), it watches the
socket while the service runs, or while a streamed response body is
produced for a service that asked to hear of a client that leaves, and
cancels the service when the client closes (``half_close`` off). It also
reads for anyone who wants data while it runs (``receive``), ends a watch
(``_stop_watcher``), stops before the IO is handed over on an upgrade
(``_stop_reader``), and waits out a 1xx or a flush of held answers written
by another task (``_wait_continue``). The state these methods use has its
slots here; the dispatcher sets it.

Strategy: one reader per connection, parked between watches: a task per
request (with its cancel scope, its cancellation and its end) cost more
than the rest of a request on trio. A read it started is never cancelled
mid-read: the next ``receive`` takes its bytes (see ``SocketReader``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

import anyio
import anyio.abc

from hyper_core._exchange import Exchange
from hyper_core.error import HeaderTimeoutError, HyperError, IncompleteMessageError, TimeoutError

from ._codec import CodecState
from ._inline import SocketReader
from ._server_io import ServerIO

__all__ = ["ServerWatch"]

_DONE: Final = CodecState.DONE


class ServerWatch(ServerIO):
    """The reader task of one HTTP/1 server connection (see the module docstring).

    Holds the slots of the state these use; ``ServerDispatcher`` sets them.
    """

    __slots__ = (
        "_children",
        "_continue_writing",
        "_disconnected",
        "_exchange",
        "_reader",
        "_task_group",
        "_watcher",
    )

    _children: bool  # a task was started in _task_group (its end must cancel it)
    _continue_writing: anyio.Event | None  # while a 1xx or held answers are written
    _disconnected: bool  # the client left while the service ran
    _exchange: Exchange | None  # the request in flight's Exchange
    _reader: SocketReader | None  # the reader task, once a service suspended
    _task_group: anyio.abc.TaskGroup | None
    _watcher: SocketReader | None  # the reader while it watches

    def _ending_error(self) -> HyperError | None:
        """What ended a connection whose request loop returned or was cancelled by us.

        A timeout (the watchdog cancelled it) or a client that left while
        its service ran (the reader cancelled it); ``None`` for a clean end.
        """
        if self._timed_out:
            return HeaderTimeoutError("no complete request head within header_read_timeout")
        if self._send_timed_out:
            return TimeoutError(
                "the client did not read the response: a write stalled for send_stall_timeout"
            )
        if self._disconnected:
            return IncompleteMessageError("the client closed the connection before the response")
        return None

    # -- watching for a client that leaves while the service runs --------------

    def _service_suspended(self) -> None:
        # The service did not answer at once. If the request is fully read,
        # nobody reads the socket until it answers: the reader task watches
        # it, so a client that leaves cancels the service (half_close off)
        # and pipelined bytes are buffered meanwhile. One reader per
        # connection, parked between watches: a task per request (with its
        # cancel scope, its cancellation and its end) cost more than the
        # rest of a request on trio.
        tg = self._task_group
        if tg is None or self.codec.their_state is not _DONE:
            return
        if self._held:
            # pipeline_flush: the answers held until now go out while the
            # service works, in a task of their own (the reader may be in a
            # read already). Marked as a write in progress, as a 100
            # Continue is: the service's own writes (a 1xx through its
            # Exchange) and _stop_watcher wait for it.
            self._continue_writing = anyio.Event()
            self._spawn(tg, self._flush_for_watch, self._continue_writing)
        reader = self._reader
        if reader is None or not reader.alive:
            reader = self._reader = SocketReader()
            self._spawn(tg, self._read, reader)
        reader.watching = True
        self._watcher = reader
        if reader.wake is not None:
            reader.wake.set()

    def _spawn(
        self, tg: anyio.abc.TaskGroup, func: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        """Start ``func(*args)`` in the connection's task group, whose end then cancels it.

        Every task the dispatcher starts in its group starts here (a watchdog
        of the connection's own is noted where it starts): a connection that
        started none ends without cancelling the group (anyio's cancel()
        formats the current task's repr(), most of the cost of an ending
        connection).
        """
        self._children = True
        tg.start_soon(func, *args)

    async def _flush_for_watch(self, writing: anyio.Event) -> None:
        try:
            await self._flush_held()
        except HyperError as exc:
            self._flush_error = exc
        finally:
            self._continue_writing = None
            writing.set()

    async def _read(self, reader: SocketReader) -> None:
        # The reader task (see SocketReader): reads while it watches or while
        # someone wants data, parks otherwise.
        codec = self.codec
        limit = self._config.max_buf_size
        try:
            with reader.scope:
                while True:
                    if reader.wanted is None and (
                        not reader.watching or len(codec.trailing_data[0]) > limit
                    ):
                        reader.wake = wake = anyio.Event()
                        await wake.wait()
                        reader.wake = None
                        continue
                    data = await ServerIO.receive(self)
                    wanted = reader.wanted
                    if wanted is not None:
                        reader.wanted = None
                        reader.data = data
                        wanted.set()
                    else:
                        codec.receive_data(data)
                    if not data:
                        if (
                            reader.watching
                            and not self._config.half_close
                            and self._scope is not None
                        ):
                            self._disconnected = True
                            if self._exchange is not None:
                                self._exchange.client_gone()
                            self._scope.cancel()
                        return
        finally:
            reader.alive = False
            if reader.wanted is not None:
                reader.wanted.set()  # nothing read: the one waiting reads itself
            reader.done.set()

    async def receive(self) -> bytes:
        """Read from the IO, through the reader task while it runs; ``b""`` at the end."""
        reader = self._reader
        if reader is None or not reader.alive:
            return await ServerIO.receive(self)
        reader.wanted = wanted = anyio.Event()
        if reader.wake is not None:
            reader.wake.set()
        try:
            await wanted.wait()
        except BaseException:
            if reader.wanted is wanted:
                reader.wanted = None  # its read, when it comes, goes to the codec
            elif reader.data is not None:
                self.codec.receive_data(reader.data)  # read for us: keep it
                reader.data = None
            raise
        data = reader.data
        reader.data = None
        if data is None:  # the reader ended without reading
            return await ServerIO.receive(self)
        return data

    async def _stop_watcher(self) -> None:
        # The watch ends; a read the reader started stays its own (the next
        # receive() takes its bytes), so nothing is cancelled.
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.watching = False
        if self._continue_writing is not None:
            await self._wait_continue()  # a flush of held answers (or a 100 Continue)

    async def _stop_reader(self) -> None:
        # Before the IO is handed over (an upgrade): no read may be left on it.
        reader = self._reader
        if reader is not None:
            self._reader = self._watcher = None
            reader.scope.cancel()
            await reader.done.wait()

    async def _wait_continue(self) -> None:
        # A body reader in another task may be writing 100 Continue.
        writing = self._continue_writing
        if writing is not None:
            await writing.wait()
