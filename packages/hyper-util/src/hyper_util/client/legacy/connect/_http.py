"""Connectors: the interface, the connection info, and the plain TCP connector.

What belongs here: :class:`Connector` (what the pooled client calls to open
a connection), :class:`Connected` (what it learns about the connection),
and :class:`HttpConnector`, which opens TCP connections for ``http`` URLs.

Strategy: a connector is any object with ``async connect(uri) -> (io,
connected)``, so connectors wrap each other: hyper-tls wraps an
:class:`HttpConnector` (with ``enforce_http=False``) to add TLS, a proxy
connector wraps any connector to reach a proxy. ``HttpConnector`` does what
hyper-util's does: an IP literal is used as it is (no lookup, no thread);
a name goes to its :class:`~._dns.Resolver` (a cache in front of
``getaddrinfo`` by default); the addresses are raced with happy eyeballs
(RFC 8305) over sockets it configures itself (:mod:`._tcp`), since several
options must be set before ``connect``. The connected socket is then handed
to the runtime's stream (:func:`hyper_util.rt.wrap_connected_socket`: the
fast transport path on asyncio).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any, Final, Protocol, TypeAlias, final

from hyper_core.http import Extensions, Uri, UriForm
from hyper_core.rt import IO, Timer, default_timer
from hyper_util.client.legacy._errors import ConnectError, ConnectTimeoutError
from hyper_util.client.legacy.connect._dns import CachingResolver, Resolver, SocketAddress
from hyper_util.client.legacy.connect._tcp import SocketOptions, connect_any, family_of
from hyper_util.rt import wrap_connected_socket

__all__ = [
    "DEFAULT_HAPPY_EYEBALLS_TIMEOUT",
    "Connected",
    "Connection",
    "Connector",
    "HttpConnector",
    "default_port",
]

#: Delay before the next address is tried while the previous connect is
#: still pending, in seconds: RFC 8305's recommended 250 ms is anyio's
#: default; hyper-util uses 300 ms, and so do we.
DEFAULT_HAPPY_EYEBALLS_TIMEOUT: Final = 0.3


def default_port(scheme: str | None) -> int:
    """Return the port a URI of ``scheme`` means when it names none (443 for https/wss)."""
    return 443 if scheme in ("https", "wss") else 80


def _new_extensions() -> Extensions:
    return Extensions()


@final
class _PoisonPill:
    """Shared by a ``Connected`` and its copies: poisoning one poisons them all."""

    __slots__ = ("poisoned",)

    def __init__(self) -> None:
        self.poisoned = False

    def __repr__(self) -> str:
        return f"<PoisonPill poisoned={self.poisoned}>"


@final
@dataclasses.dataclass(frozen=True, slots=True)
class Connected:
    """What a connector learned about the connection it opened.

    The pooled client puts it in every response's extensions:
    ``response.extensions.get(Connected)``.

    Attributes:
        remote_addr: The peer's ``(ip, port)``, or ``None`` (not a TCP socket).
        local_addr: Our ``(ip, port)``, or ``None``.
        alpn_h2: TLS negotiated ``h2`` with ALPN: the client speaks HTTP/2.
        proxied: The connection goes to a forwarding HTTP proxy: HTTP/1
            requests are then written in absolute-form (a CONNECT tunnel is
            not "proxied": it behaves as a direct connection).
        extra: Anything else a connector wants to pass along, keyed by type
            (the proxy connector puts its ``ProxyHeaders`` here).

    A connection can be *poisoned* (hyper-util's ``Connected::poison``):
    :meth:`poison` marks it unusable, and the pool never hands it out
    again. Copies made with :meth:`replace` share the mark.
    """

    remote_addr: tuple[str, int] | None = None
    local_addr: tuple[str, int] | None = None
    alpn_h2: bool = False
    proxied: bool = False
    extra: Extensions = dataclasses.field(default_factory=_new_extensions, compare=False)
    _pill: _PoisonPill = dataclasses.field(default_factory=_PoisonPill, compare=False, repr=False)

    def replace(self, **changes: Any) -> Connected:
        """Return a copy with some fields changed; it shares the poison mark."""
        return dataclasses.replace(self, **changes)

    def poison(self) -> None:
        """Mark the connection unusable: the pool will not hand it out again.

        For a connector that knows a connection must not be reused, or an
        application that saw a response it does not trust (found in
        ``response.extensions.get(Connected)``). Requests in flight on it
        finish; then it is closed instead of going back to the pool (an
        idle one is closed the next time the pool looks at it).
        """
        self._pill.poisoned = True

    @property
    def is_poisoned(self) -> bool:
        """Whether :meth:`poison` was called on this info or a copy of it."""
        return self._pill.poisoned


#: What a connector returns: the byte stream and what is known about it.
Connection: TypeAlias = tuple[IO, Connected]


class Connector(Protocol):
    """Opens connections for the pooled client; any object with this method is one."""

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        """Open a connection to the origin of ``uri`` (absolute-form).

        Returns:
            The IO, which the caller owns from then on, and its
            :class:`Connected` info.

        Raises:
            ConnectError: The connection could not be opened (a subclass for
                a timeout or a proxy refusal).

        Cancel safety: a cancelled connect leaves nothing open.
        """
        ...


def _sockaddr(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


def _ip_literal(host: str, port: int) -> SocketAddress | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6:
        return (host, port, 0, 0)
    return (host, port)


@final
class HttpConnector:
    """Opens plain TCP connections for ``http`` URLs (hyper-util's ``HttpConnector``).

    Every option has hyper's default unless it says otherwise.

    Args:
        enforce_http: Refuse URLs whose scheme is not ``http`` (hyper: on). A
            TLS connector wraps an ``HttpConnector(enforce_http=False)``.
        connect_timeout: Seconds the whole connect (DNS and every address
            tried) may take; ``None``: no limit of its own (hyper's default;
            the client's ``connect_timeout`` still applies).
        happy_eyeballs_timeout: Seconds before the next resolved address is
            tried while the previous attempt is pending (RFC 8305; hyper:
            300 ms). ``None`` or 0 tries the addresses one after the other.
        nodelay: Set ``TCP_NODELAY`` (on by default here, off in hyper:
            HTTP writes whole messages, so Nagle only adds latency).
        keepalive: Seconds of idleness before TCP keepalive probes start
            (``SO_KEEPALIVE`` + ``TCP_KEEPIDLE``); ``None``: keepalive off.
        keepalive_interval: Seconds between probes (``TCP_KEEPINTVL``).
        keepalive_retries: Unanswered probes before the connection is
            dropped (``TCP_KEEPCNT``).
        local_address: Bind each socket to this local IP before connecting
            (hyper's ``set_local_address``); only addresses of its family
            are tried. ``None``: the system chooses.
        local_addresses: ``(ipv4, ipv6)``, either may be ``None`` (hyper's
            ``set_local_addresses``): IPv4 connections bind the first, IPv6
            ones the second. Giving only one restricts connections to its
            family. Not together with ``local_address``.
        reuse_address: Set ``SO_REUSEADDR`` before binding (hyper: off), so
            a fixed local address can be bound again while an old
            connection from it is in ``TIME_WAIT``.
        send_buffer_size: ``SO_SNDBUF`` in bytes (``None``: the system's,
            which tunes it; Linux doubles the value given and caps it at
            ``net.core.wmem_max``).
        recv_buffer_size: ``SO_RCVBUF`` in bytes (``None``: the system's;
            set before connecting, so it also sets the TCP window scale).
        interface: Bind each socket to this network interface by name
            (``SO_BINDTODEVICE``, Linux only; hyper also has it on macOS).
            ``ValueError`` on other systems; a missing interface, or no
            privilege before Linux 5.7, fails the connect with a
            ``ConnectError`` that says so.
        tcp_user_timeout: Seconds sent data may stay unacknowledged before
            the kernel drops the connection (``TCP_USER_TIMEOUT``, Linux
            only; ``ValueError`` elsewhere). ``None``: the kernel's default
            (about 15 minutes of retransmissions).
        resolver: Finds the addresses of host names (a
            :class:`~hyper_util.client.legacy.connect.Resolver`). Default: a
            :class:`~hyper_util.client.legacy.connect.CachingResolver` that
            keeps answers 10 s in front of ``getaddrinfo`` (hyper resolves
            every time; pass ``GaiResolver()`` for that). IP literals are
            never resolved.
        fast: The IO path (:func:`hyper_util.rt.wrap_connected_socket`):
            ``None`` picks the asyncio transport fast path on asyncio and
            anyio's socket stream elsewhere; ``False`` forces anyio's stream.
        timer: The clock for ``connect_timeout`` (default: anyio's).

    Raises:
        ValueError: An option out of range, an address of the wrong family,
            or an option this system does not have.
    """

    __slots__ = (
        "_connect_timeout",
        "_enforce_http",
        "_fast",
        "_happy_eyeballs",
        "_nodelay",
        "_options",
        "_resolver",
        "_timer",
    )

    def __init__(
        self,
        *,
        enforce_http: bool = True,
        connect_timeout: float | None = None,
        happy_eyeballs_timeout: float | None = DEFAULT_HAPPY_EYEBALLS_TIMEOUT,
        nodelay: bool = True,
        keepalive: float | None = None,
        keepalive_interval: float | None = None,
        keepalive_retries: int | None = None,
        local_address: str | None = None,
        local_addresses: tuple[str | None, str | None] | None = None,
        reuse_address: bool = False,
        send_buffer_size: int | None = None,
        recv_buffer_size: int | None = None,
        interface: str | None = None,
        tcp_user_timeout: float | None = None,
        resolver: Resolver | None = None,
        fast: bool | None = None,
        timer: Timer | None = None,
    ) -> None:
        if connect_timeout is not None and connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive seconds")
        if happy_eyeballs_timeout is not None and happy_eyeballs_timeout < 0:
            raise ValueError("happy_eyeballs_timeout cannot be negative")
        v4, v6 = local_addresses if local_addresses is not None else (None, None)
        if local_address is not None:
            if local_addresses is not None:
                raise ValueError("give local_address or local_addresses, not both")
            if ipaddress.ip_address(local_address).version == 4:  # ValueError for a non-IP
                v4 = local_address
            else:
                v6 = local_address
        self._options = SocketOptions(
            keepalive=keepalive,
            keepalive_interval=keepalive_interval,
            keepalive_retries=keepalive_retries,
            local_v4=v4,
            local_v6=v6,
            reuse_address=reuse_address,
            send_buffer_size=send_buffer_size,
            recv_buffer_size=recv_buffer_size,
            interface=interface,
            tcp_user_timeout=tcp_user_timeout,
        )
        self._enforce_http = enforce_http
        self._connect_timeout = connect_timeout
        self._happy_eyeballs = happy_eyeballs_timeout or None
        self._nodelay = nodelay
        self._resolver: Resolver = resolver if resolver is not None else CachingResolver()
        self._fast = fast
        self._timer = timer if timer is not None else default_timer()

    @property
    def resolver(self) -> Resolver:
        """The resolver of host names."""
        return self._resolver

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        """Open a TCP connection to ``uri``'s host and port (80/443 by default).

        Raises:
            ConnectError: The URI has no host or (with ``enforce_http``) is
                not ``http``; DNS failed ("dns error"); every address
                refused, or a socket option was refused ("tcp connect error").
            ConnectTimeoutError: ``connect_timeout`` passed.

        Cancel safety: a cancelled connect leaves no socket open.
        """
        if uri.form is not UriForm.ABSOLUTE and uri.form is not UriForm.AUTHORITY:
            raise ConnectError(f"invalid URL, host is missing: {uri}")
        scheme = uri.scheme
        if self._enforce_http and scheme is not None and scheme != "http":
            raise ConnectError(f"invalid URL, scheme is not http: {uri}")
        host = uri.host
        if not host:
            raise ConnectError(f"invalid URL, host is missing: {uri}")
        port = uri.port if uri.port is not None else default_port(scheme)
        sock: socket.socket | None = None
        timeout = self._connect_timeout
        try:
            if timeout is None:
                sock = await self._open(host, port)
            else:
                timer = self._timer
                with timer.deadline(timer.now() + timeout):
                    sock = await self._open(host, port)
        except socket.gaierror as exc:
            raise ConnectError(f"dns error: {host}: {exc}") from exc
        except OSError as exc:
            raise ConnectError(f"tcp connect error: {host}:{port}: {exc}") from exc
        if sock is None:
            raise ConnectTimeoutError(f"connecting to {host}:{port} took more than {timeout} s")
        try:
            # Read before the runtime takes the socket: cheaper than its
            # typed attributes.
            remote_addr = _sockaddr(sock.getpeername())
            local_addr = _sockaddr(sock.getsockname())
            stream: Any = await wrap_connected_socket(sock, fast=self._fast)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, OSError):
                raise ConnectError(f"tcp connect error: {host}:{port}: {exc}") from exc
            raise
        if not self._nodelay:
            # The runtime's stream sets TCP_NODELAY on every socket: undo it.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        connected = Connected(remote_addr=remote_addr, local_addr=local_addr)
        io: IO = stream
        return io, connected

    async def _open(self, host: str, port: int) -> socket.socket:
        options = self._options
        literal = _ip_literal(host, port)
        addresses: Sequence[SocketAddress]
        if literal is not None:
            addresses = [literal]
        else:
            addresses = await self._resolver.resolve(host, port, options.family)
        family = options.family
        if family != socket.AF_UNSPEC:
            addresses = [a for a in addresses if family_of(a) == family]
            if not addresses:
                raise OSError(f"{host} has no address of the local address's family")
        return await connect_any(addresses, options, self._happy_eyeballs)

    def __repr__(self) -> str:
        return (
            f"HttpConnector(enforce_http={self._enforce_http}, "
            f"connect_timeout={self._connect_timeout}, nodelay={self._nodelay}, "
            f"resolver={self._resolver!r})"
        )
