"""``--proxy-headers``: the client, scheme and host a trusted reverse proxy reports.

What belongs here: :class:`ProxyHeadersMiddleware`, an ASGI middleware that
rewrites a request's ``client``, ``scheme`` and ``Host`` header from the
headers a reverse proxy adds (``X-Forwarded-For``, ``X-Forwarded-Proto``,
``X-Forwarded-Host``, or RFC 7239 ``Forwarded``), and the parsing of
``--forwarded-allow-ips`` (:class:`TrustedHosts`).

Strategy:

* **Only a trusted peer is believed.** The headers are read only when the
  connection's peer (``scope["client"]``) is in the allow list: IP
  addresses, CIDR networks, ``*`` (everything), other literal strings
  (matched against a non-IP client host as given), and ``unix:`` for
  connections over a Unix socket (no client address). The default is
  ``$FORWARDED_ALLOW_IPS``, else ``127.0.0.1``, as uvicorn has it.
* **The right hop, from the right.** Each proxy appends the address it
  received the request from. Walking the list from the end, every address
  that is itself a trusted proxy is skipped; the first one that is not is
  the client (if all are trusted, the first in the list is). A client can
  prepend whatever it likes, but never past a trusted proxy.
* **One header family per deployment.** A proxy that maintains
  ``X-Forwarded-*`` passes a client's own ``Forwarded`` header through
  untouched (and the other way round), so reading both would let a client
  forge its address. ``mode`` says which family the proxy writes:
  ``"x-forwarded"`` (nginx, HAProxy, Traefik, cloud load balancers; the
  default) or ``"forwarded"`` (RFC 7239).
* **Scheme and host of the same hop.** ``Forwarded``'s ``proto=`` and
  ``host=`` come from the element that names the chosen client. For
  ``X-Forwarded-Proto``/``-Host``, the entry at the chosen hop's position
  is used when the list is as long as ``X-Forwarded-For``, else the last
  entry (the nearest proxy's). ``http``/``https``/``ws``/``wss`` are
  accepted and mapped to the scope type (``https`` -> ``wss`` for a
  WebSocket); any other value is ignored.
* **Cheap when it does nothing.** Without ``--proxy-headers`` the
  middleware is not installed. With it, a request from an untrusted peer
  costs one dictionary lookup (trust decisions are cached per peer
  address); a trusted one, one pass over the headers. A scope is copied
  only when something in it changes.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_FORWARDED_ALLOW_IPS",
    "ProxyHeadersMiddleware",
    "TrustedHosts",
]

# The ASGI callable types, spelled out here so that this module stands alone.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The allow list when neither an argument nor ``$FORWARDED_ALLOW_IPS`` gives one.
DEFAULT_FORWARDED_ALLOW_IPS: Final = "127.0.0.1"
#: The allow-list entry that trusts connections over a Unix socket.
UNIX_PEER: Final = "unix:"
# Trust decisions cached per peer address; cleared when full (peers are few
# behind a proxy, and many only when untrusted clients connect directly).
_CACHE_SIZE = 1024
# A value longer than any host name or address is never trusted, nor cached.
_MAX_HOST = 253

# What a forwarded host may be: a name (letters, digits, "-", ".", "_", "~",
# percent-escapes) or a bracketed IPv6 literal, and a port. Anything else
# (a comma, a path, user info) is ignored, never put into the headers.
_HOST_RE: Final = re.compile(r"(?:[A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
# RFC 7239 forwarded-pair (token "=" token / quoted-string), or an element's end.
_FORWARDED_TOKEN: Final = re.compile(r'([^=;,\s"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s"]*)|,')
_QUOTED_PAIR: Final = re.compile(r"\\(.)")
# What a proxy writes for a client it cannot name (RFC 7239 section 6.3).
_UNKNOWN: Final = "unknown"

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES: Final = {
    "http": {"http": "http", "https": "https", "ws": "http", "wss": "https"},
    "websocket": {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"},
}


def _ip(text: str) -> _IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedHosts:
    """The peers whose proxy headers are believed (``--forwarded-allow-ips``).

    Args:
        hosts: Comma-separated text or a list of entries: ``*``, IP
            addresses, CIDR networks (``10.0.0.0/8``), ``unix:`` (a peer on
            a Unix socket), or other literals matched exactly against a
            client host that is not an IP address.

    Raises:
        ValueError: An entry with a ``/`` is not a valid network.
    """

    __slots__ = ("_addresses", "_cache", "_literals", "_networks", "always", "unix")

    def __init__(self, hosts: str | Iterable[str]) -> None:
        entries = hosts.split(",") if isinstance(hosts, str) else hosts
        self._addresses: set[_IPAddress] = set()
        self._networks: list[_IPNetwork] = []
        self._literals: set[str] = set()
        self._cache: dict[str, bool] = {}
        self.always = False
        self.unix = False
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                self.always = True
            elif entry == UNIX_PEER:
                self.unix = True
            elif "/" in entry:
                try:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"not an IP network: {entry!r}") from None
            elif (address := _ip(entry)) is not None:
                self._addresses.add(address)
            else:
                self._literals.add(entry)

    @classmethod
    def from_environment(cls) -> TrustedHosts:
        """``$FORWARDED_ALLOW_IPS`` if set, else ``DEFAULT_FORWARDED_ALLOW_IPS`` (127.0.0.1)."""
        return cls(os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS))

    def trusts_peer(self, client: Any) -> bool:
        """Whether a scope's ``client`` (``(host, port)``, or None on a Unix socket) is trusted."""
        if self.always:
            return True
        if not client:
            return self.unix
        return self.trusts(client[0])

    def trusts(self, host: str) -> bool:
        """Whether ``host`` (an address or a literal) is a trusted proxy."""
        if self.always:
            return True
        known = self._cache.get(host)
        if known is not None:
            return known
        if len(host) > _MAX_HOST:
            return False
        address = _ip(host)
        if address is None:
            trusted = host in self._literals
        else:
            trusted = address in self._addresses or any(address in n for n in self._networks)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[host] = trusted
        return trusted


