"""Calling the service inline, and noticing when it is slow.

What belongs here: :func:`run_inline`, an ``await`` that tells the caller
when the awaited coroutine first suspends, and :class:`SocketReader`,
the state of the task that watches the socket while a slow service runs.

Strategy: the HTTP/1 server serves requests inline in the connection task
(no task per request). A service that answers without waiting costs nothing
extra. Only one that suspends is worth watching for a client that leaves
(the dispatcher then has its reader task watch the socket), and knowing that needs the
first step of the await separated from the rest, which is what
:func:`run_inline` does: it is ``yield from`` spelled out.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

import anyio

__all__ = ["SocketReader", "first_step", "resume", "run_inline"]

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


def first_step(step: Generator[Any, None, object] | Coroutine[Any, Any, object]) -> Any:
    """Run the first step of ``step``: what it yields, or the ``StopIteration`` that ended it.

    For a caller that runs the first step itself (see :func:`resume`) from
    a coroutine that lives long: CPython gives a coroutine's frame an
    object of its own the first time an exception is caught in it, kept as
    long as the coroutine (328 bytes), and the HTTP/1 request loop lives as
    long as its connection. The ``StopIteration`` of a service that
    answered at once is caught here instead, in a frame that ends now.
    """
    try:
        return step.send(None)
    except StopIteration as stop:
        # Without its traceback: a frame object that outlives its frame
        # (held by the traceback) makes its caller's frame object too.
        stop.__traceback__ = None
        return stop


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


class SocketReader:
    """The connection's second reader: reads the socket while a slow service runs.

    Started the first time a service of the connection suspends with its
    request read whole, then kept for the connection's life (no task per
    request): parked between watches, woken by ``wake``. While
    ``watching`` it reads ahead into the codec (bounded by the codec's
    buffer limit) and an end of stream means the client left. A read it
    started stays its own: whoever needs data meanwhile (the request loop,
    a request body) sets ``wanted`` and gets that read's bytes in ``data``,
    so two reads never run on one IO at once.
    """

    __slots__ = ("alive", "data", "done", "scope", "wake", "wanted", "watching")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()  # set when the task ended
        self.alive = True
        self.watching = False  # a service runs: the end of the stream means the client left
        self.wake: anyio.Event | None = None  # set while parked: setting it ends the park
        self.wanted: anyio.Event | None = None  # set by someone waiting for the next read
        self.data: bytes | None = None  # that read's bytes, handed to whoever wanted them
