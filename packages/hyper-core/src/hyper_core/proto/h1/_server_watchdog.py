"""The timeout watchdog of the HTTP/1 server: shared by a server's connections.

What belongs here: :func:`watch`, which puts one server connection under
the watchdog behind ``header_read_timeout`` and ``send_stall_timeout``
(what it times, and how late it may notice, is in ``_server_io.py``'s
docstring); :func:`share_watchdog`, which lets a server's connections
share one; and the task that does the looking.

Strategy (memory per idle connection):

* A watchdog task per connection cost about 4 KiB of the ~14 KiB an idle
  keep-alive connection held (the task, anyio's handle and event for it,
  its coroutine frames, its sleep's timer). A connection now costs one
  slotted :class:`Watch` (with its two stopwatches) in a heap ordered by
  the time of its next look, and one task sleeps until the earliest, looks
  at every watch due and puts each back with the time of its next look.
  The looks and their times are the ones a connection's own task took: the
  first when the connection starts, then one step (a
  ``WATCHDOG_LOOKS``-th of the shorter timeout) apart, or at the expiry
  when that comes first. Nothing changes per request: the connection
  still only counts its idle periods and writes.
* Who runs the task: a server that accepts connections in a task group of
  its own (``hyper_util.server.serve()``) enters :func:`share_watchdog`
  with that task group around its accept loop; the connections it starts
  inherit it (a context variable) and share one task per timer, started
  in that task group when the first connection needs it and ended as soon
  as none is watched. A connection run anywhere else (a caller's own
  accept loop) gets a watchdog of its own, the same code in its own task
  group: hyper-core is runtime-agnostic and anyio has no "spawn outside
  any task group", so a shared task needs a task group that outlives the
  connections.
* A connection that ends drops its reference from its watch at once (the
  dispatcher is freed with it); the empty watch leaves the heap at its next
  due look.
* A look that fails (a bug) is logged and drops that one watch: the task
  never raises, so it never cancels the server's task group.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final, final

import anyio
import anyio.abc

from hyper_core.proto._log import SERVER_LOGGER
from hyper_core.rt import Timer

if TYPE_CHECKING:
    from ._server_io import ServerIO

__all__ = ["WATCHDOG_LOOKS", "Watch", "share_watchdog", "watch"]

#: Looks the timeout watchdog takes per timeout period: the bound on how
#: late it notices an idle period or a stalled write (1/4 of the timeout).
WATCHDOG_LOOKS: Final = 4

_log = logging.getLogger(SERVER_LOGGER)


@final
class _Host:
    """A task group that runs shared watchdogs, and its running one per timer."""

    __slots__ = ("linger", "running", "task_group")

    def __init__(self, task_group: anyio.abc.TaskGroup, linger: bool) -> None:
        self.task_group = task_group
        self.linger = linger  # keep a watchdog with nothing to watch (see share_watchdog)
        self.running: dict[Timer, _Watchdog] = {}


_HOST: ContextVar[_Host | None] = ContextVar("hyper_core_h1_watchdog_host", default=None)


@contextlib.contextmanager
def share_watchdog(task_group: anyio.abc.TaskGroup, *, linger: bool = False) -> Iterator[None]:
    """HTTP/1 server connections started in this context share one timeout watchdog.

    ``header_read_timeout`` and ``send_stall_timeout`` are timed by a
    watchdog task. Without this, each connection runs its own in its own
    task group; inside it, the connections run by tasks started from this
    context (they inherit it) share one task per timer, run in
    ``task_group``, which saves about 4 KiB per connection. The timeouts
    behave the same either way. Enter it around an accept loop's start::

        async with anyio.create_task_group() as tg:
            with http1.share_watchdog(tg):
                tg.start_soon(accept_loop, tg)

    Args:
        task_group: A task group that outlives every such connection (the
            server's own). Once it is no longer active, connections fall
            back to a watchdog of their own.
        linger: Keep the shared task while no connection is watched,
            until ``task_group`` is cancelled, instead of ending it: a
            connection that arrives alone then starts no task. Only for a
            task group its owner cancels when it is done (otherwise the
            task keeps it open).
    """
    token = _HOST.set(_Host(task_group, linger))
    try:
        yield
    finally:
        _HOST.reset(token)


def watch(conn: ServerIO, opened_at: float, own: anyio.abc.TaskGroup) -> Watch:
    """Put ``conn`` under the watchdog of its timeouts; ``close()`` the result when it ends.

    ``conn`` started (went idle) at ``opened_at`` on its timer's clock; its
    cancel scope (``_scope``), what an expiry cancels, must be set. ``own``
    is the connection's task group: it runs a watchdog of the connection's
    own when no shared one is in reach.
    """
    config = conn._config
    timer = config.timer
    host = _HOST.get()
    owner = None if host is None else host.running.get(timer)
    if owner is None:
        owner = _Watchdog(timer, host)
        if not owner.start(own):
            owner = _Watchdog(timer, None)  # the host's task group is over
            owner.start(own)
    header_timeout = config.header_read_timeout
    send_timeout = config.send_stall_timeout
    entry = Watch(
        conn,
        owner,
        min(t for t in (header_timeout, send_timeout) if t is not None) / WATCHDOG_LOOKS,
        # The connection starts idle, at a time read once per connection.
        None if header_timeout is None else _Stopwatch(header_timeout, conn._idle_mark, opened_at),
        None if send_timeout is None else _Stopwatch(send_timeout, 0, None),
    )
    owner.add(entry, timer.now())
    return entry


@final
class Watch:
    """One connection under the watchdog: its stopwatches and the time of its next look."""

    __slots__ = ("conn", "header", "owner", "send", "step", "when")

    def __init__(
        self,
        conn: ServerIO,
        owner: _Watchdog,
        step: float,
        header: _Stopwatch | None,
        send: _Stopwatch | None,
    ) -> None:
        self.conn: ServerIO | None = conn
        self.owner = owner
        self.step = step
        self.header = header
        self.send = send
        self.when = 0.0

    def __lt__(self, other: Watch) -> bool:
        return self.when < other.when

    @property
    def private(self) -> bool:
        """Whether the watchdog's task is the connection's own (in its task group)."""
        return self.owner.host is None

    def close(self) -> None:
        """The connection ended: the watchdog forgets it (idempotent)."""
        if self.conn is not None:
            self.conn = None
            self.owner.forget()

    def look(self, now: float) -> float | None:
        """Look at the connection: when to look next, or None (it ended, or a timeout fired)."""
        conn = self.conn
        if conn is None:
            return None
        wake = now + self.step
        send_mark = conn._send_mark
        for stopwatch, waiting, mark in (
            (self.header, conn._idle, conn._idle_mark),
            (self.send, bool(send_mark & 1), send_mark),  # odd: a write in progress
        ):
            if stopwatch is None:
                continue
            expires = stopwatch.look(waiting, mark, now)
            if expires is None:
                continue
            if now >= expires:
                if stopwatch is self.header:
                    conn._timed_out = True
                else:
                    conn._send_timed_out = True
                scope = conn._scope
                if scope is not None:
                    scope.cancel()
                return None
            wake = min(expires, wake)
        return wake


@final
class _Watchdog:
    """The watches of one timer, and the task that looks at them."""

    __slots__ = ("heap", "host", "kick", "live", "target", "timer")

    def __init__(self, timer: Timer, host: _Host | None) -> None:
        self.timer = timer
        self.host = host  # None: one connection's own watchdog
        self.heap: list[Watch] = []
        self.live = 0  # watches whose connection has not ended
        self.kick: anyio.Event | None = None  # set to make the task look again now
        self.target = math.inf  # when the task wakes next

    def start(self, own: anyio.abc.TaskGroup) -> bool:
        """Start the task in the host's task group, else in ``own``; False if it is over."""
        host = self.host
        task_group = own if host is None else host.task_group
        try:
            task_group.start_soon(self._run, name="hyper_core HTTP/1 timeout watchdog")
        except RuntimeError:  # the task group is no longer active
            return False
        if host is not None:
            host.running[self.timer] = self
        return True

    def add(self, entry: Watch, now: float) -> None:
        # The first look is taken now, as the per-connection task took it.
        wake = entry.look(now)
        self.live += 1
        if wake is None:
            return
        entry.when = wake
        heapq.heappush(self.heap, entry)
        if wake < self.target and self.kick is not None:
            self.kick.set()

    def forget(self) -> None:
        self.live -= 1
        if not self.live and self.kick is not None and not self._lingers():
            self.kick.set()  # nothing left to watch: the task ends now

    def _lingers(self) -> bool:
        host = self.host
        return host is not None and host.linger

    async def _run(self) -> None:
        timer = self.timer
        heap = self.heap
        lingers = self._lingers()
        try:
            while self.live or lingers:
                now = timer.now()
                while heap and heap[0].when <= now:
                    entry = heapq.heappop(heap)
                    try:
                        wake = entry.look(now)
                    except Exception:
                        _log.exception("the HTTP/1 timeout watchdog failed on %r", entry.conn)
                        continue
                    if wake is not None:
                        entry.when = wake
                        heapq.heappush(heap, entry)
                if not self.live and not lingers:
                    break
                # Entries of connections that ended stay in the heap (closing
                # one is O(1)); waking for one would look at nothing, and a
                # server taking short connections would wake once for each.
                while heap and heap[0].conn is None:
                    heapq.heappop(heap)
                self.target = heap[0].when if heap else math.inf
                self.kick = kick = anyio.Event()
                with timer.deadline(self.target):
                    await kick.wait()
                self.kick = None
                self.target = math.inf
        finally:
            host = self.host
            if host is not None and host.running.get(timer) is self:
                del host.running[timer]


@final
class _Stopwatch:
    """Times one kind of wait (idle periods, or writes) from the watchdog's looks."""

    __slots__ = ("mark", "since", "timeout")

    def __init__(self, timeout: float, mark: int, since: float | None) -> None:
        self.timeout = timeout
        self.mark = mark  # the counter of waits when this one was first seen
        self.since = since  # when it was first seen (None: nothing is waited for)

    def look(self, waiting: bool, mark: int, now: float) -> float | None:
        """When the wait in progress expires, or None when nothing is waited for.

        A wait seen for the first time (the counter moved since the last
        look) is timed from now: never earlier than its timeout, at most one
        look's step later.
        """
        if not waiting:
            self.since = None
            return None
        if self.since is None or mark != self.mark:
            self.mark = mark
            self.since = now
        return self.since + self.timeout
