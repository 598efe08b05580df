"""Where ASGI application calls run: one task each, owned by the server.

What belongs here: :class:`AppRunner`, an async context manager that spawns
the application tasks and, when it exits, cancels those still running and
waits for them; and the eager start of those tasks on asyncio.

Strategy: an ASGI app may stream its response from any task and keep
running after the response is complete (background work), so each call runs
in a task of its own, concurrent with the connection that writes what it
sends. (Running it inline in the connection's task and handing it over later
would move a coroutine that may have entered cancel scopes to another task,
which anyio forbids.) On asyncio a task is made with ``loop.create_task``
directly: anyio's task group costs about five times as much per task, a
large share of a small request. Those tasks are tracked in a set and
cancelled and awaited at exit, so nothing outlives the server. Elsewhere
(trio) the calls go to an anyio task group.

Eager start (asyncio): a task's first step runs at once, inside ``spawn``,
as Python 3.12's ``eager_start`` does. An app that answers without waiting
(hello world, a JSON route, an echo of a body already received) is then done
before ``spawn`` returns: the service answers without suspending, so the
request costs no wake-up of the connection and no watcher task. On 3.12+
this is ``asyncio.Task(..., eager_start=True)``; on 3.11 the same steps
are done here with ``asyncio.tasks._enter_task``/``_leave_task`` (the
functions 3.12's eager start uses; they exist unchanged since 3.7). Exit
plan: the shim goes when Python 3.11 support does.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.abc
import sniffio

__all__ = ["AppRunner"]

_EAGER_TASKS: Final = sys.version_info >= (3, 12)
_PENDING: Final = object()
_FINISHED: Final = object()


class _StartedCoroutine(Coroutine[Any, Any, Any]):
    """A coroutine whose first step ran before its task did (eager start on 3.11).

    The task's own first step gets what that step produced (the future it
    waits on, or its end); from then on this is the coroutine itself.
    """

    __slots__ = ("_coro", "_first", "_outcome")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._first: object = _PENDING
        self._outcome: Any = None

    def first_step(self) -> bool:
        """Run the first step now; True if the coroutine finished."""
        try:
            self._first = self._coro.send(None)
        except StopIteration as stop:
            self._first = _FINISHED
            self._outcome = stop.value
            return True
        return False

    def send(self, value: Any) -> Any:
        first = self._first
        if first is not _PENDING:
            self._first = _PENDING
            if first is _FINISHED:
                raise StopIteration(self._outcome)
            return first
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        first = self._first
        if first is not _PENDING:
            self._first = _PENDING
            if first is _FINISHED:
                raise StopIteration(self._outcome)  # done already: nothing to cancel
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError("a started coroutine is run by its task only")


def _spawn_eager(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
) -> asyncio.Task[Any]:
    context = contextvars.copy_context()
    if _EAGER_TASKS:
        return asyncio.Task(coro, loop=loop, context=context, eager_start=True)  # type: ignore[call-arg,unused-ignore]
    started = _StartedCoroutine(coro)
    task = loop.create_task(started, context=context)
    current = asyncio.current_task(loop)
    if current is not None:
        asyncio.tasks._leave_task(loop, current)
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(started.first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)
        if current is not None:
            asyncio.tasks._enter_task(loop, current)
    return task


class AppRunner:
    """Spawns application tasks; exiting cancels and awaits the ones still running."""

    __slots__ = ("_loop", "_tasks", "_tg")

    def __init__(self) -> None:
        self._tg: anyio.abc.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_task_group(cls, task_group: anyio.abc.TaskGroup) -> AppRunner:
        """A runner that spawns into a task group the caller owns (and closes)."""
        runner = cls()
        runner._tg = task_group
        return runner

    async def __aenter__(self) -> Self:
        if sniffio.current_async_library() == "asyncio":
            self._loop = asyncio.get_running_loop()
        else:
            self._tg = await anyio.create_task_group().__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        if tg is not None:
            tg.cancel_scope.cancel()
            return await tg.__aexit__(exc_type, exc, tb)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)
        return None

    def spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``func(*args)`` in a new task; it must handle its own exceptions.

        On asyncio the task starts eagerly: its first step runs before
        ``spawn`` returns (see the module docstring).
        """
        loop = self._loop
        if loop is not None:
            task = _spawn_eager(loop, func(*args))
            if not task.done():
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return
        if self._tg is None:
            raise RuntimeError("AppRunner is not running (use 'async with')")
        self._tg.start_soon(func, *args)
