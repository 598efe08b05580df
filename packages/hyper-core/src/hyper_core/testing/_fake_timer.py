"""FakeTimer: a Timer whose clock moves only when a test says so.

What belongs here: the fake clock, its sleepers and its deadline scopes.

Strategy: the clock is a float that starts at ``start`` and changes only in
:meth:`FakeTimer.advance` (or, in autojump mode, in a helper task). Sleepers
wait on an ``anyio.Event`` registered in a heap keyed by wake time; deadline
scopes are plain anyio cancel scopes with no deadline of their own, which the
timer cancels when its clock passes their fake deadline. Because everything
is driven by events and explicit ``cancel()`` calls, a test that waits 30
fake seconds takes no wall time, on any backend.

Autojump mode (``FakeTimer(autojump=True)``, used inside ``async with``)
runs one helper task that waits until every task is blocked
(``anyio.wait_all_tasks_blocked()``) and then jumps the clock to the next
wake time or deadline: the program behaves as if time flew by while it was
idle. With nothing scheduled, the helper sleeps on an event instead of
polling. On asyncio, anyio polls for "all blocked" every 0.1 s of wall time,
so a jump there costs up to that much; on trio it is immediate.
"""

from __future__ import annotations

import heapq
import itertools
import math
from types import TracebackType
from typing import Self, final

import anyio
import anyio.abc

from hyper_core.error import UserError
from hyper_core.rt import Deadline

__all__ = ["FakeTimer"]


