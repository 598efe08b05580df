"""``AnyioExecutor``: hyper-util's executor, tasks in a task group the caller owns.

What belongs here: the executor that hyper-util's servers and clients hand
to hyper-core connections (hyper-util's ``TokioExecutor``), and nothing else.

Strategy: every task goes into the anyio task group given at construction,
so no task outlives the ``async with`` block that owns the group (structured
concurrency, where tokio would detach the task). What a failing task does is
the caller's choice: by default its exception cancels the task group, as any
anyio task failure does; with ``on_error`` the exception is handed to a
callback instead and the other tasks keep running, which is what a server
wants from per-connection tasks (tokio likewise reports a panicking task and
keeps the runtime going).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVarTuple, Unpack, final

import anyio.abc

__all__ = ["AnyioExecutor"]

PosArgsT = TypeVarTuple("PosArgsT")


@final
class AnyioExecutor:
    """Spawns tasks into an anyio task group that the caller owns.

    Satisfies :class:`hyper_core.rt.Executor`.

    Args:
        task_group: The task group that spawned tasks join. It must stay
            open for as long as anything may spawn through this executor.
        on_error: Called with the exception (an ``Exception``, never a
            cancellation) of a spawned task that failed; the other tasks go
            on. ``None`` (the default): the exception propagates and cancels
            the task group.

    Example::

        async with anyio.create_task_group() as tg:
            executor = AnyioExecutor(tg, on_error=log.exception)
            executor.spawn(handle_connection, stream)
    """

    __slots__ = ("_on_error", "_task_group")

    def __init__(
        self,
        task_group: anyio.abc.TaskGroup,
        *,
        on_error: Callable[[Exception], object] | None = None,
    ) -> None:
        self._task_group = task_group
        self._on_error = on_error

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """The task group that spawned tasks join."""
        return self._task_group

    def spawn(self, fn: Callable[[Unpack[PosArgsT]], Awaitable[Any]], /, *args: *PosArgsT) -> None:
        """Start ``fn(*args)`` in the task group and return without waiting.

        Args:
            fn: An async function (or any callable returning an awaitable).
            *args: Positional arguments for ``fn``.

        Raises:
            RuntimeError: The task group is not active (already exited).
        """
        name = getattr(fn, "__qualname__", None) or repr(fn)
        self._task_group.start_soon(self._run, fn, args, name=name)

    async def _run(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        # anyio starts only coroutine functions; the Executor contract accepts
        # any callable returning an awaitable, so await it from our own.
        if self._on_error is None:
            await fn(*args)
            return
        try:
            await fn(*args)
        except Exception as exc:
            self._on_error(exc)

    def __repr__(self) -> str:
        return f"AnyioExecutor({self._task_group!r})"
