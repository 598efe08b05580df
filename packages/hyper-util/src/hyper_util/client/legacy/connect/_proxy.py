"""HTTP proxies: CONNECT tunnels, forwarding, and the connector that picks per URL.

What belongs here: :class:`TunnelConnector` (an HTTP CONNECT tunnel through
one proxy), :class:`ProxyConnector` (picks per URL with a
:class:`~._matcher.ProxyMatcher`: direct, tunnel, forwarding, or SOCKS),
and :class:`ProxyHeaders` (the headers a forwarding proxy wants on each
request).

Strategy: a tunnel is opened by writing the CONNECT head by hand and reading
the proxy's answer up to its blank line (at most 8 KiB, hyper-util's limit):
no HTTP connection object and no task for a one-shot exchange. Bytes the
proxy sends after its head belong to the tunnel and are replayed through
:class:`hyper_core.upgrade.Upgraded`. Forwarding (``http`` URLs through an
HTTP proxy) connects to the proxy and marks the connection ``proxied``: the
client then writes absolute-form targets and adds ``Proxy-Authorization``
from the :class:`ProxyHeaders` found in ``Connected.extra``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Final, final

import anyio

from hyper_core.http import Headers, Uri
from hyper_core.rt import IO, receive_or_eof, send_all
from hyper_core.upgrade import Upgraded
from hyper_util.client.legacy._errors import ConnectError, ProxyAuthRequiredError, ProxyError
from hyper_util.client.legacy.connect._dns import CachingResolver, Resolver
from hyper_util.client.legacy.connect._http import Connected, Connector, default_port
from hyper_util.client.legacy.connect._matcher import ProxyMatcher, split_proxy_url
from hyper_util.client.legacy.connect._socks import SOCKS_SCHEMES, open_socks

__all__ = ["MAX_TUNNEL_RESPONSE_HEAD", "ProxyConnector", "ProxyHeaders", "TunnelConnector"]

#: Most bytes of a proxy's CONNECT response head read before giving up
#: (hyper-util's Tunnel uses an 8 KiB buffer).
MAX_TUNNEL_RESPONSE_HEAD: Final = 8192


@final
@dataclasses.dataclass(frozen=True, slots=True)
class ProxyHeaders:
    """Headers a forwarding proxy wants on every request (``Proxy-Authorization``).

    Found in ``Connected.extra`` of a connection to a forwarding proxy; the
    client adds them to each HTTP/1 request it writes there.
    """

    headers: Headers


def _parse_tunnel_head(head: bytes) -> int:
    """Return the status of a proxy's CONNECT response head (up to its blank line)."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProxyError(f"invalid response from the proxy: {line[:100]!r}")
    return int(parts[1])