@final
class _FakeDeadline:
    """A deadline scope on a :class:`FakeTimer`'s clock."""

    __slots__ = ("_at", "_fired", "_scope", "_timer")

    def __init__(self, timer: FakeTimer, at: float) -> None:
        self._timer = timer
        self._at = at
        self._fired = False
        self._scope: anyio.CancelScope | None = None

    @property
    def deadline(self) -> float:
        return self._at

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._at = value
        if self._scope is not None and self in self._timer._deadlines:
            self._timer._deadline_moved(self)

    @property
    def expired(self) -> bool:
        # The scope is never exposed and only the timer cancels it.
        return self._scope is not None and self._scope.cancelled_caught

    def _fire(self) -> None:
        assert self._scope is not None
        self._fired = True
        self._scope.cancel()

    def __enter__(self) -> Self:
        if self._scope is not None:
            raise RuntimeError("a Deadline guards a single 'with' block")
        self._timer._check_running()
        self._scope = anyio.CancelScope()
        self._scope.__enter__()
        self._timer._deadlines.add(self)
        self._timer._deadline_moved(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> bool:
        assert self._scope is not None
        self._timer._deadlines.discard(self)
        return self._scope.__exit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        return f"<FakeDeadline at={self._at!r} expired={self.expired}>"


@final
class FakeTimer:
    """A deterministic :class:`~hyper_core.rt.Timer` for tests.

    Time stands still until :meth:`advance` moves it, or, with
    ``autojump=True``, until every task is blocked, when it jumps to the next
    thing scheduled. Sleeps end and deadline scopes fire as the clock passes
    them, at once in wall time.

    Args:
        start: The clock's first reading, in seconds.
        autojump: Jump the clock forward whenever every task is blocked. The
            timer must then be entered with ``async with`` (which runs the
            helper task that does the jumping).

    Example::

        timer = FakeTimer()
        with timer.deadline(timer.now() + 30) as d:
            ...  # another task calls timer.advance(30)
        assert d.expired

        async with FakeTimer(autojump=True) as timer:
            await timer.sleep(3600)  # returns at once; timer.now() == 3600
    """

    __slots__ = (
        "_autojump",
        "_changed",
        "_deadlines",
        "_made",
        "_now",
        "_seq",
        "_sleepers",
        "_task_group",
        "_waiting",
    )

    def __init__(self, *, start: float = 0.0, autojump: bool = False) -> None:
        self._now = float(start)
        self._autojump = autojump
        # Sleepers: a heap of (wake time, sequence number); the events live in
        # a dict so a cancelled sleeper just disappears from it and its heap
        # entry is skipped when popped.
        self._sleepers: list[tuple[float, int]] = []
        self._waiting: dict[int, anyio.Event] = {}
        self._seq = itertools.count()
        self._deadlines: set[_FakeDeadline] = set()
        self._made = 0
        self._changed: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    @property
    def autojump(self) -> bool:
        """Whether the clock jumps on its own when every task is blocked."""
        return self._autojump

    def now(self) -> float:
        """Return the fake clock's reading, in seconds."""
        return self._now

    async def sleep(self, seconds: float, /) -> None:
        """Sleep until the fake clock has moved ``seconds`` forward.

        Raises:
            UserError: An autojump timer used outside its ``async with`` block.

        Cancel safety: cancelling the sleep has no effect beyond ending it.
        """
        await self.sleep_until(self._now + seconds)

    async def sleep_until(self, deadline: float, /) -> None:
        """Sleep until the fake clock reaches ``deadline``.

        Raises:
            UserError: An autojump timer used outside its ``async with`` block.

        Cancel safety: cancelling the sleep has no effect beyond ending it.
        """
        self._check_running()
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        seq = next(self._seq)
        event = anyio.Event()
        self._waiting[seq] = event
        heapq.heappush(self._sleepers, (deadline, seq))
        self._notify()
        try:
            await event.wait()
        finally:
            self._waiting.pop(seq, None)

    def deadline(self, at: float, /) -> Deadline:
        """Return a deadline scope that fires when the fake clock reaches ``at``."""
        self._made += 1
        return _FakeDeadline(self, at)

    @property
    def deadlines_made(self) -> int:
        """How many deadline scopes this timer has made (a test of how often code arms one)."""
        return self._made

    def next_deadline(self) -> float:
        """Return the earliest pending wake time or deadline (``math.inf``: none)."""
        heap = self._sleepers
        while heap and heap[0][1] not in self._waiting:
            heapq.heappop(heap)
        earliest = heap[0][0] if heap else math.inf
        for scope in self._deadlines:
            if scope._at < earliest and not scope._fired:
                earliest = scope._at
        return earliest

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` and fire what is now due.

        Due sleepers are woken and due deadline scopes cancelled; the woken
        tasks run at the caller's next checkpoint.

        Args:
            seconds: How far to move, in seconds (0 or more).

        Raises:
            ValueError: ``seconds`` is negative (time never goes back).
        """
        if seconds < 0:
            raise ValueError(f"time only moves forward; cannot advance by {seconds}")
        self._jump_to(self._now + seconds)

    def _jump_to(self, when: float) -> None:
        self._now = max(self._now, when)
        heap = self._sleepers
        while heap and heap[0][0] <= self._now:
            _, seq = heapq.heappop(heap)
            event = self._waiting.pop(seq, None)
            if event is not None:
                event.set()
        for scope in [s for s in self._deadlines if s._at <= self._now and not s._fired]:
            scope._fire()

    def _deadline_moved(self, scope: _FakeDeadline) -> None:
        if scope._fired:
            return
        if scope._at <= self._now:
            scope._fire()
        else:
            self._notify()

    def _check_running(self) -> None:
        if self._autojump and self._task_group is None:
            raise UserError("FakeTimer(autojump=True) is used outside its 'async with' block")

    def _notify(self) -> None:
        # Wakes the autojump helper when something new is scheduled.
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _autojump_loop(self) -> None:
        while True:
            if self.next_deadline() == math.inf:
                self._changed = anyio.Event()
                await self._changed.wait()
                continue
            await anyio.wait_all_tasks_blocked()
            # Everything is idle: whatever is scheduled next is the only
            # thing that can make progress, so let its time come now.
            nearest = self.next_deadline()
            if nearest != math.inf:
                self._jump_to(nearest)

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("this FakeTimer is already entered")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        if self._autojump:
            task_group.start_soon(self._autojump_loop, name="FakeTimer autojump")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task_group = self._task_group
        assert task_group is not None
        task_group.cancel_scope.cancel()
        try:
            # The block's own exception is not handed to the task group: it
            # would come out wrapped in an ExceptionGroup. The block is over,
            # so this is a plain "stop the helper and wait for it"; returning
            # None lets the block's exception, if any, propagate unchanged.
            await task_group.__aexit__(None, None, None)
        finally:
            self._task_group = None

    def __repr__(self) -> str:
        return f"<FakeTimer now={self._now!r} autojump={self._autojump}>"
