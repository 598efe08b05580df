"""Listeners that hand out the right stream for the running event loop.

What belongs here: :class:`AsyncioSocketListener` (accepts connections as
:class:`~hyper_util.rt.AsyncioSocketStream`), :class:`TrioSocketListener`
(as :class:`~hyper_util.rt.TrioSocketStream`), and :class:`StreamListener`,
the one listener type the constructors in :mod:`hyper_util.rt` return,
whichever path they chose.

Strategy: sockets are made and owned by anyio's listeners (dual-stack
binding, ``SO_REUSEADDR``, ``reuse_port``, Unix socket modes are anyio's
business). On the fast paths the listeners only replace ``accept``: wait
until the listening socket is readable, take the connection with a
non-blocking ``accept()``, then make the loop's stream of it (on asyncio a
transport with hyper-util's protocol, shielded from cancellation; on trio
with no checkpoint at all), so that a connection taken from the kernel is
never dropped unread. Nothing is
accepted unless someone is in ``accept`` (or ``serve``), so a server that
stops calling it pushes back on its clients through the kernel's backlog.
:class:`StreamListener` combines the listeners of every bound address, as
anyio's ``MultiListener`` does, and adds ``accept`` across all of them.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, final

import anyio
import anyio.abc
import anyio.lowlevel

from ._asyncio_stream import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_READ_HIGH_WATER,
    DEFAULT_WRITE_HIGH_WATER,
    AsyncioSocketStream,
    wrap_asyncio_socket,
)

__all__ = ["AsyncioSocketListener", "StreamListener", "TrioSocketListener"]


class _FastListener(anyio.abc.SocketListener):
    """Accepts connections on an anyio listener's socket with a non-blocking ``accept()``.

    Subclasses make the stream of each accepted socket (:meth:`_stream`).
    The wrapped listener keeps owning the socket; closing this listener
    closes it.
    """

    def __init__(self, listener: anyio.abc.SocketListener) -> None:
        self._inner = listener
        self._sock: socket.socket = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        self._scope: anyio.CancelScope | None = None
        self._closed = False

    async def _stream(self, client: socket.socket) -> anyio.abc.SocketStream:
        raise NotImplementedError

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    async def accept(self) -> anyio.abc.SocketStream:
        """Wait for a connection and return it as a stream.

        Raises:
            anyio.ClosedResourceError: The listener was closed (also while waiting).
            anyio.BusyResourceError: Another task is already in ``accept``.
            OSError: The system refused to accept (for example too many open files).

        Cancel safety: a cancelled ``accept`` has accepted nothing. A
        connection taken from the kernel is always returned: a cancel that
        arrives while its stream is being made takes effect at the caller's
        next checkpoint.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._scope is not None:
            raise anyio.BusyResourceError("accepting connections from")
        sock = self._sock
        # Already cancelled: take nothing from the kernel's queue.
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            # A connection already queued (a burst, a busy server) is taken
            # without a wait, so without the cancel scope a wait needs.
            client, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            client = await self._wait_and_accept(sock)
        return await self._stream(client)

    async def _wait_and_accept(self, sock: socket.socket) -> socket.socket:
        client: socket.socket | None = None
        with anyio.CancelScope() as self._scope:
            try:
                # Wait until a connection is there, then take it at once:
                # cancelled while waiting, nothing was accepted. (A cancelled
                # loop.sock_accept() could have accepted a connection already,
                # and drop it: the client saw a reset, most often when a
                # server stopping gracefully cancels its accept as a
                # connection arrives.)
                while True:
                    await anyio.wait_readable(sock)
                    try:
                        client, _ = sock.accept()
                        break
                    except (BlockingIOError, InterruptedError):
                        continue
            except anyio.get_cancelled_exc_class():
                if self._closed:
                    raise anyio.ClosedResourceError from None
                raise
            finally:
                self._scope = None
        if client is None:  # only aclose() cancels this scope
            raise anyio.ClosedResourceError
        return client

    async def aclose(self) -> None:
        """Stop accepting and close the socket; a waiting ``accept`` gets ClosedResourceError."""
        if self._closed:
            return
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
            # Let the cancelled accept unwind before the socket goes away.
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()
        await self._inner.aclose()