@final
class TunnelConnector:
    """Opens an HTTP CONNECT tunnel through one proxy to each requested origin.

    The tunnel is a plain byte stream to the origin: a TLS connector wraps
    this one for ``https`` URLs; a plain ``http`` URL through a tunnel gets
    origin-form requests, as on a direct connection.

    Args:
        proxy: The proxy's URL (``http://user:pass@proxy:3128``); credentials
            become ``Proxy-Authorization`` unless ``authorization`` is given.
        inner: The connector that reaches the proxy (an ``HttpConnector``).
        authorization: The ``Proxy-Authorization`` value to send.
        headers: More headers for the CONNECT request (``User-Agent``...).
    """

    __slots__ = ("_authorization", "_headers", "_inner", "_proxy")

    def __init__(
        self,
        proxy: str | Uri,
        inner: Connector,
        *,
        authorization: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self._proxy, auth, _ = split_proxy_url(proxy)
        if self._proxy.scheme not in ("http", "https"):
            raise ValueError(f"a CONNECT tunnel needs an http or https proxy, not {proxy}")
        self._inner = inner
        self._authorization = authorization if authorization is not None else auth
        self._headers = headers

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        """Connect to the proxy and ask it for a tunnel to ``uri``'s host and port.

        Returns:
            The tunnel (an IO to the origin) and the proxy connection's
            :class:`Connected` info (not ``proxied``: requests are written
            as on a direct connection).

        Raises:
            ConnectError: Reaching the proxy failed (from the inner
                connector), or ``uri`` has no host.
            ProxyAuthRequiredError: The proxy answered 407.
            ProxyError: Any other non-2xx answer, a malformed or too long
                answer, or the proxy closed before answering.

        Cancel safety: a cancelled connect closes the proxy connection.
        """
        return await _tunnel(self._inner, self._proxy, self._authorization, self._headers, uri)


async def _tunnel(
    inner: Connector, proxy: Uri, authorization: str | None, headers: Headers | None, uri: Uri
) -> tuple[IO, Connected]:
    host = uri.host
    if not host:
        raise ConnectError(f"invalid URL, host is missing: {uri}")
    port = uri.port if uri.port is not None else default_port(uri.scheme)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    io, connected = await inner.connect(proxy)
    try:
        lines = [f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode("ascii")]
        if authorization is not None:
            lines.append(b"Proxy-Authorization: " + authorization.encode("latin-1") + b"\r\n")
        if headers is not None:
            lines.extend(name + b": " + value + b"\r\n" for name, value in headers.raw())
        lines.append(b"\r\n")
        await send_all(io, [b"".join(lines)])
        buf = b""
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > MAX_TUNNEL_RESPONSE_HEAD:
                raise ProxyError("the proxy's response head is too long")
            data = await receive_or_eof(io, MAX_TUNNEL_RESPONSE_HEAD)
            if not data:
                raise ProxyError("the proxy closed the connection before answering CONNECT")
            buf += data
        status = _parse_tunnel_head(buf[:end])
        if status == 407:
            raise ProxyAuthRequiredError("the proxy requires authentication", status=407)
        if not 200 <= status < 300:
            raise ProxyError(f"the proxy refused the tunnel with status {status}", status=status)
    except BaseException as exc:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await io.aclose()
        if isinstance(exc, (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)):
            raise ProxyError("the proxy connection failed during CONNECT") from exc
        raise
    rest = buf[end + 4 :]
    tunnel: IO = Upgraded(io, rest) if rest else io
    return tunnel, connected.replace(proxied=False)


@final
class ProxyConnector:
    """Routes each connection directly, through a tunnel, a SOCKS proxy, or a forwarding proxy.

    For a URL the matcher sends to an HTTP proxy: ``http`` URLs go to the
    proxy itself, which forwards absolute-form requests (the connection is
    marked ``proxied`` and carries :class:`ProxyHeaders`); other schemes
    (``https``) get a CONNECT tunnel, over which a TLS connector wrapping
    this one does its handshake with the origin. A ``socks4``, ``socks4a``,
    ``socks5`` or ``socks5h`` proxy is a tunnel for every scheme (see
    :class:`~hyper_util.client.legacy.connect.SocksConnector`). Other URLs
    use ``inner`` directly.

    Args:
        inner: Opens the actual connections (to proxies and to origins).
        matcher: Picks the proxy per URL; default
            :meth:`ProxyMatcher.from_system` (the environment, then the
            operating system's settings), read once, now.
        tunnel_http: Tunnel ``http`` URLs through an HTTP proxy too,
            instead of forwarding them.
        resolver: Resolves target names for ``socks4`` / ``socks5`` proxies,
            which take addresses (default: a
            :class:`~hyper_util.client.legacy.connect.CachingResolver`).
    """

    __slots__ = ("_inner", "_matcher", "_resolver", "_tunnel_http")

    def __init__(
        self,
        inner: Connector,
        matcher: ProxyMatcher | None = None,
        *,
        tunnel_http: bool = False,
        resolver: Resolver | None = None,
    ) -> None:
        self._inner = inner
        self._matcher = matcher if matcher is not None else ProxyMatcher.from_system()
        self._tunnel_http = tunnel_http
        self._resolver: Resolver = resolver if resolver is not None else CachingResolver()

    @property
    def matcher(self) -> ProxyMatcher:
        """The matcher that picks the proxy for each URL."""
        return self._matcher

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        """Open a connection for ``uri``: direct, forwarded or tunnelled (see the class).

        Raises:
            ConnectError: As :class:`TunnelConnector`, :class:`SocksConnector`
                and the inner connector.
        """
        intercept = self._matcher.intercept(uri)
        if intercept is None:
            return await self._inner.connect(uri)
        if intercept.uri.scheme in SOCKS_SCHEMES:
            return await open_socks(
                self._inner, intercept.uri, intercept.raw_auth, uri, self._resolver
            )
        if uri.scheme == "http" and not self._tunnel_http:
            io, connected = await self._inner.connect(intercept.uri)
            headers = Headers()
            if intercept.authorization is not None:
                headers.append("proxy-authorization", intercept.authorization)
            connected.extra.insert(ProxyHeaders(headers))
            return io, connected.replace(proxied=True)
        return await _tunnel(self._inner, intercept.uri, intercept.authorization, None, uri)
