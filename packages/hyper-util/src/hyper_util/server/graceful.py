"""Graceful shutdown of many connections: :class:`GracefulShutdown`.

What belongs here: hyper-util's ``server::graceful``: a registry of the
connections a server runs, a way to ask them all to finish, and the wait for
them to do so, with a deadline after which the rest are closed.

Usage::

    graceful = GracefulShutdown()

    async def handle(stream):
        conn = builder.serve_connection(stream, service)
        await graceful.watch(conn)        # runs the connection

    ...                                   # later, e.g. on SIGTERM:
    clean = await graceful.shutdown(timeout=30)

Strategy: :meth:`GracefulShutdown.watch` wraps a connection (anything with
``graceful_shutdown()`` that is awaited to run: hyper-core's ``http1`` and
``http2`` connections, ``auto`` connections) in a :class:`Watched`
awaitable that runs it inside its own cancel scope and counts it while it
runs. A server that runs each connection in a task of its own can hand the
watch that task's handle (``task=``) and run the connection inside ``with
watched:``: the deadline then cancels the task, and the watch holds no
cancel scope and no coroutine of its own (about 0.9 KB less per idle
connection on asyncio; ``serve()`` does this).
:meth:`GracefulShutdown.shutdown` calls every watched connection's
``graceful_shutdown()`` (HTTP/1: the response in flight completes with
``connection: close``; HTTP/2: GOAWAY, open streams complete; a connection
still idle closes at once) and waits for the count to reach zero. At the
deadline the remaining scopes (or tasks) are cancelled: each connection then closes its
IO as it does on cancellation. A connection watched after the signal is
signalled at once, so nothing slips through.
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, final

import anyio

from hyper_core.rt import Timer, default_timer

__all__ = ["Cancellable", "GracefulConnection", "GracefulShutdown", "Shutdown", "Watched"]


class GracefulConnection(Protocol):
    """What :meth:`GracefulShutdown.watch` accepts: awaited to run, can be asked to stop."""

    def graceful_shutdown(self) -> None:
        """Finish what is in flight, then end."""

    def __await__(self) -> Generator[Any, None, Any]: ...


class Cancellable(Protocol):
    """What runs a watched connection, for :meth:`GracefulShutdown.watch`'s ``task``.

    An :class:`anyio.TaskHandle` is one: ``cancel()`` cancels its task.
    """

    def cancel(self) -> None:
        """Cancel what runs the connection (it then closes its IO)."""


C = TypeVar("C", bound=GracefulConnection)


@final
class Watched(Generic[C]):
    """A watched connection; ``await`` it (once) to run the connection.

    Awaiting returns what awaiting the connection returns, or ``None`` if it
    was closed at the shutdown deadline (then :attr:`cancelled` is true), and
    raises what the connection raises.

    It is also a context manager, for running the connection without a
    coroutine of the watch's own: ``with watched as conn: await conn``
    (once, in the task given as ``task``, if one was). Without ``task``,
    ``with`` enters the watch's cancel scope, which the deadline cancels and
    which swallows that cancellation, as awaiting does.
    """

    __slots__ = ("_cancelled", "_connection", "_owner", "_scope", "_started", "_task")

    def __init__(self, owner: GracefulShutdown, connection: C, task: Cancellable | None) -> None:
        self._owner = owner
        self._connection = connection
        self._task = task
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False
        self._started = False

    @property
    def connection(self) -> C:
        """The connection being watched."""
        return self._connection

    @property
    def cancelled(self) -> bool:
        """Whether the connection was closed at the deadline instead of finishing."""
        return self._cancelled

    def _force_close(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
        elif self._scope is not None:
            self._scope.cancel()

    def __enter__(self) -> C:
        if self._started:
            raise RuntimeError("a watched connection can be run only once")
        self._started = True
        if self._task is None:
            scope = self._scope = anyio.CancelScope()
            scope.__enter__()
            if self._cancelled:
                # Closed at the deadline before it ever ran: still run it
                # into the cancellation, so it closes its IO.
                scope.cancel()
        return self._connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        scope = self._scope
        self._scope = None
        try:
            return scope is not None and bool(scope.__exit__(exc_type, exc, tb))
        finally:
            self._owner._forget(self)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run().__await__()

    async def _run(self) -> Any:
        with self as connection:
            return await connection
        return None  # closed at the deadline: the scope swallowed the cancellation

    def __repr__(self) -> str:
        return f"<Watched {self._connection!r} cancelled={self._cancelled}>"


@final
class GracefulShutdown:
    """Watches connections and shuts them all down gracefully, with a deadline.

    Not tied to a server: use it with any accept loop. One instance serves
    one shutdown; it is not reusable after :meth:`shutdown`.

    Args:
        timer: The clock for ``timeout`` and ``deadline``; default
            :func:`hyper_core.rt.default_timer`.
    """

    __slots__ = ("_idle", "_shutting_down", "_timer", "_watched")

    def __init__(self, *, timer: Timer | None = None) -> None:
        self._timer = timer if timer is not None else default_timer()
        self._watched: set[Watched[Any]] = set()
        self._idle: anyio.Event | None = None
        self._shutting_down = False

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._shutting_down

    def count(self) -> int:
        """The number of watched connections that have not finished."""
        return len(self._watched)

    def watch(self, connection: C, *, task: Cancellable | None = None) -> Watched[C]:
        """Watch ``connection``; await the result (or run it in ``with``) to run it.

        The connection counts as live from this call until the returned
        :class:`Watched` finishes, so it must be run. Watching after
        :meth:`shutdown` signals the connection at once.

        Args:
            connection: The connection.
            task: What runs the connection (the :class:`anyio.TaskHandle`
                of the task that runs the watch), cancelled at the deadline
                instead of a cancel scope of the watch's own.
        """
        watched = Watched(self, connection, task)
        self._watched.add(watched)
        if self._shutting_down:
            connection.graceful_shutdown()
        return watched

    def shutdown(self, *, timeout: float | None = None, deadline: float | None = None) -> Shutdown:
        """Signal every watched connection now; await the result to wait for them.

        Args:
            timeout: Seconds to wait before closing the connections left.
            deadline: The same as a time on the timer's clock (at most one
                of ``timeout`` and ``deadline``). Neither: wait forever.

        Returns:
            An awaitable (see :meth:`wait`); calling without awaiting only
            signals.

        Raises:
            ValueError: Both ``timeout`` and ``deadline`` given.
        """
        at = self._deadline(timeout, deadline)
        if not self._shutting_down:
            self._shutting_down = True
            for watched in list(self._watched):
                watched.connection.graceful_shutdown()
        return Shutdown(self, at)

    async def wait(self, *, timeout: float | None = None, deadline: float | None = None) -> bool:
        """Wait until every watched connection has finished.

        Does not signal them (see :meth:`shutdown`). At the deadline, the
        connections left are cancelled (each closes its IO) and this returns
        once they are gone.

        Args:
            timeout: Seconds to wait before closing the connections left.
            deadline: The same as a time on the timer's clock.

        Returns:
            ``True`` if all finished on their own, ``False`` if some were
            closed at the deadline.

        Raises:
            ValueError: Both ``timeout`` and ``deadline`` given.

        Cancelling the wait leaves the connections running.
        """
        return await self._wait(self._deadline(timeout, deadline))

    async def _wait(self, at: float | None) -> bool:
        if at is not None:
            with self._timer.deadline(at):
                await self._wait_idle()
        else:
            await self._wait_idle()
        if not self._watched:
            return True
        for watched in list(self._watched):
            watched._force_close()
        # The cancelled connections close their IO under a shielded scope;
        # this returns once they did.
        await self._wait_idle()
        return False

    async def _wait_idle(self) -> None:
        while self._watched:
            self._idle = anyio.Event()
            await self._idle.wait()

    def _forget(self, watched: Watched[Any]) -> None:
        self._watched.discard(watched)
        if not self._watched and self._idle is not None:
            self._idle.set()

    def _deadline(self, timeout: float | None, deadline: float | None) -> float | None:
        if timeout is not None and deadline is not None:
            raise ValueError("give timeout or deadline, not both")
        if timeout is not None:
            return self._timer.now() + timeout
        return deadline

    def __repr__(self) -> str:
        return (
            f"<GracefulShutdown watching={len(self._watched)} shutting_down={self._shutting_down}>"
        )


@final
class Shutdown:
    """What :meth:`GracefulShutdown.shutdown` returns; ``await`` it to wait.

    Awaiting returns ``True`` if every connection finished on its own and
    ``False`` if some were closed at the deadline.
    """

    __slots__ = ("_at", "_owner")

    def __init__(self, owner: GracefulShutdown, at: float | None) -> None:
        self._owner = owner
        self._at = at

    def __await__(self) -> Generator[Any, None, bool]:
        return self._owner._wait(self._at).__await__()