@final
class AsyncioSocketListener(_FastListener):
    """Accepts connections on an anyio listener's socket as :class:`AsyncioSocketStream`.

    Works only under asyncio. The wrapped listener keeps owning the socket;
    closing this listener closes it.

    Args:
        listener: An anyio socket listener (TCP or Unix) made on asyncio.
        read_high_water: Passed to each stream (bytes).
        write_high_water: Passed to each stream (bytes).
        close_timeout: Passed to each stream (seconds).
    """

    def __init__(
        self,
        listener: anyio.abc.SocketListener,
        *,
        read_high_water: int = DEFAULT_READ_HIGH_WATER,
        write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        super().__init__(listener)
        self._options = (read_high_water, write_high_water, close_timeout)

    async def accept(self) -> AsyncioSocketStream:
        """Wait for a connection and return it as an :class:`AsyncioSocketStream`.

        Raises and cancel safety: as :meth:`StreamListener.accept` with one socket.
        """
        stream = await super().accept()
        assert isinstance(stream, AsyncioSocketStream)
        return stream

    async def _stream(self, client: socket.socket) -> AsyncioSocketStream:
        read_high, write_high, close_timeout = self._options
        # Taken from the kernel, the connection is ours to hand out: making
        # its transport takes a loop iteration, and a cancel landing there
        # would close the socket with the client's request unread (a reset).
        # The cancel is seen at the caller's next checkpoint instead.
        with anyio.CancelScope(shield=True):
            stream = await wrap_asyncio_socket(
                client,
                read_high_water=read_high,
                write_high_water=write_high,
                close_timeout=close_timeout,
            )
        return stream


@final
class TrioSocketListener(_FastListener):
    """Accepts connections on an anyio listener's socket as :class:`TrioSocketStream`.

    Works only under trio. The wrapped listener keeps owning the socket;
    closing this listener closes it.

    Args:
        listener: An anyio socket listener (TCP or Unix) made on trio.
        close_timeout: Passed to each stream (seconds).
    """

    def __init__(
        self, listener: anyio.abc.SocketListener, *, close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    ) -> None:
        super().__init__(listener)
        self._close_timeout = close_timeout

    async def _stream(self, client: socket.socket) -> anyio.abc.SocketStream:
        from ._trio_stream import wrap_trio_socket  # trio is an optional dependency

        # No checkpoint in between: the accepted connection is always returned.
        return wrap_trio_socket(client, close_timeout=self._close_timeout)


@final
class StreamListener(anyio.abc.Listener[anyio.abc.SocketStream]):
    """Listens on one or more sockets; hands out streams for the running loop.

    Made by :func:`~hyper_util.rt.create_tcp_listener`,
    :func:`~hyper_util.rt.create_unix_listener` and
    :func:`~hyper_util.rt.wrap_socket_listener`. Each stream it gives is an
    ``anyio.abc.SocketStream`` (an :class:`AsyncioSocketStream` on the fast
    path), so a :class:`hyper_core.rt.IO` with socket extra attributes. The
    listener itself answers ``extra(SocketAttribute.local_address)`` and
    ``extra(SocketAttribute.local_port)`` (from its last socket when there
    are several, as anyio's ``MultiListener``).

    Use it as ``async with`` to close it.

    Args:
        listeners: One anyio socket listener per bound socket.
        fast: Whether the listeners are asyncio fast-path listeners
            (informational: see :attr:`fast`).
    """

    def __init__(self, listeners: Sequence[anyio.abc.SocketListener], *, fast: bool) -> None:
        if not listeners:
            raise ValueError("a StreamListener needs at least one listener")
        self._listeners = tuple(listeners)
        self._fast = fast
        # Connections accepted by racing listeners and not yet handed out.
        self._ready: deque[anyio.abc.SocketStream] = deque()
        self._closed = False

    @property
    def listeners(self) -> tuple[anyio.abc.SocketListener, ...]:
        """The listener of each bound socket."""
        return self._listeners

    @property
    def fast(self) -> bool:
        """True if connections come as :class:`AsyncioSocketStream` (the fast path)."""
        return self._fast

    async def accept(self) -> anyio.abc.SocketStream:
        """Wait for a connection on any of the sockets and return it.

        Raises:
            anyio.ClosedResourceError: The listener was closed.
            anyio.BusyResourceError: Another task is already in ``accept``.
            OSError: The system refused to accept.

        Cancel safety: with one socket, a cancelled ``accept`` has accepted
        nothing. With several, every socket is waited on at once; a
        connection accepted by one of them while another won is kept for the
        next call, never dropped.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._ready:
            return self._ready.popleft()
        if len(self._listeners) == 1:
            return await self._listeners[0].accept()
        ready = self._ready
        errors: list[Exception] = []
        async with anyio.create_task_group() as tg:

            async def accept_one(listener: anyio.abc.SocketListener) -> None:
                # Failures are collected, not raised, so the caller gets the
                # error itself rather than an ExceptionGroup.
                try:
                    ready.append(await listener.accept())
                except Exception as exc:
                    errors.append(exc)
                tg.cancel_scope.cancel()

            for listener in self._listeners:
                tg.start_soon(accept_one, listener)
        if ready:
            return ready.popleft()
        raise errors[0]

    async def serve(
        self,
        handler: Callable[[anyio.abc.SocketStream], Any],
        task_group: anyio.abc.TaskGroup | None = None,
    ) -> None:
        """Accept connections forever, calling ``handler(stream)`` in a new task for each.

        Args:
            handler: An async function taking the stream; it owns the stream
                (closes it). As with anyio, an exception escaping it ends
                ``serve``: catch what one connection may raise.
            task_group: Where the handler tasks run; default a task group of
                ``serve``'s own, which waits for every handler before returning.

        Raises:
            anyio.ClosedResourceError: The listener was closed.
            OSError: The system refused to accept.
        """
        async with contextlib.AsyncExitStack() as stack:
            if task_group is None:
                task_group = await stack.enter_async_context(anyio.create_task_group())
            while self._ready:
                task_group.start_soon(handler, self._ready.popleft())
            if len(self._listeners) == 1:
                await self._listeners[0].serve(handler, task_group)
                return
            async with anyio.create_task_group() as accept_group:
                for listener in self._listeners:
                    accept_group.start_soon(listener.serve, handler, task_group)

    async def aclose(self) -> None:
        """Close every socket and any accepted connection not yet handed out."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            while self._ready:
                await self._ready.popleft().aclose()
            for listener in self._listeners:
                await listener.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attributes: dict[Any, Callable[[], Any]] = {}
        for listener in self._listeners:
            attributes.update(listener.extra_attributes)
        return attributes

    def __repr__(self) -> str:
        path = "fast" if self._fast else "anyio"
        return f"<StreamListener {path} sockets={len(self._listeners)}>"
