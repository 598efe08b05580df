"""Opening connections and listeners on the right IO path for the running loop.

What belongs here: the public constructors of :mod:`hyper_util.rt`:
:func:`connect_tcp`, :func:`connect_unix`, :func:`wrap_connected_socket`,
:func:`create_tcp_listener`, :func:`create_unix_listener` and
:func:`wrap_socket_listener`.

Strategy: each takes ``fast`` (``None``: the running loop's fast path, the
asyncio transport path on asyncio and the trio stream on trio, anyio
streams elsewhere; ``False``: anyio streams; ``True``: a fast path or an
error) and returns an ``anyio.abc.SocketStream`` or a
:class:`~hyper_util.rt.StreamListener`, so callers never branch on the path.
Sockets and name resolution are anyio's on the anyio path and on trio (the
connected socket is then taken from anyio's stream), and asyncio's
``create_connection`` (with happy eyeballs) on the asyncio path. Every TCP
connection has ``TCP_NODELAY`` set, whichever path made it.
"""

from __future__ import annotations

import os
import socket

import anyio
import anyio.abc

from ._asyncio_open import open_asyncio_stream, open_asyncio_unix_stream
from ._asyncio_stream import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_READ_HIGH_WATER,
    DEFAULT_WRITE_HIGH_WATER,
    set_nodelay,
    wrap_asyncio_socket,
)
from ._backend import use_fast_path
from ._listener import AsyncioSocketListener, StreamListener, TrioSocketListener

__all__ = [
    "connect_tcp",
    "connect_unix",
    "create_tcp_listener",
    "create_unix_listener",
    "wrap_connected_socket",
    "wrap_socket_listener",
]

#: Happy eyeballs delay, seconds: RFC 8305's recommended 250 ms (anyio's default).
DEFAULT_HAPPY_EYEBALLS_DELAY = 0.25
#: Listen backlog, connections: anyio's default (the kernel caps it at somaxconn).
DEFAULT_BACKLOG = 65536


