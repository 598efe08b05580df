"""The state, the reads and the connection task of the HTTP/1 client connection.

What belongs here: :class:`ClientIO`, the base class of
``_client.ClientDispatcher``: the connection's state (every slot, set in
its ``__init__``) and its changes (``_close``, back to IDLE once an
exchange is over), the reads (adaptive sizes, one reader at a time, the
idle watch) and the connection task (``run``). Sending a request and building its
response are in ``_client.py``; the response body's source is in
``_client_body.py``.

Strategy: one read path, over every IO.

* Every read goes through the IO's receive-watch capability
  (:class:`~hyper_core.rt.SupportsReceiveWatch`): the IO's own when it has
  one (hyper-util's ``AsyncioSocketStream``), else a
  :class:`~hyper_core.rt.ReceiveWatcher` made here around it, whose
  watching task runs in the connection's task group. Writes go to the IO
  itself.
* While the connection is idle, a one-shot callback
  (``notify_receivable``) watches it; when the server closes, fails or
  sends bytes nobody asked for, the callback takes them with
  ``receive_nowait`` and closes the connection there and then, so no
  request is sent on it meanwhile. An exchange withdraws it as it starts.
  The connection task sleeps from start to end, with no wake-up per
  request.
* While an exchange is in flight, the task that needs bytes reads: the
  caller waiting for the response head, or the application reading the
  response body (the body is pulled from the socket by its reader: an
  unread body holds at most one read in memory). A flag serializes the
  reads; a task that finds another one reading waits until that read is
  fed to the codec and looks again. ``IO.receive`` loses nothing when
  cancelled (the :class:`~hyper_core.rt.IO` contract), so a reader that
  times out leaves the connection intact.
* A close stops a read in progress with ``interrupt_receive``; no read
  carries a cancel scope. A ``ReceiveWatcher`` stops that way only a read
  that took over from its watching task (the response head's first read
  on a connection that sat idle long enough for that task to start
  reading) and declines the others (a body's reads, and the head's of a
  request sent right after the last one, which pay nothing for being
  stoppable); such a read ends when the IO is closed, which the connection
  task does as it ends, with ``without_shutdown()`` too when a read is
  still in flight (the IO is mid-exchange and useless then).
* Read sizes adapt as hyper's do (:class:`_ReadStrategy`).
* The connection task itself never raises the exchange's errors; it ends,
  and ``ready()`` then says why.
* A base class, not a helper object: ``ClientDispatcher`` is one object
  whose methods reach these slots and methods with the same lookups as if
  they were written in one class.
"""

from __future__ import annotations

import enum
from typing import Final, final

import anyio
import anyio.abc

from hyper_core._caused import caused
from hyper_core.error import (
    CanceledError,
    ClosedError,
    HyperError,
    IncompleteMessageError,
    ParseError,
    UserError,
)
from hyper_core.http import Uri
from hyper_core.rt import IO, ReceiveWatcher, WatchableIO, supports_receive_watch
from hyper_core.upgrade import _Pending

from ._client_config import ClientConfig
from ._codec import CodecState, Role, new_codec
from ._events import Data, EndOfMessage
from ._writev import chunk_sender

__all__ = ["INIT_READ_SIZE", "ClientIO"]

#: First read size, in bytes, of the adaptive read strategy (hyper's
#: ``INIT_BUFFER_SIZE``). It doubles after a read that filled it, up to
#: ``max_buf_size``, and halves after two reads that used less than half.
INIT_READ_SIZE: Final = 8192

_DONE: Final = CodecState.DONE
_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


_HTTP2_ONLY: Final = (
    "the server speaks HTTP/2 only: it sent an HTTP/2 frame where an HTTP/1.1 "
    "response belongs (talk to it with HTTP/2 prior knowledge)"
)


