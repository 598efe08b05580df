"""Listening sockets bound once, before any worker starts: ``bind_sockets`` and ``listen_on``.

What belongs here: making the listening sockets a supervisor shares with
its workers (TCP host and port, a Unix socket path, or a file descriptor
that a process manager such as systemd bound), and turning such sockets
back into a listener inside a worker.

Strategy: plain blocking :mod:`socket` calls, because the supervisor that
binds has no event loop (it never needs one). A host name binds every
address it resolves to, as anyio's ``create_tcp_listener`` does, with
``IPV6_V6ONLY`` set so an IPv6 socket does not also claim the IPv4 port;
port ``0`` takes the kernel's pick for the first address and reuses it for
the others. ``SO_REUSEADDR`` is set on TCP sockets (a restart does not wait
for TIME_WAIT), never ``SO_REUSEPORT``: the workers share one socket and one
accept queue, so a connection waits in that queue while a worker restarts
instead of being sent to a process that is gone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Sequence

from hyper_util.rt import DEFAULT_BACKLOG, StreamListener, wrap_socket_listener
from hyper_util.server._serve import _remove_stale_socket

__all__ = ["bind_sockets", "bind_udp_sockets", "listen_on", "split_sockets"]

#: Why HTTP/3 cannot be shared between worker processes elsewhere.
REUSEPORT_UNAVAILABLE = (
    "HTTP/3 with several worker processes needs Linux's SO_REUSEPORT for UDP "
    "(each worker gets its own socket and the kernel keeps a client on one of them)"
)


def bind_sockets(
    host: str | None = "127.0.0.1",
    port: int = 8000,
    *,
    uds: str | os.PathLike[str] | None = None,
    fd: int | None = None,
    backlog: int = DEFAULT_BACKLOG,
) -> list[socket.socket]:
    """Bind and listen, in the calling process, for workers to share.

    Exactly one source is used: ``fd`` if given, else ``uds``, else ``host``
    and ``port``.

    Args:
        host: The address or name to bind; ``None`` or ``""``: every
            interface. A name binds each address it resolves to.
        port: The TCP port; ``0`` picks a free one (read it back with
            ``getsockname()``).
        uds: A Unix socket path (a stale socket file there is replaced; the
            caller removes the file when done).
        fd: An inherited file descriptor of a bound stream socket (systemd
            socket activation, a process manager). It is listened on if it
            was not yet.
        backlog: Connections the kernel queues before one is accepted.

    Returns:
        The listening sockets, blocking, one per bound address. The caller
        owns them (close them when done).

    Raises:
        OSError: The address could not be bound, or ``fd`` is not a socket.
        ValueError: ``fd`` is not a stream socket.
    """
    if fd is not None:
        sock = socket.socket(fileno=fd)
        if sock.type != socket.SOCK_STREAM:
            sock.detach()  # not ours to close
            raise ValueError(f"file descriptor {fd} is not a stream socket")
        sock.listen(backlog)
        return [sock]
    if uds is not None:
        path = os.fspath(uds)
        _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return [sock]
    return _bind_tcp(host or None, port, backlog)


def _bind_tcp(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    infos = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    # Each address once (getaddrinfo repeats them per protocol on some systems).
    addresses = list(dict.fromkeys((family, address) for family, *_, address in infos))
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            if os.name != "nt":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                # Every address on the port the kernel picked for the first.
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def bind_udp_sockets(host: str | None, port: int, count: int) -> list[socket.socket]:
    """Bind ``count`` UDP sockets to one address and port, one per worker (HTTP/3).

    QUIC packets belong to connections that live in one process, so the
    workers cannot share one UDP socket as they share a TCP accept queue:
    each would read the others' packets. These sockets form one
    ``SO_REUSEPORT`` group, and Linux sends each datagram to the member its
    source and destination addresses hash to, so every packet of a client
    reaches the same socket. The hash only holds while the group's members
    stay the same: the supervisor keeps every socket open (a worker that
    restarts gets its slot's socket back), so a restart moves nobody.

    Args:
        host: The address or name to bind (its first address, as
            :func:`hyper_core.quic.listen` binds); ``None`` or ``""``:
            every interface.
        port: The UDP port: the TCP listener's port number (not 0).
        count: How many sockets (one per worker slot).

    Raises:
        ValueError: Not on Linux (``REUSEPORT_UNAVAILABLE``), or ``port`` is 0.
        OSError: The address could not be bound.
    """
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError(REUSEPORT_UNAVAILABLE)
    if port == 0:
        raise ValueError("bind_udp_sockets needs the TCP listener's port number, not 0")
    infos = socket.getaddrinfo(
        host or None, port, socket.AF_UNSPEC, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE
    )
    family, *_, address = infos[0]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def split_sockets(
    sockets: Sequence[socket.socket],
) -> tuple[list[socket.socket], socket.socket | None]:
    """A worker's inherited sockets: the listening (TCP or Unix) ones, and its UDP one.

    Raises:
        ValueError: More than one UDP socket.
    """
    streams = [s for s in sockets if s.type != socket.SOCK_DGRAM]
    datagrams = [s for s in sockets if s.type == socket.SOCK_DGRAM]
    if len(datagrams) > 1:
        raise ValueError("a worker serves one UDP socket at most")
    return streams, datagrams[0] if datagrams else None


async def listen_on(
    sockets: Sequence[socket.socket], *, fast: bool | None = None
) -> StreamListener:
    """A listener accepting on sockets bound elsewhere, for :func:`~hyper_util.server.serve`.

    In a worker started by :func:`~hyper_util.server.run_workers`, this
    turns the inherited sockets into the ``listener`` argument of ``serve``.
    Takes ownership of the sockets (closing the listener closes them; the
    parent's copies stay open).

    Args:
        sockets: Bound, listening stream sockets.
        fast: The IO path, as in :func:`hyper_util.rt.create_tcp_listener`.

    Raises:
        ValueError: ``sockets`` is empty, or one is not a bound stream socket.
    """
    if not sockets:
        raise ValueError("listen_on needs at least one socket")
    wrapped: list[StreamListener] = []
    for sock in sockets:
        try:
            listener = await wrap_socket_listener(sock, fast=fast)
        except BaseException:
            for done in wrapped:
                with contextlib.suppress(Exception):
                    await done.aclose()
            raise
        wrapped.append(listener)
    if len(wrapped) == 1:
        return wrapped[0]
    parts = [part for listener in wrapped for part in listener.listeners]
    return StreamListener(parts, fast=wrapped[0].fast)
