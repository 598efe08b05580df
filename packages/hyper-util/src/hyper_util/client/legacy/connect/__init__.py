"""Connectors for the pooled client: plain TCP, proxies, and the interface.

What belongs here: the re-exports. A connector is any object with
``async connect(uri) -> (io, Connected)`` (:class:`Connector`); they wrap
each other (a TLS connector around :class:`HttpConnector`, a
:class:`ProxyConnector` around either).
"""

from __future__ import annotations

from hyper_util.client.legacy.connect._http import (
    DEFAULT_HAPPY_EYEBALLS_TIMEOUT,
    Connected,
    Connection,
    Connector,
    HttpConnector,
    default_port,
)
from hyper_util.client.legacy.connect._proxy import (
    MAX_TUNNEL_RESPONSE_HEAD,
    Intercept,
    ProxyConnector,
    ProxyHeaders,
    ProxyMatcher,
    TunnelConnector,
)

__all__ = [
    "DEFAULT_HAPPY_EYEBALLS_TIMEOUT",
    "MAX_TUNNEL_RESPONSE_HEAD",
    "Connected",
    "Connection",
    "Connector",
    "HttpConnector",
    "Intercept",
    "ProxyConnector",
    "ProxyHeaders",
    "ProxyMatcher",
    "TunnelConnector",
    "default_port",
]
