"""SOCKS proxies: SOCKS4, SOCKS4a and SOCKS5 (RFC 1928, with RFC 1929 passwords).

What belongs here: :class:`SocksConnector` (every connection through one
SOCKS proxy) and :func:`open_socks`, which :class:`ProxyConnector` also
uses for ``socks4://``, ``socks4a://``, ``socks5://`` and ``socks5h://``
proxy URLs.

Strategy: the handshake is a few fixed-layout messages, written by hand and
read with exact byte counts (no parser object, no task). The URL's scheme
says where names are resolved, as in curl: ``socks4`` and ``socks5`` resolve
the target here (through a :class:`~._dns.Resolver`) and send an address;
``socks4a`` and ``socks5h`` send the name and let the proxy resolve it. IP
literals are always sent as addresses. After the handshake the connection
is a plain byte stream to the origin, like a CONNECT tunnel: HTTP requests
go in origin-form, and a TLS connector wrapping this one does its
handshake with the origin over it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from typing import Final, final

import anyio

from hyper_core.http import Uri, UriForm
from hyper_core.rt import IO, receive_or_eof, send_all
from hyper_core.upgrade import Upgraded
from hyper_util.client.legacy._errors import ConnectError, ProxyAuthRequiredError, ProxyError
from hyper_util.client.legacy.connect._dns import CachingResolver, Resolver
from hyper_util.client.legacy.connect._http import (
    Connected,
    Connector,
    HttpConnector,
    default_port,
)
from hyper_util.client.legacy.connect._matcher import split_proxy_url

__all__ = [
    "DEFAULT_SOCKS_PORT",
    "SOCKS_SCHEMES",
    "SocksConnector",
    "open_socks",
    "socks_proxy_uri",
]

#: The port of a SOCKS proxy URL that names none (RFC 1928 section 3).
DEFAULT_SOCKS_PORT: Final = 1080
#: Proxy URL schemes: ``scheme -> (version, the proxy resolves names)``.
SOCKS_SCHEMES: Final = {
    "socks4": (4, False),
    "socks4a": (4, True),
    "socks5": (5, False),
    "socks5h": (5, True),
}

_SOCKS4_REPLIES: Final = {
    0x5B: "the request was rejected or failed",
    0x5C: "the proxy could not reach identd on this host",
    0x5D: "identd did not confirm the user id",
}
_SOCKS5_REPLIES: Final = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}
_NO_AUTH: Final = 0x00
_PASSWORD: Final = 0x02
_NO_METHOD: Final = 0xFF


class _Reader:
    """Reads exact byte counts off the proxy connection; keeps what comes after."""

    __slots__ = ("_buf", "_io")

    def __init__(self, io: IO) -> None:
        self._io = io
        self._buf = b""

    async def exactly(self, count: int) -> bytes:
        while len(self._buf) < count:
            data = await receive_or_eof(self._io, 4096)
            if not data:
                raise ProxyError("the SOCKS proxy closed the connection during the handshake")
            self._buf += data
        out, self._buf = self._buf[:count], self._buf[count:]
        return out

    @property
    def rest(self) -> bytes:
        return self._buf


def _encode(text: str, what: str) -> bytes:
    raw = text.encode("idna") if what == "host name" else text.encode("utf-8")
    if len(raw) > 255:
        raise ProxyError(f"the {what} is longer than SOCKS allows (255 bytes)")
    return raw


async def _local_address(
    resolver: Resolver, host: str, port: int, family: int
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        addresses = await resolver.resolve(host, port, family)
    except OSError as exc:
        raise ConnectError(f"dns error: {host}: {exc}") from exc
    if not addresses:
        raise ConnectError(f"dns error: {host} resolved to no address")
    return ipaddress.ip_address(addresses[0][0])


async def _socks4(
    io: IO,
    reader: _Reader,
    host: str,
    port: int,
    remote_dns: bool,
    user: str | None,
    resolver: Resolver,
) -> None:
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    name = b""
    if ip is None:
        if remote_dns:
            name = _encode(host, "host name") + b"\0"
            ip = ipaddress.IPv4Address("0.0.0.1")  # SOCKS4a: "the name follows"
        else:
            ip = await _local_address(resolver, host, port, socket.AF_INET)
    if ip.version != 4:
        raise ProxyError(f"SOCKS4 reaches IPv4 addresses only, not {ip}")
    user_id = _encode(user, "user id") if user else b""
    await send_all(io, [b"\x04\x01" + struct.pack("!H", port) + ip.packed + user_id + b"\0" + name])
    reply = await reader.exactly(8)
    if reply[0] not in (0, 4):
        raise ProxyError(f"invalid SOCKS4 reply from the proxy: {reply!r}")
    if reply[1] != 0x5A:
        reason = _SOCKS4_REPLIES.get(reply[1], f"reply code {reply[1]:#x}")
        raise ProxyError(f"the SOCKS4 proxy refused the connection: {reason}")


async def _socks5_auth(io: IO, reader: _Reader, auth: tuple[str, str] | None) -> None:
    methods = bytes([_NO_AUTH, _PASSWORD]) if auth is not None else bytes([_NO_AUTH])
    await send_all(io, [b"\x05" + bytes([len(methods)]) + methods])
    version, method = await reader.exactly(2)
    if version != 5:
        raise ProxyError(f"the proxy does not speak SOCKS5 (version byte {version})")
    if method == _NO_AUTH:
        return
    if method != _PASSWORD or auth is None:
        what = "a username and password" if method == _PASSWORD else "no method we offered"
        raise ProxyAuthRequiredError(f"the SOCKS5 proxy requires authentication ({what})")
    user, password = _encode(auth[0], "username"), _encode(auth[1], "password")
    await send_all(io, [b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password])
    _, status = await reader.exactly(2)
    if status != 0:
        raise ProxyAuthRequiredError("the SOCKS5 proxy refused the username and password")


async def _socks5(
    io: IO,
    reader: _Reader,
    host: str,
    port: int,
    remote_dns: bool,
    auth: tuple[str, str] | None,
    resolver: Resolver,
) -> None:
    await _socks5_auth(io, reader, auth)
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None and not remote_dns:
        ip = await _local_address(resolver, host, port, socket.AF_UNSPEC)
    if ip is None:
        name = _encode(host, "host name")
        target = b"\x03" + bytes([len(name)]) + name
    else:
        target = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    await send_all(io, [b"\x05\x01\x00" + target + struct.pack("!H", port)])
    version, reply, _, kind = await reader.exactly(4)
    if version != 5:
        raise ProxyError(f"the proxy does not speak SOCKS5 (version byte {version})")
    if reply != 0:
        reason = _SOCKS5_REPLIES.get(reply, f"reply code {reply:#x}")
        raise ProxyError(f"the SOCKS5 proxy could not connect to {host}:{port}: {reason}")
    if kind == 0x01:
        await reader.exactly(4 + 2)
    elif kind == 0x04:
        await reader.exactly(16 + 2)
    elif kind == 0x03:
        (length,) = await reader.exactly(1)
        await reader.exactly(length + 2)
    else:
        raise ProxyError(f"invalid SOCKS5 reply address type {kind}")


def socks_proxy_uri(proxy: Uri) -> Uri:
    """The plain ``http://host:port/`` URI an inner connector opens to reach the proxy."""
    port = proxy.port if proxy.port is not None else DEFAULT_SOCKS_PORT
    host = proxy.host or ""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Uri.from_parts(scheme="http", authority=authority, path_and_query="/")


