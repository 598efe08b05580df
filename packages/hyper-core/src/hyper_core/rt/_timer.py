"""The Timer and Deadline interfaces and their anyio default.

What belongs here: every way hyper-core reads the clock, sleeps, or bounds an
operation in time.

Strategy: hyper-core never calls ``anyio.sleep`` or opens a timed cancel scope
itself; it asks a :class:`Timer`. The default, :class:`AnyioTimer`, is on
unless replaced, so a timeout is never silently off for want of a timer (a
hyper pain point: there, header and idle timeouts do nothing until a timer is
configured). Tests swap in :class:`hyper_core.testing.FakeTimer`, whose clock
moves only when told, which makes timeout tests instant and deterministic.

A :class:`Deadline` is a ``move_on_at`` scope whose deadline can be moved
while it is active. Connections keep one around a read and push it out each
time the connection becomes idle again, instead of opening a new scope per
read::

    with timer.deadline(timer.now() + 30) as d:
        data = await io.receive()
    if d.expired:
        ...  # nothing arrived within 30 seconds
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, final

import anyio

__all__ = ["AnyioTimer", "Deadline", "Timer", "default_timer"]


class Deadline(Protocol):
    """A cancel scope that cancels its block when a movable deadline passes.

    Entering it starts the clock; leaving it swallows its own cancellation
    (``move_on`` semantics), so code after the ``with`` block checks
    :attr:`expired` to learn whether the block was cut short. A cancellation
    from an outer scope is never swallowed. Each object guards one ``with``
    block; make a new one for the next block.
    """

    @property
    def deadline(self) -> float:
        """The time, on the timer's clock (seconds), when the block is cancelled.

        ``math.inf`` means never. Setting it while the block runs moves the
        deadline; a value already in the past cancels the block at its next
        checkpoint. Once the deadline has fired, moving it does not undo the
        cancellation.
        """
        ...

    @deadline.setter
    def deadline(self, value: float) -> None: ...

    @property
    def expired(self) -> bool:
        """True if the deadline cancelled the block (read it after the block)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> bool: ...


class Timer(Protocol):
    """A clock, sleeps, and deadlines: every use of time in hyper-core.

    All values are seconds, as floats, on the timer's own clock, which need
    not be wall time (the fake timer starts at 0).
    """

    def now(self) -> float:
        """Return the current time on this timer's clock, in seconds."""
        ...

    async def sleep(self, seconds: float, /) -> None:
        """Sleep for ``seconds`` (0 or less: only a checkpoint).

        Cancel safety: cancelling the sleep has no effect beyond ending it.
        """
        ...

    async def sleep_until(self, deadline: float, /) -> None:
        """Sleep until the clock reaches ``deadline`` (already past: a checkpoint).

        Cancel safety: cancelling the sleep has no effect beyond ending it.
        """
        ...

    def deadline(self, at: float, /) -> Deadline:
        """Return a :class:`Deadline` scope that fires at ``at`` (``math.inf``: never)."""
        ...


@final
class _AnyioDeadline:
    """An anyio cancel scope behind the :class:`Deadline` interface."""

    __slots__ = ("_at", "_scope")

    def __init__(self, at: float) -> None:
        self._at = at
        # Made on entry, not here: a scope needs a running event loop, and a
        # deadline object may be made before one (for example in a Builder).
        self._scope: anyio.CancelScope | None = None

    @property
    def deadline(self) -> float:
        return self._at

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._at = value
        if self._scope is not None:
            self._scope.deadline = value

    @property
    def expired(self) -> bool:
        # Only the deadline ever cancels this scope (it is never exposed), so
        # "caught its own cancellation" means "the deadline fired".
        return self._scope is not None and self._scope.cancelled_caught

    def __enter__(self) -> Self:
        if self._scope is not None:
            raise RuntimeError("a Deadline guards a single 'with' block")
        self._scope = anyio.CancelScope(deadline=self._at)
        self._scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> bool:
        assert self._scope is not None
        return self._scope.__exit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        return f"<Deadline at={self._at!r} expired={self.expired}>"


@final
class AnyioTimer:
    """The default timer: the event loop's clock, ``anyio.sleep`` and cancel scopes.

    It works on every backend anyio supports and holds no state, so one
    instance (:func:`default_timer`) serves everyone.
    """

    __slots__ = ()

    def now(self) -> float:
        """Return the event loop's clock (``anyio.current_time()``), in seconds."""
        return anyio.current_time()

    async def sleep(self, seconds: float, /) -> None:
        """Sleep for ``seconds`` with ``anyio.sleep`` (0 or less: only a checkpoint).

        Cancel safety: cancelling the sleep has no effect beyond ending it.
        """
        # anyio rejects a negative delay; the Timer contract treats it as 0,
        # as a deadline computed from a clock reading may already be past.
        await anyio.sleep(seconds if seconds > 0 else 0)

    async def sleep_until(self, deadline: float, /) -> None:
        """Sleep until the event loop's clock reaches ``deadline``.

        Cancel safety: cancelling the sleep has no effect beyond ending it.
        """
        await anyio.sleep_until(deadline)

    def deadline(self, at: float, /) -> Deadline:
        """Return a resettable ``move_on_at`` scope that fires at ``at``."""
        return _AnyioDeadline(at)

    def __repr__(self) -> str:
        return "AnyioTimer()"


_DEFAULT_TIMER = AnyioTimer()


def default_timer() -> AnyioTimer:
    """Return the timer hyper-core uses when none is given: a shared :class:`AnyioTimer`."""
    return _DEFAULT_TIMER