def _looks_like_http2(first: bytes) -> bool:
    """Whether a connection's first bytes are an HTTP/2 frame rather than HTTP/1.

    An HTTP/2 server starts with a SETTINGS frame (RFC 9113 section 3.4)
    and may answer an HTTP/1 request with GOAWAY: a 9-byte frame header of
    type 0x4 or 0x7 on stream 0, whose length starts with a zero byte. An
    HTTP/1 response starts with ``HTTP/``.
    """
    if first[0] != 0:
        return False
    return len(first) < 9 or (first[3] in (0x4, 0x7) and first[5:9] == b"\x00\x00\x00\x00")


class _State(enum.Enum):
    """Where the connection is, from the sender's point of view."""

    IDLE = "idle"  # ready for a request
    BUSY = "busy"  # a request is being written or its response read
    CLOSED = "closed"  # finished; ``_close_error`` says why (None: normally)
    UPGRADED = "upgraded"  # the IO belongs to the upgrade now


_IDLE: Final = _State.IDLE
_BUSY: Final = _State.BUSY
_CLOSED: Final = _State.CLOSED
_UPGRADED: Final = _State.UPGRADED


@final
class _ReadStrategy:
    """How many bytes to ask of the IO per read (hyper's ``ReadStrategy``)."""

    __slots__ = ("_decrease_now", "_exact", "_max", "size")

    def __init__(self, exact: int | None, max_size: int) -> None:
        self._exact = exact is not None
        self.size = exact if exact is not None else INIT_READ_SIZE
        self._max = max_size
        self._decrease_now = False

    def record(self, n: int) -> None:
        if self._exact:
            return
        size = self.size
        if n >= size:
            self.size = min(size * 2, self._max)
            self._decrease_now = False
        elif n < size // 2:
            # Shrinking takes two small reads in a row: one small read in a
            # fast stream (the tail of a burst) says little.
            if self._decrease_now:
                self.size = max(size // 2, INIT_READ_SIZE)
            self._decrease_now = not self._decrease_now
        else:
            self._decrease_now = False


@final
class _Exchange:
    """One request and its response, while they are in flight."""

    __slots__ = (
        "error",
        "head_delivered",
        "request_done",
        "response_done",
        "written",
    )

    def __init__(self) -> None:
        self.written = False  # writing the request head has started
        self.request_done = False  # the request body ended (or failed to be written)
        self.response_done = False  # the response body ended
        self.head_delivered = False  # send_request returned the response
        self.error: HyperError | None = None  # why the exchange failed, for send_request


class ClientIO:
    """The state, reads and connection task of ``ClientDispatcher`` (see the module docstring).

    Not used alone: ``http1.Builder.handshake`` makes a ``ClientDispatcher``,
    which adds the sender's side.
    """

    __slots__ = (
        "_changed",
        "_children",
        "_close_error",
        "_codec",
        "_config",
        "_driver_event",
        "_exchange",
        "_heard",
        "_interrupt",
        "_io",
        "_last_target",
        "_last_uri",
        "_new_event",
        "_nowait",
        "_pending_upgrade",
        "_read_declined",
        "_read_done",
        "_reading",
        "_reads",
        "_recv",
        "_running",
        "_send_chunks",
        "_sender_closed",
        "_serving",
        "_started",
        "_state",
        "_tg",
        "_watch",
        "_watcher",
    )

    def __init__(self, io: IO, config: ClientConfig) -> None:
        self._io = io
        self._config = config
        self._codec = new_codec(
            Role.CLIENT,
            max_buf_size=config.max_buf_size,
            max_headers=config.max_headers,
            limits=config.limits,
            title_case_headers=config.title_case_headers,
            allow_obs_fold=config.allow_obs_fold,
            http09_responses=config.http09_responses,
            allow_space_before_colon=config.allow_space_before_colon,
            ignore_invalid_headers=config.ignore_invalid_headers,
        )
        self._send_chunks = chunk_sender(io, config.writev)
        self._reads = _ReadStrategy(config.read_buf_exact_size, config.max_buf_size)
        self._state = _IDLE
        self._exchange: _Exchange | None = None
        self._close_error: HyperError | None = None
        self._sender_closed = False
        self._changed: anyio.Event | None = None
        self._reading = False
        self._read_declined = False  # a close found a read the IO would not interrupt
        self._read_done: anyio.Event | None = None
        # A task was started in the connection's task group (the receive
        # watcher, a request body's writer): the group's end must cancel it.
        self._children = False
        self._serving = anyio.Event()
        # ``anyio.Event()`` looks the running library up (through sniffio)
        # on every call, a visible share of a small request's cost. The
        # backend's own class constructs directly, and a connection never
        # moves to another event loop.
        self._new_event: type[anyio.Event] = type(self._serving)
        self._started = False  # run() has begun (``_serving`` is set)
        self._last_uri: Uri | None = None  # the last request's URI and its bytes
        self._last_target = b""
        self._running = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._pending_upgrade: _Pending | None = None
        # The one read path (see the module docstring): the IO's own
        # receive-watch capability, or a ReceiveWatcher made here (run by
        # the connection task's task group), asking the read strategy's size.
        rx: WatchableIO
        if supports_receive_watch(io):
            rx = io
            self._watcher: ReceiveWatcher | None = None
        else:
            rx = self._watcher = ReceiveWatcher(io, watch_bytes=self._reads.size)
        self._recv = rx.receive
        self._watch = rx.notify_receivable
        self._nowait = rx.receive_nowait
        self._interrupt = rx.interrupt_receive
        self._driver_event: anyio.Event | None = None  # the connection task sleeps on it
        self._heard = False  # any byte received yet (the first ones may be HTTP/2's)

    @property
    def io(self) -> IO:
        """The IO the connection runs over."""
        return self._io

    @property
    def running(self) -> bool:
        """Whether a task is driving the connection now."""
        return self._running

    def read_buf(self) -> bytes:
        """Bytes read from the IO and not parsed (read ahead of an upgrade)."""
        trailing = self._codec.trailing_data[0]
        watcher = self._watcher
        if watcher is not None and watcher.pending():
            return trailing + watcher.pending()
        return trailing

    # -- state changes ------------------------------------------------------

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    async def _wait_changed(self) -> None:
        changed = self._changed
        if changed is None:
            changed = self._changed = self._new_event()
        await changed.wait()

    def _wake_driver(self) -> None:
        event = self._driver_event
        if event is not None:
            self._driver_event = None
            event.set()

    def _begin(self, exchange: _Exchange) -> None:
        """Make ``exchange`` the connection's one in flight."""
        # A method, not assignments in the caller: there mypy would take
        # ``self._exchange`` to be ``exchange`` across the caller's awaits,
        # and the compiled build trusts that (a TypeError once a close has
        # set it to None).
        self._exchange = exchange
        self._state = _BUSY
        # The idle watch ends with the idleness: the exchange's tasks read
        # now. Left registered, a ReceiveWatcher's task would start a read
        # of its own for the caller to take over, a task switch per request.
        self._watch(None)

    def _close(self, error: HyperError | None) -> None:
        """Mark the connection finished; the connection task closes the IO."""
        if self._state is _CLOSED or self._state is _UPGRADED:
            return
        self._state = _CLOSED
        self._close_error = error
        exchange = self._exchange
        self._exchange = None
        if exchange is not None and not exchange.head_delivered and exchange.error is None:
            exchange.error = error or CanceledError("connection closed")
        self._watch(None)
        if self._reading and not self._interrupt(self._closed_error()):
            # The task reading for the exchange gets the close as its error;
            # a read the IO declines to stop ends when the connection task
            # closes the IO (see run).
            self._read_declined = True
        self._wake_driver()
        self._notify()

    def _closed_error(self) -> ClosedError:
        error = ClosedError("connection is closed")
        error.__cause__ = self._close_error
        return error

    # -- the end of an exchange -----------------------------------------------

    def _response_finished(self, exchange: _Exchange) -> None:
        exchange.response_done = True
        self._maybe_finish(exchange)

    def _maybe_finish(self, exchange: _Exchange) -> None:
        """Both directions are done: back to IDLE, or close."""
        if not (exchange.request_done and exchange.response_done) or self._exchange is not exchange:
            return
        self._exchange = None
        codec = self._codec
        if self._sender_closed or codec.our_state is not _DONE or codec.their_state is not _DONE:
            self._close(None)
            return
        try:
            codec.start_next_cycle()
        except HyperError as exc:  # bytes after the response that no request asked for
            self._close(exc)
            return
        self._state = _IDLE
        self._notify()
        if self._running and self._watch(self._on_receivable):
            self._on_receivable()  # already closed by the server, or bytes came

    def _release_body(self, exchange: _Exchange) -> None:
        """The application closed a response body before its end."""
        if self._exchange is not exchange:
            return
        codec = self._codec
        try:
            # The rest may already be buffered: then the connection is kept.
            while True:
                event = codec.next_event()
                if type(event) is EndOfMessage:
                    self._response_finished(exchange)
                    return
                if type(event) is not Data:
                    break
        except HyperError:
            pass
        # Reading the rest off the network could take any time: close instead
        # (as hyper does when a body is dropped).
        self._close(ClosedError("the response body was closed before its end"))

    # -- reading --------------------------------------------------------------

    async def _read_more(self) -> None:
        """Get more bytes into the codec, or wait for the task getting them.

        Raises:
            ClosedError: the connection is closed.
            IncompleteMessageError: the IO failed.
        """
        if self._state is _CLOSED:
            raise self._closed_error()
        if self._reading:
            done = self._read_done
            if done is None:
                done = self._read_done = self._new_event()
            await done.wait()
            return
        await self._receive()

    def _on_receivable(self) -> None:
        """The IO's callback (idle watch): bytes, EOF or a failure can be received."""
        if self._state is not _IDLE:
            return  # registered while idle; the exchange's own reads take it
        # Idle: whatever it is ends the connection; find out what now, inside
        # the IO's callback, so that no request is sent on it meanwhile.
        try:
            self._receive_nowait()
        except HyperError as exc:
            self._close(exc)
        except Exception as exc:  # pragma: no cover (receive_nowait raises IO errors only)
            failure = IncompleteMessageError("connection failed while reading")
            failure.__cause__ = exc
            self._close(failure)

    def _receive_nowait(self) -> None:
        """Take what the IO holds (idle watch); nothing if there is nothing."""
        try:
            data = self._nowait(self._reads.size)
        except anyio.WouldBlock:
            return
        except anyio.EndOfStream:
            data = b""
        except _IO_ERRORS as exc:
            raise caused(IncompleteMessageError("connection failed while reading"), exc) from exc
        self._received(data)

    async def _receive(self) -> None:
        self._reading = True
        try:
            try:
                data = await self._recv(self._reads.size)
            except anyio.EndOfStream:
                data = b""
            except _IO_ERRORS as exc:
                if self._state is _CLOSED:  # closed by us: say why, not how the IO noticed
                    raise self._closed_error()  # noqa: B904 (its cause is the close reason)
                raise caused(
                    IncompleteMessageError("connection failed while reading"), exc
                ) from exc
        finally:
            self._reading = False
            done = self._read_done
            if done is not None:
                self._read_done = None
                done.set()
        self._received(data)

    def _received(self, data: bytes) -> None:
        """Hand bytes read from the IO (``b""``: EOF) to the codec, or end an idle connection.

        Raises:
            ParseError: the first bytes of the connection are an HTTP/2 frame.
        """
        state = self._state
        if not self._heard and data:
            self._heard = True
            if _looks_like_http2(data):
                # Closed here, not only raised: the reader may be the
                # connection task, which drops errors once a request is in
                # flight; the exchange then gets this error from the close.
                error = ParseError(_HTTP2_ONLY, status_hint=None)
                self._close(error)
                if state is _IDLE:
                    return
                raise error
        if state is _IDLE:
            # Nobody asked for these bytes: an answer to no request must never
            # be taken for the answer to the next one.
            if data:
                self._close(
                    ParseError(
                        "unexpected bytes from the server on an idle connection", status_hint=None
                    )
                )
            else:
                self._close(None)  # the server closed an idle connection
            return
        if state is _CLOSED or state is _UPGRADED:
            return
        self._reads.record(len(data))
        self._codec.receive_data(data)

    # -- the connection task ---------------------------------------------------

    async def run(self, *, upgrades: bool, shutdown: bool) -> None:
        """Drive the connection until it closes or upgrades.

        Args:
            upgrades: Hand the IO to ``upgrade.on(response)`` after a 101 or a
                2xx to CONNECT; otherwise the upgrade fails with
                ``UserError`` and the IO stays here for ``into_parts()``.
            shutdown: Close the IO at the end (not after an upgrade).

        Raises:
            UserError: the connection is already being driven.
        """
        if self._running:
            raise UserError("the connection is already being driven by another task")
        self._running = True
        # Cleanup that awaits runs in an except block and after the try, not
        # in a finally: compiled, an await in a finally that an exception
        # runs through can re-raise another task's error (mypyc/mypyc#1114).
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self._watcher is not None:
                    self._children = True
                    tg.start_soon(self._watcher.run)
                self._started = True
                self._serving.set()
                try:
                    await self._drive()
                finally:
                    self._tg = None
                    # Closed (if cancelled) before the tasks below are: a
                    # read waiting on the ReceiveWatcher's task is then
                    # interrupted, not left to read on by itself.
                    self._close(CanceledError("the connection task was cancelled"))
                    # Only if a task was started in the group: anyio's
                    # cancel() formats the current task's repr for its reason,
                    # some 15 us that a connection closing after a GET would pay.
                    if self._children:
                        tg.cancel_scope.cancel()
        except BaseException as exc:
            await self._ended(upgrades=upgrades, shutdown=shutdown, cancelled=True)
            raise exc
        await self._ended(upgrades=upgrades, shutdown=shutdown, cancelled=False)

    async def _ended(self, *, upgrades: bool, shutdown: bool, cancelled: bool) -> None:
        """After :meth:`run`'s task group: hand over an upgrade, or close the IO."""
        self._running = False
        self._close(CanceledError("the connection task was cancelled"))
        pending = self._pending_upgrade
        if self._state is _UPGRADED and pending is not None:
            if upgrades:
                pending.fulfil(self._io, self.read_buf())
            else:
                pending.fail(
                    UserError(
                        "upgrade expected but the connection does not allow upgrades "
                        "(use Connection.with_upgrades())"
                    )
                )
        elif shutdown or (self._read_declined and self._reading):
            # A read still in flight was one the IO declined to
            # interrupt: closing the IO is what ends it (the IO is
            # mid-exchange, of no use to into_parts()).
            with anyio.CancelScope(shield=True) as scope:
                if cancelled:
                    scope.cancel()  # close at once, without a graceful goodbye
                await self._io.aclose()

    async def _drive(self) -> None:
        if self._state is _IDLE and self._watch(self._on_receivable):
            self._on_receivable()
        while True:
            state = self._state
            if state is _IDLE:
                if self._sender_closed:
                    self._close(None)
                    return
            elif state is not _BUSY:
                return
            # The IO's callback watches an idle connection and the exchange's
            # tasks read, so this task only wakes for a close, an upgrade or
            # the sender's end.
            event = self._driver_event
            if event is None:
                event = self._driver_event = self._new_event()
            await event.wait()