async def open_socks(
    inner: Connector,
    proxy: Uri,
    auth: tuple[str, str] | None,
    uri: Uri,
    resolver: Resolver,
) -> tuple[IO, Connected]:
    """Connect to ``proxy`` (a ``socks*://`` URL) and through it to ``uri``'s origin.

    Args:
        inner: Opens the TCP connection to the proxy.
        proxy: The proxy's URL; its scheme picks the version and where
            names resolve (:data:`SOCKS_SCHEMES`).
        auth: ``(username, password)``; SOCKS4 sends the username as its
            user id.
        uri: Where to go (its host and port; 80/443 by its scheme).
        resolver: Resolves the target's name for ``socks4`` / ``socks5``.

    Raises:
        ConnectError: Reaching the proxy failed, or a local lookup failed.
        ProxyAuthRequiredError: The proxy wants credentials, or refused them.
        ProxyError: The proxy refused the connection or broke the handshake.

    Cancel safety: a cancelled handshake closes the proxy connection.
    """
    version, remote_dns = SOCKS_SCHEMES[proxy.scheme or ""]
    host = uri.host
    if uri.form is not UriForm.ABSOLUTE or not host:
        raise ConnectError(f"invalid URL, host is missing: {uri}")
    port = uri.port if uri.port is not None else default_port(uri.scheme)
    if version == 4 and ":" in host:
        raise ProxyError(f"SOCKS4 reaches IPv4 addresses only, not {host}")
    io, connected = await inner.connect(socks_proxy_uri(proxy))
    reader = _Reader(io)
    try:
        if version == 4:
            await _socks4(io, reader, host, port, remote_dns, auth[0] if auth else None, resolver)
        else:
            await _socks5(io, reader, host, port, remote_dns, auth, resolver)
    except BaseException as exc:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await io.aclose()
        if isinstance(exc, (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)):
            raise ProxyError("the SOCKS proxy connection failed during the handshake") from exc
        raise
    rest = reader.rest
    tunnel: IO = Upgraded(io, rest) if rest else io
    return tunnel, connected.replace(proxied=False)


