"""The host task of :class:`~hyper_util.asgi.AppRunner` on asyncio (see ``_runner.py``).

What belongs here: :class:`_Host`, the coroutine of a parked task whose
identity a call's first step borrows, and which adopts a call that waits.
Apart from ``_runner.py`` because mypyc compiles that module, and a
compiled class cannot subclass ``Coroutine``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["_Host"]


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