def _split_host_port(value: str) -> tuple[str, int]:
    """``host``, ``a.b.c.d:port``, ``[v6]`` or ``[v6]:port`` -> (host, port or 0)."""
    if value.startswith("["):
        end = value.find("]")
        if end > 0:
            rest = value[end + 1 :]
            port = rest[1:] if rest.startswith(":") else ""
            return value[1:end], int(port) if port.isdigit() else 0
        return value, 0
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, int(port) if port.isdigit() else 0
    return value, 0


def _items(values: list[bytes]) -> list[str]:
    """The comma-separated items of one or more field lines, stripped."""
    return [item.strip() for item in b",".join(values).decode("latin-1").split(",")]


def _pick(items: list[str], trusted: TrustedHosts) -> int:
    """The index of the client hop: the last item that is not a trusted proxy."""
    for index in range(len(items) - 1, -1, -1):
        if not trusted.trusts(_split_host_port(items[index])[0]):
            return index
    return 0


def _forwarded_elements(values: list[bytes]) -> list[dict[str, str]]:
    """RFC 7239 elements, each a dict of its lower-cased parameters (quotes removed).

    One regular expression scan (the header can be as long as the server's
    field limit, and arrives through the proxy from the client): a pair, or
    a comma that ends an element; anything else between them is skipped.
    """
    elements: list[dict[str, str]] = [{}]
    for match in _FORWARDED_TOKEN.finditer(b",".join(values).decode("latin-1")):
        name, value = match[1], match[2]
        if name is None:
            elements.append({})
            continue
        if value.startswith('"'):
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        elements[-1][name.lower()] = value
    return elements


