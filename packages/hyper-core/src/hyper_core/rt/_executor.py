"""The Executor interface and its anyio default.

What belongs here: how hyper-core starts background work (an HTTP/2
connection's per-stream tasks, a client connection's driver), and nothing
else.

Strategy: an executor is anything with ``spawn(fn, *args)``. Spawning never
waits and never returns a handle: the executor owns the task's lifetime, as in
hyper's ``Executor::execute``. The default puts the task in an anyio task
group, which makes the lifetime structured: the task group does not exit
before every spawned task has finished.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVarTuple, Unpack, final

import anyio.abc

__all__ = ["Executor", "TaskGroupExecutor"]

PosArgsT = TypeVarTuple("PosArgsT")


class Executor(Protocol):
    """Something that runs background tasks.

    hyper-core spawns every task through an executor, never directly, so the
    application decides where tasks live (a task group per server, per
    connection, a supervisor that logs failures...).
    """

    def spawn(self, fn: Callable[[Unpack[PosArgsT]], Awaitable[Any]], /, *args: *PosArgsT) -> None:
        """Start ``fn(*args)`` as a new task and return without waiting for it.

        Args:
            fn: An async function (or any callable returning an awaitable).
            *args: Positional arguments for ``fn``.
        """
        ...


async def _await(fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
    # anyio starts only coroutine functions; the Executor contract accepts any
    # callable returning an awaitable, so await it from a coroutine of our own.
    await fn(*args)


@final
class TaskGroupExecutor:
    """The default executor: each task goes into one anyio task group.

    An exception escaping a spawned task cancels the task group, as any
    anyio task failure does; the code that owns the task group decides what
    that means (hyper-core's own tasks catch their expected errors).

    Args:
        task_group: The task group that spawned tasks join. It must stay open
            for as long as anything may spawn through this executor.

    Example::

        async with anyio.create_task_group() as tg:
            executor = TaskGroupExecutor(tg)
            executor.spawn(handle_connection, stream)
    """

    __slots__ = ("_task_group",)

    def __init__(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group

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
        self._task_group.start_soon(_await, fn, args, name=name)

    def __repr__(self) -> str:
        return f"TaskGroupExecutor({self._task_group!r})"
