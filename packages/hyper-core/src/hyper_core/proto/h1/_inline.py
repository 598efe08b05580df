"""Calling the service inline, and noticing when it is slow.

What belongs here: :func:`run_inline`, an ``await`` that tells the caller
when the awaited coroutine first suspends, and :class:`DisconnectWatcher`,
the state of one watch of the socket while a slow service runs.

Strategy: the HTTP/1 server serves requests inline in the connection task
(no task per request). A service that answers without waiting costs nothing
extra. Only one that suspends is worth watching for a client that leaves
(the dispatcher then starts a watcher task), and knowing that needs the
first step of the await separated from the rest, which is what
:func:`run_inline` does: it is ``yield from`` spelled out.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

import anyio

__all__ = ["DisconnectWatcher", "resume", "run_inline"]

_T = TypeVar("_T")


@types.coroutine
def run_inline(
    step: Generator[Any, Any, _T], on_suspend: Callable[[], None]
) -> Generator[Any, Any, _T]:
    """Await ``step`` in the calling task, calling ``on_suspend`` if it suspends.

    This is ``await`` spelled out (``yield from`` with the first step
    separated), so a service that answers without waiting costs nothing
    extra, and one that waits can be watched from then on.
    """
    try:
        signal = step.send(None)
    except StopIteration as stop:
        result: _T = stop.value
        return result
    on_suspend()
    return (yield from resume(step, signal))


@types.coroutine
def resume(
    step: Generator[Any, Any, _T] | Coroutine[Any, Any, _T], signal: Any
) -> Generator[Any, Any, _T]:
    """Await the rest of ``step``, whose first step already ran and yielded ``signal``.

    For a caller that ran the first step itself (``step.send(None)``) to
    skip even :func:`run_inline`'s frame when the awaitable answers at once.
    """
    while True:
        try:
            value = yield signal
        except GeneratorExit:
            step.close()
            raise
        except BaseException as exc:
            try:
                signal = step.throw(exc)
            except StopIteration as stop:
                result: _T = stop.value
                return result
        else:
            try:
                signal = step.send(value)
            except StopIteration as stop:
                result = stop.value
                return result


class DisconnectWatcher:
    """One watch of the socket while a slow service runs."""

    __slots__ = ("done", "scope", "stopped")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.stopped = False
