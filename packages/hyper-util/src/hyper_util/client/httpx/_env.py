"""Proxies from the environment, as httpx reads them, for the hyper transports.

What belongs here: :func:`proxy_mounts_from_env`.

Why it exists: httpx resolves ``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY`` and ``NO_PROXY`` in the *client*, and only when it builds the
default transport itself: given ``transport=``, an ``httpx.Client`` uses no
environment proxy at all. Its proxied requests then go through transports
it mounts per URL pattern. This module builds the same mounts with hyper
transports, so that ``mounts=proxy_mounts_from_env(...)`` restores exactly
what httpx does with its own transport: the patterns and their order are
those of httpx's ``get_environment_proxies`` (``urllib.request.getproxies``
underneath, so the Windows registry and macOS settings count too), ``None``
for ``NO_PROXY`` entries (the client's own transport, direct).
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

__all__ = ["environment_proxies", "proxy_mounts_from_env"]

T = TypeVar("T")


def _is_ip(hostname: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(hostname.split("/")[0])
    except ValueError:
        return False
    return True


def environment_proxies() -> dict[str, str | None]:
    """URL pattern -> proxy URL (``None``: no proxy), from the environment, in httpx's order."""
    info = urllib.request.getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        url = info.get(scheme)
        if url:
            mounts[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for raw in info.get("no", "").split(","):
        hostname = raw.strip()
        if hostname == "*":
            return {}  # NO_PROXY=* turns every proxy off
        if not hostname:
            continue
        # curl's rules as httpx applies them: ".example.com" covers the
        # subdomains only, "example.com" the domain and its subdomains.
        if "://" in hostname:
            mounts[hostname] = None
        elif _is_ip(hostname, ipaddress.IPv4Address) or hostname.lower() == "localhost":
            mounts[f"all://{hostname}"] = None
        elif _is_ip(hostname, ipaddress.IPv6Address):
            mounts[f"all://[{hostname}]"] = None
        else:
            mounts[f"all://*{hostname}"] = None
    return mounts


def proxy_mounts_from_env(transport: Callable[..., T], /, **options: Any) -> dict[str, T | None]:
    """Build httpx's environment proxies as ``mounts``, each proxy on a hyper transport.

    Example::

        client = httpx.AsyncClient(
            transport=AsyncHyperTransport(http2=True),
            mounts=proxy_mounts_from_env(AsyncHyperTransport, http2=True),
        )

    Args:
        transport: The transport class (``AsyncHyperTransport`` or
            ``HyperTransport``), called as ``transport(proxy=..., **options)``
            once per proxy.
        options: The other transport arguments, as for the main transport.

    Returns:
        URL pattern -> transport for the proxied patterns, ``None`` for the
        ``NO_PROXY`` ones (the client's ``transport``, directly). Empty
        without proxy variables.
    """
    made: dict[str, T] = {}
    mounts: dict[str, T | None] = {}
    for pattern, url in environment_proxies().items():
        if url is None:
            mounts[pattern] = None
            continue
        if url not in made:
            made[url] = transport(proxy=httpx.Proxy(url), **options)
        mounts[pattern] = made[url]
    return mounts
