"""Opening a configured TCP socket: socket options, local binding, happy eyeballs.

What belongs here: :class:`SocketOptions` (what :class:`HttpConnector` sets
on each socket, checked once when the connector is made) and
:func:`connect_any` (race the resolved addresses, RFC 8305, and return the
first connected socket).

Strategy: the socket is made here, not by the event loop, because several
options only work before ``connect``: the buffer sizes (the receive buffer
sets the TCP window scale offered in the SYN), ``SO_BINDTODEVICE``,
``SO_REUSEADDR`` with a local address, and the bind itself. The
non-blocking ``connect`` is awaited with ``anyio.wait_writable``, the same
on asyncio, uvloop and trio; the caller then hands the connected socket to
the runtime's stream (the asyncio fast path or anyio's). Attempts start
``delay`` apart, or as soon as the previous one failed; the first to
connect wins and the others are cancelled and closed.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import math
import os
import socket
from collections.abc import Sequence
from typing import Final, final

import anyio

from hyper_util.client.legacy.connect._dns import SocketAddress

__all__ = ["SocketOptions", "connect_any", "family_of"]

#: ``TCP_USER_TIMEOUT`` takes milliseconds in an unsigned int.
_MAX_USER_TIMEOUT_MS: Final = 2**32 - 1


def family_of(address: SocketAddress) -> socket.AddressFamily:
    """The address family of a socket address (IPv6 addresses contain ``:``)."""
    return socket.AF_INET6 if ":" in address[0] else socket.AF_INET


@final
@dataclasses.dataclass(frozen=True, slots=True)
class SocketOptions:
    """The options set on each socket before it connects (see :class:`HttpConnector`)."""

    keepalive: float | None = None
    keepalive_interval: float | None = None
    keepalive_retries: int | None = None
    local_v4: str | None = None
    local_v6: str | None = None
    reuse_address: bool = False
    send_buffer_size: int | None = None
    recv_buffer_size: int | None = None
    interface: str | None = None
    tcp_user_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.keepalive is not None and self.keepalive <= 0:
            raise ValueError("keepalive must be positive seconds")
        if self.local_v4 is not None and not isinstance(
            ipaddress.ip_address(self.local_v4), ipaddress.IPv4Address
        ):
            raise ValueError(f"{self.local_v4!r} is not an IPv4 address")
        if self.local_v6 is not None and not isinstance(
            ipaddress.ip_address(self.local_v6), ipaddress.IPv6Address
        ):
            raise ValueError(f"{self.local_v6!r} is not an IPv6 address")
        for name in ("send_buffer_size", "recv_buffer_size"):
            size = getattr(self, name)
            if size is not None and size <= 0:
                raise ValueError(f"{name} must be a positive number of bytes")
        if self.interface is not None:
            if not hasattr(socket, "SO_BINDTODEVICE"):
                raise ValueError("interface= needs SO_BINDTODEVICE, which only Linux has")
            if not self.interface or len(self.interface.encode()) >= 16:  # IFNAMSIZ
                raise ValueError(f"invalid interface name {self.interface!r}")
        if self.tcp_user_timeout is not None:
            if not hasattr(socket, "TCP_USER_TIMEOUT"):
                raise ValueError("tcp_user_timeout= needs TCP_USER_TIMEOUT, which only Linux has")
            if not 0 < self.tcp_user_timeout * 1000 <= _MAX_USER_TIMEOUT_MS:
                raise ValueError("tcp_user_timeout must be positive seconds (under 49 days)")

    @property
    def family(self) -> int:
        """The only family connections may use: set by the local addresses given."""
        if (self.local_v4 is None) == (self.local_v6 is None):
            return socket.AF_UNSPEC
        return socket.AF_INET if self.local_v4 is not None else socket.AF_INET6

    def apply(self, sock: socket.socket, family: int) -> None:
        """Set the options on an unconnected socket of ``family``, and bind it if asked.

        Raises:
            OSError: The system refused an option (the message names it).
        """
        try:
            self._apply(sock, family)
        except OSError as exc:
            raise OSError(exc.errno, f"{exc.strerror} ({self._failed(exc)})") from exc

    def _apply(self, sock: socket.socket, family: int) -> None:
        if self.keepalive is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            # Options a platform lacks are skipped: keepalive itself is still on.
            for name, value in (
                ("TCP_KEEPIDLE", self.keepalive),
                ("TCP_KEEPINTVL", self.keepalive_interval),
                ("TCP_KEEPCNT", self.keepalive_retries),
            ):
                option = getattr(socket, name, None)
                if option is not None and value is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, option, max(1, math.ceil(value)))
        if self.reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.send_buffer_size is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_size)
        if self.recv_buffer_size is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer_size)
        if self.tcp_user_timeout is not None:
            milliseconds = max(1, round(self.tcp_user_timeout * 1000))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, milliseconds)
        if self.interface is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
        local = self.local_v4 if family == socket.AF_INET else self.local_v6
        if local is not None:
            sock.bind((local, 0))

    def _failed(self, exc: OSError) -> str:
        if self.interface is not None and exc.errno in (errno.EPERM, errno.ENODEV):
            return (
                f"binding to interface {self.interface!r} with SO_BINDTODEVICE; it must "
                "exist, and before Linux 5.7 it needs CAP_NET_RAW"
            )
        if self.local_v4 is not None or self.local_v6 is not None:
            return "setting socket options or binding the local address"
        return "setting socket options"


async def _attempt(address: SocketAddress, options: SocketOptions) -> socket.socket:
    family = family_of(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        options.apply(sock, family)
        error = sock.connect_ex(address)
        if error in (errno.EINPROGRESS, errno.EAGAIN):
            await anyio.wait_writable(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, f"{os.strerror(error)} ({address[0]} port {address[1]})")
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_any(
    addresses: Sequence[SocketAddress], options: SocketOptions, delay: float | None
) -> socket.socket:
    """Connect to the first address that answers; attempts start ``delay`` seconds apart.

    A failed attempt starts the next one at once. ``delay=None`` tries the
    addresses one after the other. The last address is tried in the calling
    task itself, so a single address (an IP literal, most names) costs no
    extra task and no cancellation.

    Raises:
        OSError: Every attempt failed (the one error, or all of them listed).

    Cancel safety: every socket opened is closed.
    """
    errors: list[OSError] = []
    won: list[socket.socket] = []  # the winner, once there is one

    async def attempt(address: SocketAddress, failed: anyio.Event | None) -> None:
        try:
            sock = await _attempt(address, options)
        except OSError as exc:
            errors.append(exc)
            if failed is not None:
                failed.set()
            return
        if won:  # pragma: no cover (two connects finishing in one loop pass)
            sock.close()
            return
        won.append(sock)
        if len(addresses) > 1:
            tg.cancel_scope.cancel()

    stagger = math.inf if delay is None else delay
    try:
        if len(addresses) == 1:
            # Nothing to race: no task group, whose exit would cost a pass
            # of the event loop on every new connection.
            await attempt(addresses[0], None)
        else:
            async with anyio.create_task_group() as tg:
                for address in addresses[:-1]:
                    failed = anyio.Event()
                    tg.start_soon(attempt, address, failed)
                    with anyio.move_on_after(stagger):
                        await failed.wait()
                await attempt(addresses[-1], None)
    except BaseException:
        # Cancelled from outside just as an attempt won: do not leak it.
        for sock in won:
            sock.close()
        raise
    if won:
        return won[0]
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"every address failed: {'; '.join(str(e) for e in errors)}")
