"""The UDP sockets under QUIC: one non-blocking socket, read and written in batches.

What belongs here: :class:`_UdpSocket` (the socket both endpoints own,
waited on through anyio) and the two ways ``_endpoint`` makes one: bound
for a server (``_bound_socket``), connected for a client
(``_connected_socket``). Nothing here knows QUIC; the endpoints that route
the datagrams are in ``_endpoint.py``.

Strategy: see :class:`_UdpSocket`: every datagram the kernel has queued is
read in one go before anything else runs, sends are plain system calls,
and anyio is used only to wait (``wait_readable``/``wait_writable``), so
this runs on asyncio, uvloop and trio alike.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio

from hyper_core.quic._aioquic import Address

__all__ = ["_UdpSocket", "_bound_socket", "_connected_socket"]


class _UdpSocket:
    """A non-blocking UDP socket, read and written in batches, waiting through anyio.

    QUIC moves hundreds of datagrams per round trip, so per datagram costs
    decide its speed. anyio's UDP sockets hand datagrams out one per
    ``receive``, each a scheduling round; between two of them the
    connection's driver runs and answers what it has so far. On uvloop,
    whose transport reads every queued datagram into anyio's queue at once,
    that made the receiver acknowledge every one to three packets (16 times
    asyncio's acknowledgements, each a send system call) and downloads 5 to
    8 times slower. So this owns a plain socket: it waits for readability
    with ``anyio.wait_readable`` (asyncio's and uvloop's ``add_reader``,
    trio's ``wait_readable``), then reads everything the kernel has queued
    (up to ``limit``) before anything else runs, and the driver answers
    the whole batch once. Sends are plain ``sendto`` calls, waiting with
    ``anyio.wait_writable`` only when the kernel's buffer is full.
    """

    __slots__ = ("_closed", "_connected", "_writable", "sock")

    def __init__(self, sock: socket.socket, *, connected: bool) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._connected = connected
        self._closed = False
        # Several drivers send on a server's socket; only one task may wait
        # for writability at a time (trio's rule), and only when it is full.
        self._writable = anyio.Lock()

    async def receive(self, limit: int = 256) -> list[tuple[bytes, Any]]:
        """Wait for datagrams; return every one queued now (1 to ``limit``).

        Raises:
            anyio.ClosedResourceError: The socket was closed.
        """
        sock = self.sock
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            await anyio.wait_readable(sock)
            batch: list[tuple[bytes, Any]] = []
            while len(batch) < limit:
                try:
                    batch.append(sock.recvfrom(65536))
                except BlockingIOError:
                    break
                except OSError:
                    # An ICMP error from an earlier send (port unreachable...):
                    # UDP is best effort, QUIC's timers deal with the loss.
                    continue
            if batch:
                return batch

    async def send(self, datagrams: list[tuple[bytes, Address]]) -> None:
        """Send every datagram, waiting only while the kernel's buffer is full."""
        sock = self.sock
        connected = self._connected
        for data, addr in datagrams:
            while not self._closed:
                try:
                    if connected:
                        sock.send(data)
                    else:
                        sock.sendto(data, (addr[0], addr[1]))
                except BlockingIOError:
                    async with self._writable:
                        await anyio.wait_writable(sock)
                    continue
                except OSError:
                    pass  # UDP is best effort (unreachable, an ICMP error...)
                break

    def close(self) -> None:
        """Close the socket; a task waiting in :meth:`receive` gets ClosedResourceError."""
        if not self._closed:
            self._closed = True
            anyio.notify_closing(self.sock)
            self.sock.close()


async def _bound_socket(host: str, port: int) -> socket.socket:
    """A UDP socket bound to ``host:port`` (the first address the name resolves to)."""
    infos = await anyio.getaddrinfo(
        host or None, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
    )
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise OSError(f"{host} has no address")
    family, _, proto, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    try:
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _connected_socket(host: str, port: int) -> socket.socket:
    """A UDP socket connected to ``host:port`` (the name resolved by anyio)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise OSError(f"{host} has no address")
    family, _, proto, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    try:
        sock.setblocking(False)
        sock.connect(address)  # UDP: no packet, only the kernel's routing
    except BaseException:
        sock.close()
        raise
    return sock
