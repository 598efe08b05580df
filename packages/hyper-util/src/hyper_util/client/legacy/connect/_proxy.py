"""HTTP proxies: which URLs go through one, CONNECT tunnels, and forwarding.

What belongs here: :class:`ProxyMatcher` (the proxy for a URL, from
arguments or from the ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` /
``NO_PROXY`` environment variables, curl's rules), :class:`TunnelConnector`
(an HTTP CONNECT tunnel through one proxy), :class:`ProxyConnector` (picks
per URL: direct, tunnel, or forwarding), and :class:`ProxyHeaders` (the
headers a forwarding proxy wants on each request).

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

import base64
import contextlib
import dataclasses
import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from typing import Final, final

import anyio

from hyper_core.http import Headers, Uri, UriForm
from hyper_core.rt import IO, receive_or_eof, send_all
from hyper_core.upgrade import Upgraded
from hyper_util.client.legacy._errors import ConnectError, ProxyAuthRequiredError, ProxyError
from hyper_util.client.legacy.connect._http import Connected, Connector, default_port

__all__ = [
    "MAX_TUNNEL_RESPONSE_HEAD",
    "Intercept",
    "ProxyConnector",
    "ProxyHeaders",
    "ProxyMatcher",
    "TunnelConnector",
]

#: Most bytes of a proxy's CONNECT response head read before giving up
#: (hyper-util's Tunnel uses an 8 KiB buffer).
MAX_TUNNEL_RESPONSE_HEAD: Final = 8192


def _basic_auth(userinfo: str) -> str:
    user, _, password = userinfo.partition(":")
    raw = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


def _split_proxy_url(url: str | Uri) -> tuple[Uri, str | None]:
    """Parse a proxy URL; return it without userinfo and the Basic credentials."""
    text = str(url)
    if "://" not in text:
        text = "http://" + text  # curl's rule: a bare host:port means http
    uri = Uri(text)
    if uri.form is not UriForm.ABSOLUTE or not uri.host:
        raise ValueError(f"invalid proxy URL {text!r}: needs a host")
    if uri.scheme not in ("http", "https"):
        raise ValueError(f"unsupported proxy scheme {uri.scheme!r} (http or https)")
    authority = uri.authority or ""
    userinfo, at, hostport = authority.rpartition("@")
    auth = _basic_auth(userinfo) if at else None
    clean = Uri.from_parts(scheme=uri.scheme, authority=hostport, path_and_query="/")
    return clean, auth


@final
@dataclasses.dataclass(frozen=True, slots=True)
class ProxyHeaders:
    """Headers a forwarding proxy wants on every request (``Proxy-Authorization``).

    Found in ``Connected.extra`` of a connection to a forwarding proxy; the
    client adds them to each HTTP/1 request it writes there.
    """

    headers: Headers


@final
@dataclasses.dataclass(frozen=True, slots=True)
class Intercept:
    """The proxy chosen for one URL.

    Attributes:
        uri: The proxy's URL, without credentials (``http://proxy:3128/``).
        authorization: The ``Proxy-Authorization`` value from the proxy URL's
            userinfo (``Basic ...``), or ``None``.
    """

    uri: Uri
    authorization: str | None = None


class _NoProxy:
    """The ``NO_PROXY`` rules, as curl reads them."""

    __slots__ = ("_all", "_domains", "_networks")

    def __init__(self, spec: str | None) -> None:
        self._all = False
        self._domains: list[tuple[str, int | None]] = []
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in (spec or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self._all = True
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host, port = entry, None
            if entry.count(":") == 1:
                host, _, port_text = entry.partition(":")
                port = int(port_text) if port_text.isdigit() else None
            self._domains.append((host.lstrip("*").lstrip("."), port))

    def matches(self, host: str, port: int) -> bool:
        if self._all:
            return True
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in self._networks):
            return True
        for domain, domain_port in self._domains:
            if domain_port is not None and domain_port != port:
                continue
            # "example.com" covers example.com and its subdomains, never
            # "badexample.com".
            if host == domain or host.endswith("." + domain):
                return True
        return False


@final
class ProxyMatcher:
    """Chooses the proxy for each URL.

    Args:
        http: Proxy for ``http`` URLs.
        https: Proxy for ``https`` URLs.
        all: Proxy for URLs that ``http`` / ``https`` do not cover.
        no_proxy: curl's ``NO_PROXY`` syntax: comma-separated hosts (each
            covering its subdomains; a leading ``.`` or ``*.`` is allowed),
            ``host:port``, IP addresses, CIDR networks, or ``*`` for all.

    Proxy URLs may carry ``user:password@``, sent as Basic
    ``Proxy-Authorization``; a bare ``host:port`` means ``http://``.

    Raises:
        ValueError: A proxy URL is invalid.
    """

    __slots__ = ("_all", "_http", "_https", "_no_proxy")

    def __init__(
        self,
        *,
        http: str | Uri | None = None,
        https: str | Uri | None = None,
        all: str | Uri | None = None,  # curl's and hyper-util's name
        no_proxy: str | None = None,
    ) -> None:
        self._http = _intercept(http)
        self._https = _intercept(https)
        self._all = _intercept(all)
        self._no_proxy = _NoProxy(no_proxy)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxyMatcher:
        """Read ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``.

        Lowercase names win over uppercase ones, as in curl; ``HTTP_PROXY``
        in uppercase is ignored when ``REQUEST_METHOD`` is set (a CGI
        request could set it from a ``Proxy:`` header: "httpoxy"). Empty
        values count as unset.

        Args:
            environ: The variables to read (default ``os.environ``).
        """
        env = os.environ if environ is None else environ

        def read(name: str, *, upper: bool = True) -> str | None:
            value = env.get(name.lower()) or (env.get(name.upper()) if upper else None)
            return value or None

        cgi = "REQUEST_METHOD" in env
        return cls(
            http=read("http_proxy", upper=not cgi),
            https=read("https_proxy"),
            all=read("all_proxy"),
            no_proxy=read("no_proxy"),
        )

    def intercept(self, uri: Uri) -> Intercept | None:
        """Return the proxy to use for ``uri``, or ``None`` to connect directly."""
        scheme = uri.scheme or "http"
        chosen = self._https if scheme in ("https", "wss") else self._http
        if chosen is None:
            chosen = self._all
        if chosen is None or not uri.host:
            return None
        port = uri.port if uri.port is not None else default_port(scheme)
        if self._no_proxy.matches(uri.host, port):
            return None
        return chosen

    def __repr__(self) -> str:
        return f"ProxyMatcher(http={self._http}, https={self._https}, all={self._all})"


def _intercept(url: str | Uri | None) -> Intercept | None:
    if url is None:
        return None
    uri, auth = _split_proxy_url(url)
    return Intercept(uri, auth)


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
        self._proxy, auth = _split_proxy_url(proxy)
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
    """Routes each connection directly, through a tunnel, or to a forwarding proxy.

    For a URL the matcher proxies: ``http`` URLs go to the proxy itself,
    which forwards absolute-form requests (the connection is marked
    ``proxied`` and carries :class:`ProxyHeaders`); other schemes (``https``)
    get a CONNECT tunnel, over which a TLS connector wrapping this one does
    its handshake with the origin. Other URLs use ``inner`` directly.

    Args:
        inner: Opens the actual connections (to proxies and to origins).
        matcher: Picks the proxy per URL; default
            :meth:`ProxyMatcher.from_env`, read once, now.
        tunnel_http: Tunnel ``http`` URLs too, instead of forwarding them.
    """

    __slots__ = ("_inner", "_matcher", "_tunnel_http")

    def __init__(
        self,
        inner: Connector,
        matcher: ProxyMatcher | None = None,
        *,
        tunnel_http: bool = False,
    ) -> None:
        self._inner = inner
        self._matcher = matcher if matcher is not None else ProxyMatcher.from_env()
        self._tunnel_http = tunnel_http

    @property
    def matcher(self) -> ProxyMatcher:
        """The matcher that picks the proxy for each URL."""
        return self._matcher

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        """Open a connection for ``uri``: direct, forwarded or tunnelled (see the class).

        Raises:
            ConnectError: As :class:`TunnelConnector` and the inner connector.
        """
        intercept = self._matcher.intercept(uri)
        if intercept is None:
            return await self._inner.connect(uri)
        if uri.scheme == "http" and not self._tunnel_http:
            io, connected = await self._inner.connect(intercept.uri)
            headers = Headers()
            if intercept.authorization is not None:
                headers.append("proxy-authorization", intercept.authorization)
            connected.extra.insert(ProxyHeaders(headers))
            return io, connected.replace(proxied=True)
        return await _tunnel(self._inner, intercept.uri, intercept.authorization, None, uri)