class ProxyHeadersMiddleware:
    """Take ``client``, ``scheme`` and ``Host`` from a trusted proxy's headers.

    Wrap the application: ``app = ProxyHeadersMiddleware(app)``. Requests
    (``http`` and ``websocket`` scopes) from a trusted peer get:

    * ``scope["client"]``: the client the proxy saw (``(host, port)``, port
      0 when the proxy did not say; ``None`` when it wrote ``unknown``);
    * ``scope["scheme"]``: from ``X-Forwarded-Proto`` or ``proto=``
      (``ws``/``wss`` for a WebSocket);
    * the ``host`` header: from ``X-Forwarded-Host`` or ``host=``, so apps
      build their URLs with the name the client used.

    Other requests, and requests without the headers, pass through as they
    came.

    Args:
        app: The ASGI application.
        trusted_hosts: The peers to believe (see :class:`TrustedHosts`);
            default ``$FORWARDED_ALLOW_IPS``, else ``127.0.0.1``.
        mode: Which headers the proxy in front writes: ``"x-forwarded"``
            (``X-Forwarded-For``/``-Proto``/``-Host``) or ``"forwarded"``
            (RFC 7239). The other family is ignored: a proxy passes the
            headers it does not write through from the client unchanged.

    Raises:
        ValueError: A bad ``trusted_hosts`` entry or ``mode``.
    """

    def __init__(
        self,
        app: ASGIApp,
        trusted_hosts: str | Iterable[str] | TrustedHosts | None = None,
        *,
        mode: Literal["x-forwarded", "forwarded"] = "x-forwarded",
    ) -> None:
        if mode not in ("x-forwarded", "forwarded"):
            raise ValueError(f"mode must be 'x-forwarded' or 'forwarded', not {mode!r}")
        if trusted_hosts is None:
            trusted_hosts = TrustedHosts.from_environment()
        elif not isinstance(trusted_hosts, TrustedHosts):
            trusted_hosts = TrustedHosts(trusted_hosts)
        self.app = app
        self.trusted_hosts = trusted_hosts
        self.mode = mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the scope if its peer is trusted, then call the app."""
        kind = scope["type"]
        if (kind == "http" or kind == "websocket") and self.trusted_hosts.trusts_peer(
            scope.get("client")
        ):
            if self.mode == "x-forwarded":
                scope = self._x_forwarded(scope, kind)
            else:
                scope = self._forwarded(scope, kind)
        await self.app(scope, receive, send)

    def _x_forwarded(self, scope: Scope, kind: str) -> Scope:
        fors: list[bytes] = []
        protos: list[bytes] = []
        hosts: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                fors.append(value)
            elif name == b"x-forwarded-proto":
                protos.append(value)
            elif name == b"x-forwarded-host":
                hosts.append(value)
        if not (fors or protos or hosts):
            return scope
        client = ""
        hop = -1  # no X-Forwarded-For: the nearest proxy's entries
        hops = 0
        if fors:
            items = _items(fors)
            hop = _pick(items, self.trusted_hosts)
            hops = len(items)
            client = items[hop]
        proto = _at_hop(_items(protos), hop, hops) if protos else None
        host = _at_hop(_items(hosts), hop, hops) if hosts else None
        return _rewrite(scope, kind, client, proto, host)

    def _forwarded(self, scope: Scope, kind: str) -> Scope:
        values = [value for name, value in scope["headers"] if name == b"forwarded"]
        if not values:
            return scope
        elements = _forwarded_elements(values)
        chosen = elements[0]
        for element in reversed(elements):
            node = _split_host_port(element.get("for", ""))[0]
            if not self.trusted_hosts.trusts(node):
                chosen = element
                break
        return _rewrite(scope, kind, chosen.get("for", ""), chosen.get("proto"), chosen.get("host"))


def _at_hop(items: list[str], hop: int, hops: int) -> str:
    # Lists as long as X-Forwarded-For line up with it, hop for hop; any
    # other list is trusted only for its last entry (the nearest proxy's).
    return items[hop] if len(items) == hops else items[-1]


def _rewrite(scope: Scope, kind: str, client: str, proto: str | None, host: str | None) -> Scope:
    """The scope with what the chosen hop says; ``client`` ``""``: the proxy did not say."""
    changes: dict[str, Any] = {}
    if client:
        changes["client"] = None if client.lower() == _UNKNOWN else _split_host_port(client)
    if proto:
        scheme = _SCHEMES[kind].get(proto.lower())
        if scheme is not None:
            changes["scheme"] = scheme
    if host and _HOST_RE.fullmatch(host):
        changes["headers"] = _with_host(scope["headers"], host.encode("ascii"))
    if not changes:
        return scope
    return {**scope, **changes}


def _with_host(headers: Iterable[tuple[bytes, bytes]], host: bytes) -> list[tuple[bytes, bytes]]:
    """The header list with its (first) ``host`` field's value replaced, in place."""
    result: list[tuple[bytes, bytes]] = []
    replaced = False
    for name, value in headers:
        if name != b"host":
            result.append((name, value))
        elif not replaced:
            result.append((b"host", host))
            replaced = True
    if not replaced:
        result.append((b"host", host))
    return result
