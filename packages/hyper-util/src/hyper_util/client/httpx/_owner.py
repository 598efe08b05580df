"""Who owns the pooled client behind an httpx transport: a task of its own.

What belongs here: :class:`ClientOwner`, which starts the pooled
:class:`~hyper_util.client.legacy.Client` on the event loop of the first
request, in a task that holds its ``async with`` open, and closes it.

Why a task of its own: the pooled client's connections are driven by tasks
in a task group, and a task group must be entered and left by one task. An
httpx transport is entered (if at all) by ``AsyncClient.__aenter__``, but
just as often used without ``async with`` and closed by whichever task
calls ``aclose()``; a request's task cannot own it either, since it ends
with its request. So the client lives in an owner task, spawned with the
running library's own primitive (``loop.create_task`` on asyncio and
uvloop, ``trio.lowlevel.spawn_system_task`` on trio: anyio has no portable
"spawn outside any task group"), and every request uses it from its own
task.

Lifetime rules:

1. ``aclose()`` asks the owner to leave its ``async with`` and waits until
   every connection is closed. Afterwards the transport refuses requests.
2. When the event loop ends first (``asyncio.run`` returns, a trio run
   finishes), the loop cancels the owner, which closes the client on its
   way out. A later request on another loop (a new ``asyncio.run``, a test
   framework's fresh loop) then starts a new owner there; a request from a
   second loop while the first still runs is refused, since the pool's
   connections belong to the first.
3. A transport dropped without ``aclose()`` is closed when garbage
   collected: a finalizer asks the owner to stop, through the loop's
   thread-safe entry point.
4. In a child made by ``os.fork()`` the parent's loop and connections do
   not run: every owner forgets them (without touching them: the sockets
   are the parent's), and the child's first request starts a new client.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import Any, Final, final

import anyio

from hyper_util.client.legacy import Client
from hyper_util.rt import current_library

__all__ = ["ClientOwner", "current_loop"]

_CLOSED: Final = "the transport is closed"

#: Every owner alive, so that a forked child can forget its parent's loops.
_OWNERS: Final[weakref.WeakSet[ClientOwner]] = weakref.WeakSet()
#: A forked child's copies of its parent's owner tasks (see ``forget``).
_ABANDONED: Final[list[object]] = []


def current_loop() -> object:
    """The running event loop (asyncio, uvloop) or trio run, as an identity to compare.

    Raises:
        RuntimeError: No asyncio loop or trio run in this thread.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    if current_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    raise RuntimeError("the hyper httpx transport needs a running asyncio or trio event loop")


def _loop_gone(loop: object) -> bool:
    """Whether ``loop`` can run nothing any more (an asyncio loop that was closed)."""
    return isinstance(loop, asyncio.AbstractEventLoop) and loop.is_closed()


@final
class _Run:
    """One owner task's state; shared with the task, never with the transport."""

    __slots__ = ("client", "done", "error", "finished", "loop", "ready", "stop", "task")

    def __init__(self, loop: object) -> None:
        self.loop = loop
        self.client: Client | None = None
        self.error: BaseException | None = None
        self.ready = anyio.Event()
        self.stop = anyio.Event()
        self.done = anyio.Event()
        self.finished = False  # plain flag: read from other threads and loops
        self.task: Any = None  # asyncio keeps only weak references to tasks


async def _own(run: _Run, make_client: Callable[[], Client]) -> None:
    """The owner task: hold the client open until asked to stop, or cancelled."""
    try:
        async with make_client() as client:
            run.client = client
            run.ready.set()
            await run.stop.wait()
    except Exception as exc:
        # Reported to the request waiting for the start; an owner task must
        # not raise (asyncio would log it, trio would crash the run).
        run.error = exc
    finally:
        run.client = None
        run.finished = True
        run.ready.set()
        run.done.set()


def _stop_soon(run: _Run) -> None:
    """Ask ``run``'s owner to stop, from any thread (a finalizer, another loop)."""
    if run.finished:
        return
    loop = run.loop
    try:
        if isinstance(loop, asyncio.AbstractEventLoop):
            if not loop.is_closed():
                loop.call_soon_threadsafe(run.stop.set)
        else:
            loop.run_sync_soon(run.stop.set)  # type: ignore[attr-defined]
    except RuntimeError:  # the loop closed meanwhile (trio: RunFinishedError)
        pass


@final
class ClientOwner:
    """Starts, hands out and closes the pooled client of one transport.

    Args:
        make_client: Builds the (not yet entered) client; called once per
            event loop the transport serves.
    """

    __slots__ = ("__weakref__", "_closed", "_finalizer", "_make_client", "_run")

    def __init__(self, make_client: Callable[[], Client]) -> None:
        self._make_client = make_client
        self._run: _Run | None = None
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None
        _OWNERS.add(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    async def client(self) -> Client:
        """The client for the running loop, started on first use.

        Raises:
            RuntimeError: The transport is closed, or its client runs on
                another event loop that is still running.
        """
        run = self._run
        if run is not None:
            client = run.client
            if client is not None and run.loop is current_loop():
                return client
        return await self._start()

    async def _start(self) -> Client:
        if self._closed:
            raise RuntimeError(_CLOSED)
        loop = current_loop()
        run = self._run
        if run is not None and not run.finished:
            if run.loop is not loop:
                if not _loop_gone(run.loop):
                    raise RuntimeError(
                        "this transport's connections belong to another event loop that is "
                        "still running: use one transport per event loop"
                    )
                run = None  # its loop closed without ending it: abandon it
            else:
                await run.ready.wait()  # another request is starting it
        if run is None or run.finished:
            run = self._spawn(loop)
            await run.ready.wait()
        if run.client is None:
            if run.error is not None:
                raise RuntimeError("the transport's client failed to start") from run.error
            raise RuntimeError(_CLOSED)
        return run.client

    def _spawn(self, loop: object) -> _Run:
        run = _Run(loop)
        self._run = run
        if isinstance(loop, asyncio.AbstractEventLoop):
            run.task = loop.create_task(
                _own(run, self._make_client), name="hyper_util httpx transport client"
            )
        else:
            import trio

            trio.lowlevel.spawn_system_task(
                _own, run, self._make_client, name="hyper_util httpx transport client"
            )
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop_soon, run)
        return run

    async def aclose(self) -> None:
        """Close the client and its connections; requests are refused afterwards.

        From another event loop than the client's, the close is only asked
        for (it completes on that loop). Idempotent.
        """
        self._closed = True
        run = self._run
        if run is None or run.finished:
            return
        try:
            same_loop = run.loop is current_loop()
        except RuntimeError:
            same_loop = False
        if not same_loop:
            _stop_soon(run)
            return
        run.stop.set()
        with anyio.CancelScope(shield=True):
            await run.done.wait()

    def close_from_thread(self) -> None:
        """Ask the client to close, from outside its loop (does not wait)."""
        self._closed = True
        run = self._run
        if run is not None:
            _stop_soon(run)

    def forget(self) -> None:
        """Drop the running client without closing it (a forked child's view of it)."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._run is not None:
            # Kept, never collected: a pending task of a loop that does not
            # run here would complain when destroyed.
            _ABANDONED.append(self._run)
        self._run = None


def _forget_all_after_fork() -> None:
    for owner in list(_OWNERS):
        owner.forget()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_all_after_fork)
