"""Where ASGI application calls run: in tasks owned by the server.

What belongs here: :class:`AppRunner`, an async context manager that runs
application calls and, when it exits, cancels those still running and waits
for them; and, on asyncio, the host tasks that let a call that does not wait
run without a task of its own.

Strategy: an ASGI app may stream its response from any task and keep
running after the response is complete (background work), so each call
needs a task of its own, concurrent with the connection that writes what it
sends. (Running it inline in the connection's task and handing it over later
would move a coroutine that may have entered cancel scopes, or parked on a
primitive that recorded the connection's task, to another task: anyio and
trio forbid both.)

asyncio: the first step of a call runs at once, inside :meth:`AppRunner.spawn`,
as the task that would run the rest (Python 3.12's ``eager_start`` does the
same). An app that answers without waiting (hello world, a JSON route, an
echo of a body already received) is then done before ``spawn`` returns, so
the service answers without suspending: no wake-up of the connection, no
disconnect watcher. The task it runs as is a *host*: a parked task, kept
idle between calls, whose identity the first step borrows
(``asyncio.current_task()`` is the host while it runs, so cancel scopes,
``asyncio.timeout`` and task groups entered in that step belong to it). A
call that finishes in its first step leaves the host idle for the next
call: no task is created, scheduled or run for it. A call that waits is
adopted by its host: the host's coroutine hands the awaited future to the
task machinery and drives the rest of the call, each step in the call's own
context copy, exactly as a task of its own would. The host then serves only
that call and ends with it; the next call gets a fresh host. Swapping the
current task uses ``asyncio.tasks._enter_task``/``_leave_task``: the
functions ``eager_start`` itself uses, unchanged since Python 3.7 (exit
plan: should they go, ``spawn`` creates ``asyncio.Task(..., eager_start=True)``
per call, as on Python 3.12+, costing one task per call).

trio: no eager start exists, and a suspended trio coroutine is bound to its
task, so each call is a task, started in a trio nursery directly (anyio's
task group costs about three times as much per task on trio).
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

#: Idle host tasks kept (a call spawned inside another call's first step
#: takes a second one; more than a few are never idle at once).
MAX_IDLE_HOSTS: Final = 4

_enter_task: Final = asyncio.tasks._enter_task
_leave_task: Final = asyncio.tasks._leave_task
_copy_context: Final = contextvars.copy_context
# asyncio.current_task is a Python function on 3.11 (C from 3.12): there,
# the lookup it makes (in the dict _enter_task writes) spares a Python call.
_current_task: Final[Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]] = (
    asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
    if sys.version_info < (3, 12)
    else asyncio.current_task
)


class _Host(Coroutine[Any, Any, None]):
    """The coroutine of a host task: parked until it adopts a call, then that call.

    The task machinery drives it like any coroutine. Parked, it waits on
    ``_wake``. :meth:`adopt` gives it a call whose first step waited on
    ``signal``: its next step hands ``signal`` to the task (which waits on it
    as if the call had yielded it to its own task), and every later step is
    the call's, run in the call's context.
    """

    __slots__ = ("_context", "_coro", "_handed", "_signal", "_wake", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake: asyncio.Future[None] = loop.create_future()
        self._coro: Coroutine[Any, Any, Any] | None = None
        self._context: contextvars.Context | None = None
        self._signal: Any = None
        self._handed = False
        self.task: asyncio.Task[None] = loop.create_task(self)

    def adopt(
        self, coro: Coroutine[Any, Any, Any], context: contextvars.Context, signal: Any
    ) -> None:
        """Drive ``coro`` from now on; its first step yielded ``signal``."""
        self._coro = coro
        self._context = context
        self._signal = signal
        if not self._wake.done():
            self._wake.set_result(None)

    def send(self, value: Any) -> Any:
        coro = self._coro
        if coro is None:
            # Parked: wait for an adoption (what ``await self._wake`` yields).
            wake = self._wake
            wake._asyncio_future_blocking = True
            return wake
        assert self._context is not None
        if not self._handed:
            # Woken to adopt: the task now waits on what the call waits on.
            self._handed = True
            signal = self._signal
            self._signal = None
            return signal
        return self._context.run(coro.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        exc = typ if val is None else val
        if isinstance(exc, type):
            exc = exc()
        coro = self._coro
        if coro is None:
            raise exc  # parked and cancelled: the runner is closing, or the host retired
        assert self._context is not None
        if not self._handed:
            # Cancelled between the call's first step and the adoption: do
            # what Task.cancel() does to the future a task waits on.
            self._handed = True
            signal = self._signal
            self._signal = None
            if isinstance(exc, asyncio.CancelledError) and asyncio.isfuture(signal):
                signal.cancel()
        return self._context.run(coro.throw, exc)

    def close(self) -> None:
        coro = self._coro
        if coro is not None and self._context is not None:
            self._context.run(coro.close)

    def __await__(self) -> Generator[Any, None, None]:
        raise TypeError("a host coroutine is run by its task only")


class AppRunner:
    """Runs application calls; exiting cancels and awaits the ones still running."""

    __slots__ = ("_idle", "_loop", "_nursery", "_nursery_cm", "_tasks", "_tg")

    def __init__(self) -> None:
        self._tg: anyio.abc.TaskGroup | None = None
        self._nursery: Any = None  # a trio nursery, on trio
        self._nursery_cm: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle: list[_Host] = []

    @classmethod
    def from_task_group(cls, task_group: anyio.abc.TaskGroup) -> AppRunner:
        """A runner that spawns into a task group the caller owns (and closes)."""
        runner = cls()
        runner._tg = task_group
        return runner

    async def __aenter__(self) -> Self:
        library = sniffio.current_async_library()
        if library == "asyncio":
            self._loop = asyncio.get_running_loop()
        elif library == "trio":
            import trio

            self._nursery_cm = trio.open_nursery()
            self._nursery = await self._nursery_cm.__aenter__()
        else:  # pragma: no cover - anyio has no third backend today
            self._tg = await anyio.create_task_group().__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
            result: bool | None = await self._nursery_cm.__aexit__(exc_type, exc, tb)
            return result
        tg = self._tg
        if tg is not None:
            tg.cancel_scope.cancel()
            return await tg.__aexit__(exc_type, exc, tb)
        self._idle.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)
        return None

    def spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``func(*args)`` as a task of its own; it must handle its own exceptions.

        On asyncio its first step runs before ``spawn`` returns (see the
        module docstring), and a call that does not wait costs no task.
        """
        loop = self._loop
        if loop is None:
            if self._nursery is not None:
                self._nursery.start_soon(func, *args)
            elif self._tg is not None:
                self._tg.start_soon(func, *args)
            else:
                raise RuntimeError("AppRunner is not running (use 'async with')")
            return
        coro = func(*args)
        idle = self._idle
        host = idle.pop() if idle else self._new_host(loop)
        task = host.task
        context = _copy_context()
        current = _current_task(loop)
        if current is not None:
            _leave_task(loop, current)
        _enter_task(loop, task)
        try:
            signal = context.run(coro.send, None)
        except StopIteration:
            signal = _DONE
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # func handles its errors; a stray cancel ends it
            signal = _DONE
        finally:
            _leave_task(loop, task)
            if current is not None:
                _enter_task(loop, current)
        if signal is not _DONE:
            host.adopt(coro, context, signal)
        elif task.cancelling() == 0 and len(idle) < MAX_IDLE_HOSTS:
            idle.append(host)
        else:
            task.cancel()  # its first step cancelled it: retire it (it ends parked)

    def _new_host(self, loop: asyncio.AbstractEventLoop) -> _Host:
        host = _Host(loop)
        self._tasks.add(host.task)
        host.task.add_done_callback(self._tasks.discard)
        return host


#: What ``spawn``'s first step gives back when the call finished in it.
_DONE: Final = object()
