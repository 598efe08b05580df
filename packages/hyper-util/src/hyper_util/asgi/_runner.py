"""Where ASGI application calls run: one task each, owned by the server.

What belongs here: :class:`AppRunner`, an async context manager that spawns
the application tasks and, when it exits, cancels those still running and
waits for them.

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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import sniffio

__all__ = ["AppRunner"]


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
        """Run ``func(*args)`` in a new task; it must handle its own exceptions."""
        loop = self._loop
        if loop is not None:
            task: asyncio.Task[Any] = loop.create_task(func(*args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if self._tg is None:
            raise RuntimeError("AppRunner is not running (use 'async with')")
        self._tg.start_soon(func, *args)
