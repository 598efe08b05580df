"""The state, the reads and the connection task of the HTTP/1 client connection.

What belongs here: :class:`ClientIO`, the base class of
``_client.ClientDispatcher``: the connection's state (every slot, set in
its ``__init__``) and its changes (``_close``, back to IDLE once an
exchange is over), the reads (adaptive sizes, one reader at a time, watch
mode) and the connection task (``run``). Sending a request and building its
response are in ``_client.py``; the response body's source is in
``_client_body.py``.

Strategy:

* Reads are done by whichever task needs bytes: the caller waiting for the
  response head, the application reading the response body, or, while no
  request is in flight, the connection task, which is how it notices that
  the server closed or sent bytes nobody asked for. A flag serializes the
  reads; a task that finds another one reading waits until that read is fed
  to the codec and looks again. ``IO.receive`` loses nothing when cancelled
  (the :class:`~hyper_core.rt.IO` contract), so a reader that times out
  leaves the connection intact. The body is therefore pulled from the socket
  by its reader: an unread body holds at most one read in memory.
* Over an IO with the three optional capabilities ``notify_receivable``,
  ``receive_nowait`` and ``interrupt_receive`` (hyper-util's asyncio fast
  path has them: see ``AsyncioSocketStream``), "watch mode": while the
  connection is idle, a one-shot callback watches it instead of the
  connection task, and when the server closes, fails or sends bytes nobody
  asked for, it closes the connection there and then; the connection task
  sleeps from start to end, with no wake-up per request. Only the tasks of
  the exchange read, and a close interrupts a read in progress with
  ``interrupt_receive`` instead of a cancel scope per request. Over any
  other IO the connection task reads while the connection is idle, as
  described above.
* Read sizes adapt as hyper's do (:class:`_ReadStrategy`).
* The connection task itself never raises the exchange's errors; it ends,
  and ``ready()`` then says why.
* A base class, not a helper object: ``ClientDispatcher`` is one object
  whose methods reach these slots and methods with the same lookups as if
  they were written in one class.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final, final

import anyio
import anyio.abc

from hyper_core.error import (
    CanceledError,
    ClosedError,
    HyperError,
    IncompleteMessageError,
    ParseError,
    UserError,
)
from hyper_core.http import Uri
from hyper_core.rt import IO
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
        "head_scope",
        "request_done",
        "response_done",
        "written",
    )

    def __init__(self) -> None:
        self.written = False  # writing the request head has started
        self.request_done = False  # the request body ended (or failed to be written)
        self.response_done = False  # the response body ended
        self.head_delivered = False  # send_request returned the response
        self.head_scope: anyio.CancelScope | None = None  # the wait for the response head
        self.error: HyperError | None = None  # why the exchange failed, for send_request


class ClientIO:
    """The state, reads and connection task of ``ClientDispatcher`` (see the module docstring).

    Not used alone: ``http1.Builder.handshake`` makes a ``ClientDispatcher``,
    which adds the sender's side.
    """

    __slots__ = (
        "_changed",
        "_close_error",
        "_codec",
        "_config",
        "_driver_event",
        "_exchange",
        "_heard",
        "_idle_scope",
        "_interrupt",
        "_io",
        "_last_target",
        "_last_uri",
        "_new_event",
        "_new_scope",
        "_nowait",
        "_pending_upgrade",
        "_read_done",
        "_reading",
        "_reads",
        "_running",
        "_send_chunks",
        "_sender_closed",
        "_serving",
        "_started",
        "_state",
        "_tg",
        "_watch",
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
        self._read_done: anyio.Event | None = None
        self._idle_scope: anyio.CancelScope | None = None
        self._serving = anyio.Event()
        # ``anyio.Event()`` and ``anyio.CancelScope()`` look the running
        # library up (through sniffio) on every call; a request makes one of
        # each, and that look-up was a visible share of its cost. The
        # backend's own classes construct directly, and a connection never
        # moves to another event loop.
        self._new_event: type[anyio.Event] = type(self._serving)
        self._new_scope: type[anyio.CancelScope] = type(anyio.CancelScope())
        self._started = False  # run() has begun (``_serving`` is set)
        self._last_uri: Uri | None = None  # the last request's URI and its bytes
        self._last_target = b""
        self._running = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._pending_upgrade: _Pending | None = None
        # The optional IO capabilities of watch mode (see the module docstring): all or none.
        watch: Callable[[Callable[[], object] | None], bool] | None
        watch = getattr(io, "notify_receivable", None)
        nowait: Callable[[int], bytes] | None = getattr(io, "receive_nowait", None)
        interrupt: Callable[[BaseException], bool] | None
        interrupt = getattr(io, "interrupt_receive", None)
        if watch is None or nowait is None or interrupt is None:
            watch = nowait = interrupt = None
        self._watch = watch
        self._nowait = nowait
        self._interrupt = interrupt
        self._driver_event: anyio.Event | None = None  # the connection task sleeps (watch mode)
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
        return self._codec.trailing_data[0]

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

    def _close(self, error: HyperError | None) -> None:
        """Mark the connection finished; the connection task closes the IO."""
        if self._state is _CLOSED or self._state is _UPGRADED:
            return
        self._state = _CLOSED
        self._close_error = error
        exchange = self._exchange
        self._exchange = None
        if exchange is not None and not exchange.head_delivered:
            if exchange.error is None:
                exchange.error = error or CanceledError("connection closed")
            if exchange.head_scope is not None:
                exchange.head_scope.cancel()
        if self._idle_scope is not None:
            self._idle_scope.cancel()
        if self._interrupt is not None and self._watch is not None:
            self._watch(None)
            # A task reading for the exchange gets the close as its error.
            self._interrupt(self._closed_error())
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
        watch = self._watch
        if watch is not None and self._running and watch(self._on_receivable):
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
        """The IO's callback (watch mode): bytes, EOF or a failure can be received."""
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
        """Take what the IO holds (watch mode, idle); nothing if there is nothing."""
        assert self._nowait is not None
        try:
            data = self._nowait(self._reads.size)
        except anyio.WouldBlock:
            return
        except anyio.EndOfStream:
            data = b""
        except _IO_ERRORS as exc:
            raise IncompleteMessageError("connection failed while reading") from exc
        self._received(data)

    async def _receive(self) -> None:
        self._reading = True
        try:
            try:
                data = await self._io.receive(self._reads.size)
            except anyio.EndOfStream:
                data = b""
            except _IO_ERRORS as exc:
                if self._state is _CLOSED:  # closed by us: say why, not how the IO noticed
                    raise self._closed_error()  # noqa: B904 (its cause is the close reason)
                raise IncompleteMessageError("connection failed while reading") from exc
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
        cancelled = True
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._started = True
                self._serving.set()
                try:
                    await self._drive()
                finally:
                    self._tg = None
                    tg.cancel_scope.cancel()  # a request body still being written
            cancelled = False
        finally:
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
            elif shutdown:
                with anyio.CancelScope(shield=True) as scope:
                    if cancelled:
                        scope.cancel()  # close at once, without a graceful goodbye
                    await self._io.aclose()

    async def _drive(self) -> None:
        watch = self._watch
        if watch is not None and self._state is _IDLE and watch(self._on_receivable):
            self._on_receivable()
        while True:
            state = self._state
            if state is _IDLE:
                if self._sender_closed:
                    self._close(None)
                    return
                if watch is None:
                    await self._watch_idle()
                    continue
            elif state is not _BUSY:
                return
            elif watch is None:
                await self._wait_changed()
                continue
            # Watch mode: the IO's callback watches an idle connection, so
            # this task only wakes for a close, an upgrade or the sender's end.
            event = self._driver_event
            if event is None:
                event = self._driver_event = self._new_event()
            await event.wait()

    async def _watch_idle(self) -> None:
        """Read while no request is in flight: notice EOF and unasked-for bytes."""
        with self._new_scope() as scope:
            self._idle_scope = scope
            try:
                await self._read_more()
            except HyperError as exc:
                if self._state is _IDLE:
                    self._close(exc)
            finally:
                self._idle_scope = None
