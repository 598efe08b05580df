"""Connectors: the interface, the connection info, and the plain TCP connector.

What belongs here: :class:`Connector` (what the pooled client calls to open
a connection), :class:`Connected` (what it learns about the connection),
and :class:`HttpConnector`, which opens TCP connections for ``http`` URLs.

Strategy: a connector is any object with ``async connect(uri) -> (io,
connected)``, so connectors wrap each other: hyper-tls wraps an
:class:`HttpConnector` (with ``enforce_http=False``) to add TLS, a proxy
connector wraps any connector to reach a proxy. ``HttpConnector`` leaves DNS
and happy eyeballs (RFC 8305) to the runtime through
:func:`hyper_util.rt.connect_tcp` (anyio's resolver, ``anyio.getaddrinfo``,
and its address racing, which starts the next address
``happy_eyeballs_timeout`` after the previous one; on asyncio the socket is
then driven by the fast transport path); it only adds the socket
options, the deadline, and the translation of failures into
:class:`~hyper_util.client.legacy.ConnectError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import math
import socket
from typing import Any, Final, Protocol, TypeAlias, final

import anyio
from anyio.abc import SocketAttribute

from hyper_core.http import Extensions, Uri, UriForm
from hyper_core.rt import IO, Timer, default_timer
from hyper_util.client.legacy._errors import ConnectError, ConnectTimeoutError
from hyper_util.rt import connect_tcp

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
    """

    remote_addr: tuple[str, int] | None = None
    local_addr: tuple[str, int] | None = None
    alpn_h2: bool = False
    proxied: bool = False
    extra: Extensions = dataclasses.field(default_factory=_new_extensions, compare=False)

    def replace(self, **changes: Any) -> Connected:
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


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


def _set_keepalive(
    sock: socket.socket, idle: float, interval: float | None, retries: int | None
) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    # Options a platform lacks are skipped: keepalive itself is still on.
    options = [("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", retries)]
    for name, value in options:
        option = getattr(socket, name, None)
        if option is not None and value is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, max(1, math.ceil(value)))


@final
class HttpConnector:
    """Opens plain TCP connections for ``http`` URLs.

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
        local_address: Bind the socket to this local IP address before
            connecting (``None``: the system chooses).
        fast: The IO path (:func:`hyper_util.rt.connect_tcp`): ``None``
            picks the asyncio transport fast path on asyncio and anyio's
            socket stream elsewhere; ``False`` forces anyio's stream.
        timer: The clock for ``connect_timeout`` (default: anyio's).
    """

    __slots__ = (
        "_connect_timeout",
        "_enforce_http",
        "_fast",
        "_happy_eyeballs",
        "_keepalive",
        "_keepalive_interval",
        "_keepalive_retries",
        "_local_address",
        "_nodelay",
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
        fast: bool | None = None,
        timer: Timer | None = None,
    ) -> None:
        if connect_timeout is not None and connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive seconds")
        if happy_eyeballs_timeout is not None and happy_eyeballs_timeout < 0:
            raise ValueError("happy_eyeballs_timeout cannot be negative")
        if keepalive is not None and keepalive <= 0:
            raise ValueError("keepalive must be positive seconds")
        if local_address is not None:
            ipaddress.ip_address(local_address)  # ValueError for a non-IP
        self._enforce_http = enforce_http
        self._connect_timeout = connect_timeout
        # anyio's connect_tcp wants a float; a huge delay means "one at a time".
        self._happy_eyeballs = happy_eyeballs_timeout or 3600.0
        self._nodelay = nodelay
        self._keepalive = keepalive
        self._keepalive_interval = keepalive_interval
        self._keepalive_retries = keepalive_retries
        self._local_address = local_address
        self._fast = fast
        self._timer = timer if timer is not None else default_timer()

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        """Open a TCP connection to ``uri``'s host and port (80/443 by default).

        Raises:
            ConnectError: The URI has no host or (with ``enforce_http``) is
                not ``http``; DNS failed; every address refused.
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
        stream: Any = None
        timeout = self._connect_timeout
        timer = self._timer
        try:
            if timeout is None:
                stream = await self._open(host, port)
            else:
                with timer.deadline(timer.now() + timeout):
                    stream = await self._open(host, port)
        except (OSError, anyio.BrokenResourceError) as exc:
            raise ConnectError(f"tcp connect error: {host}:{port}: {exc}") from exc
        if stream is None:
            raise ConnectTimeoutError(f"connecting to {host}:{port} took more than {timeout} s")
        try:
            sock = stream.extra(SocketAttribute.raw_socket, None)
            if sock is not None:
                if not self._nodelay:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
                if self._keepalive is not None:
                    _set_keepalive(
                        sock, self._keepalive, self._keepalive_interval, self._keepalive_retries
                    )
            connected = Connected(
                remote_addr=_sockaddr(stream.extra(SocketAttribute.remote_address, None)),
                local_addr=_sockaddr(stream.extra(SocketAttribute.local_address, None)),
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream.aclose()
            if isinstance(exc, OSError):
                raise ConnectError(f"setting socket options failed: {exc}") from exc
            raise
        io: IO = stream
        return io, connected

    async def _open(self, host: str, port: int) -> Any:
        return await connect_tcp(
            host,
            port,
            fast=self._fast,
            local_host=self._local_address,
            happy_eyeballs_delay=self._happy_eyeballs,
        )

    def __repr__(self) -> str:
        return (
            f"HttpConnector(enforce_http={self._enforce_http}, "
            f"connect_timeout={self._connect_timeout}, nodelay={self._nodelay})"
        )