@final
class SocksConnector:
    """Opens every connection through one SOCKS proxy (hyper-util's ``SocksV4`` / ``SocksV5``).

    The connection is a plain byte stream to the origin: a TLS connector
    wraps this one for ``https`` URLs. :class:`ProxyConnector` does the same
    per URL for ``socks*://`` proxies chosen by its matcher.

    Args:
        proxy: ``socks5://[user:password@]host[:port]`` (port 1080 by
            default). The scheme decides the version and where names are
            resolved: ``socks4`` and ``socks5`` here, ``socks4a`` and
            ``socks5h`` by the proxy (hyper's ``local_dns(false)``).
        inner: Opens the TCP connection to the proxy (default
            ``HttpConnector(enforce_http=False)``).
        username: The SOCKS5 username, or SOCKS4 user id (default: the
            URL's, percent-decoded).
        password: The SOCKS5 password (default: the URL's).
        resolver: Resolves target names for ``socks4`` / ``socks5`` (default
            a :class:`~hyper_util.client.legacy.connect.CachingResolver`).

    Raises:
        ValueError: Not a ``socks4``, ``socks4a``, ``socks5`` or ``socks5h`` URL.
    """

    __slots__ = ("_auth", "_inner", "_proxy", "_resolver")

    def __init__(
        self,
        proxy: str | Uri,
        inner: Connector | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        uri, _, raw = split_proxy_url(proxy)
        if uri.scheme not in SOCKS_SCHEMES:
            raise ValueError(f"not a SOCKS proxy URL: {proxy} (socks4, socks4a, socks5, socks5h)")
        if username is not None:
            raw = (username, password or "")
        self._proxy = uri
        self._auth = raw
        self._inner: Connector = inner if inner is not None else HttpConnector(enforce_http=False)
        self._resolver: Resolver = resolver if resolver is not None else CachingResolver()

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        """Connect to the proxy and through it to ``uri``'s origin (see :func:`open_socks`)."""
        return await open_socks(self._inner, self._proxy, self._auth, uri, self._resolver)

    def __repr__(self) -> str:
        return f"SocksConnector({str(self._proxy)!r}, inner={self._inner!r})"