async def connect_tcp(
    host: str,
    port: int,
    *,
    fast: bool | None = None,
    local_host: str | None = None,
    happy_eyeballs_delay: float = DEFAULT_HAPPY_EYEBALLS_DELAY,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> anyio.abc.SocketStream:
    """Open a TCP connection, as a stream for the running event loop.

    Args:
        host: A host name or IP address; names resolve through the event loop.
        port: The TCP port.
        fast: ``None``: the running loop's fast path (asyncio's or trio's),
            anyio's stream elsewhere; ``False``: anyio's stream; ``True``: a
            fast path (``RuntimeError`` outside asyncio and trio).
        local_host: The local address to bind before connecting.
        happy_eyeballs_delay: Seconds before racing the next address
            (RFC 8305; default 0.25).
        read_high_water: Fast path only: bytes buffered before reading pauses.
        write_high_water: Fast path only: bytes queued before ``send`` waits.
        close_timeout: Fast path only: seconds ``aclose`` waits for queued
            bytes to go out before it aborts.

    Returns:
        An ``anyio.abc.SocketStream`` (:class:`~hyper_util.rt.AsyncioSocketStream`
        or :class:`~hyper_util.rt.TrioSocketStream` on the fast path), with
        ``TCP_NODELAY`` set.

    Raises:
        OSError: The name did not resolve or every attempt failed.
        RuntimeError: ``fast=True`` outside asyncio and trio.
    """
    path = use_fast_path(fast)
    if path == "asyncio":
        return await open_asyncio_stream(
            host,
            port,
            local_host=local_host,
            happy_eyeballs_delay=happy_eyeballs_delay,
            read_high_water=read_high_water,
            write_high_water=write_high_water,
            close_timeout=close_timeout,
        )
    stream = await anyio.connect_tcp(
        host, port, local_host=local_host, happy_eyeballs_delay=happy_eyeballs_delay
    )
    if path == "trio":
        return _take_for_trio(stream, close_timeout)
    set_nodelay(stream.extra(anyio.abc.SocketAttribute.raw_socket))
    return stream


def _take_for_trio(stream: anyio.abc.SocketStream, close_timeout: float) -> anyio.abc.SocketStream:
    """The connected socket of anyio's trio ``stream``, as a :class:`TrioSocketStream`."""
    from ._trio_stream import wrap_trio_socket  # trio is an optional dependency

    raw: socket.socket = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    # Detached, anyio's stream no longer owns the descriptor: closing or
    # collecting it leaves the new socket alone.
    sock = socket.socket(raw.family, raw.type, raw.proto, fileno=raw.detach())
    return wrap_trio_socket(sock, close_timeout=close_timeout)


async def connect_unix(
    path: str | os.PathLike[str],
    *,
    fast: bool | None = None,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> anyio.abc.SocketStream:
    """Connect to a Unix socket, as a stream for the running event loop.

    Args and path choice as :func:`connect_tcp`.

    Raises:
        OSError: Nothing listens at ``path``.
        RuntimeError: ``fast=True`` outside asyncio and trio.
    """
    fast_path = use_fast_path(fast)
    if fast_path == "asyncio":
        return await open_asyncio_unix_stream(
            os.fspath(path),
            read_high_water=read_high_water,
            write_high_water=write_high_water,
            close_timeout=close_timeout,
        )
    stream = await anyio.connect_unix(path)
    if fast_path == "trio":
        return _take_for_trio(stream, close_timeout)
    return stream


async def wrap_connected_socket(
    sock: socket.socket,
    *,
    fast: bool | None = None,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> anyio.abc.SocketStream:
    """Make a stream of a socket connected elsewhere (a connector's own); takes ownership.

    Path choice as :func:`connect_tcp`; ``TCP_NODELAY`` is set on TCP sockets.

    Raises:
        ValueError: ``sock`` is not a connected stream socket.
        RuntimeError: ``fast=True`` outside asyncio and trio.
    """
    fast_path = use_fast_path(fast)
    if fast_path == "trio":
        from ._trio_stream import wrap_trio_socket  # trio is an optional dependency

        return wrap_trio_socket(sock, close_timeout=close_timeout)
    if fast_path == "asyncio":
        sock.setblocking(False)
        return await wrap_asyncio_socket(
            sock,
            read_high_water=read_high_water,
            write_high_water=write_high_water,
            close_timeout=close_timeout,
        )
    set_nodelay(sock)
    return await anyio.abc.SocketStream.from_socket(sock)


def fast_listener(
    listeners: list[anyio.abc.SocketListener],
    fast: str | None,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> StreamListener:
    """Anyio's ``listeners`` accepting on the path ``fast`` names (``use_fast_path``'s answer)."""
    if fast == "trio":
        listeners = [
            TrioSocketListener(listener, close_timeout=close_timeout) for listener in listeners
        ]
    elif fast == "asyncio":
        listeners = [
            AsyncioSocketListener(
                listener,
                read_high_water=read_high_water,
                write_high_water=write_high_water,
                close_timeout=close_timeout,
            )
            for listener in listeners
        ]
    return StreamListener(listeners, fast=fast is not None)


async def create_tcp_listener(
    host: str | None = None,
    port: int = 0,
    *,
    fast: bool | None = None,
    backlog: int = DEFAULT_BACKLOG,
    reuse_port: bool = False,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> StreamListener:
    """Listen for TCP connections; accepted streams suit the running event loop.

    Args:
        host: The address or name to bind; ``None``: every interface
            (IPv4 and IPv6, one socket each).
        port: The port; ``0`` picks a free one (read it back with
            ``listener.extra(SocketAttribute.local_port)``).
        fast: As :func:`connect_tcp`.
        backlog: Most connections the kernel queues before they are accepted.
        reuse_port: Set ``SO_REUSEPORT`` (several processes on one port).
        read_high_water: Fast path only, for each accepted stream (bytes).
        write_high_water: Fast path only, for each accepted stream (bytes).
        close_timeout: Fast path only, for each accepted stream (seconds).

    Returns:
        A :class:`~hyper_util.rt.StreamListener`; accepted streams have
        ``TCP_NODELAY`` set.

    Raises:
        OSError: The address could not be bound.
        RuntimeError: ``fast=True`` outside asyncio and trio.
    """
    fast_path = use_fast_path(fast)
    multi = await anyio.create_tcp_listener(
        local_host=host, local_port=port, backlog=backlog, reuse_port=reuse_port
    )
    listeners = [_socket_listener(listener) for listener in multi.listeners]
    return fast_listener(listeners, fast_path, read_high_water, write_high_water, close_timeout)


async def create_unix_listener(
    path: str | os.PathLike[str],
    *,
    fast: bool | None = None,
    mode: int | None = None,
    backlog: int = DEFAULT_BACKLOG,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> StreamListener:
    """Listen on a Unix socket at ``path``; accepted streams suit the running loop.

    Args:
        path: The socket's path (an existing socket file there is replaced).
        fast: As :func:`connect_tcp`.
        mode: Permissions for the socket file (``chmod``), if given.
        backlog: As :func:`create_tcp_listener`.
        read_high_water: As :func:`create_tcp_listener`.
        write_high_water: As :func:`create_tcp_listener`.
        close_timeout: As :func:`create_tcp_listener`.

    Raises:
        OSError: The path could not be bound.
        RuntimeError: ``fast=True`` outside asyncio and trio.
    """
    fast_path = use_fast_path(fast)
    listener = await anyio.create_unix_listener(path, mode=mode, backlog=backlog)
    return fast_listener([listener], fast_path, read_high_water, write_high_water, close_timeout)


async def wrap_socket_listener(
    sock: socket.socket,
    *,
    fast: bool | None = None,
    read_high_water: int = DEFAULT_READ_HIGH_WATER,
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> StreamListener:
    """Listen on a socket bound elsewhere (systemd, a supervisor, a test); takes ownership.

    Calls ``listen()`` on it if it was not listening yet.

    Raises:
        ValueError: ``sock`` is not a bound stream socket.
        RuntimeError: ``fast=True`` outside asyncio and trio.
    """
    fast_path = use_fast_path(fast)
    listener = await anyio.abc.SocketListener.from_socket(sock)
    return fast_listener([listener], fast_path, read_high_water, write_high_water, close_timeout)


def _socket_listener(
    listener: anyio.abc.Listener[anyio.abc.SocketStream],
) -> anyio.abc.SocketListener:
    # anyio types MultiListener.listeners as plain Listeners; for TCP they
    # are always SocketListeners, which is what the fast path needs.
    if not isinstance(listener, anyio.abc.SocketListener):
        raise TypeError(f"expected a socket listener, got {listener!r}")
    return listener
