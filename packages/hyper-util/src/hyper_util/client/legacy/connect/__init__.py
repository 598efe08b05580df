"""Connectors for the pooled client: plain TCP, DNS resolvers, proxies, and the interface.

What belongs here: the re-exports. A connector is any object with
``async connect(uri) -> (io, Connected)`` (:class:`Connector`); they wrap
each other (a TLS connector around :class:`HttpConnector`, a
:class:`ProxyConnector` or :class:`SocksConnector` around either).
"""

from __future__ import annotations

from hyper_util.client.legacy.connect._dns import (
    DEFAULT_DNS_CACHE_SIZE,
    DEFAULT_DNS_CACHE_TTL,
    CachingResolver,
    GaiResolver,
    Resolver,
    SocketAddress,
)
from hyper_util.client.legacy.connect._http import (
    DEFAULT_HAPPY_EYEBALLS_TIMEOUT,
    Connected,
    Connection,
    Connector,
    HttpConnector,
    default_port,
)
from hyper_util.client.legacy.connect._matcher import PROXY_SCHEMES, Intercept, ProxyMatcher
from hyper_util.client.legacy.connect._proxy import (
    MAX_TUNNEL_RESPONSE_HEAD,
    ProxyConnector,
    ProxyHeaders,
    TunnelConnector,
)
from hyper_util.client.legacy.connect._socks import DEFAULT_SOCKS_PORT, SocksConnector

__all__ = [
    "DEFAULT_DNS_CACHE_SIZE",
    "DEFAULT_DNS_CACHE_TTL",
    "DEFAULT_HAPPY_EYEBALLS_TIMEOUT",
    "DEFAULT_SOCKS_PORT",
    "MAX_TUNNEL_RESPONSE_HEAD",
    "PROXY_SCHEMES",
    "CachingResolver",
    "Connected",
    "Connection",
    "Connector",
    "GaiResolver",
    "HttpConnector",
    "Intercept",
    "ProxyConnector",
    "ProxyHeaders",
    "ProxyMatcher",
    "Resolver",
    "SocketAddress",
    "SocksConnector",
    "TunnelConnector",
    "default_port",
]
