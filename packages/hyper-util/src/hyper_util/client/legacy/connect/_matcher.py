"""Which proxy a URL goes through: :class:`ProxyMatcher` (hyper-util's ``Matcher``).

What belongs here: parsing proxy URLs (``http``, ``https``, ``socks4``,
``socks4a``, ``socks5``, ``socks5h``, with credentials), the ``NO_PROXY``
rules, and reading them from the environment or the system
(:meth:`ProxyMatcher.from_env`, :meth:`ProxyMatcher.from_system`).

Rules (curl's, where hyper-util and curl differ the difference is named):

1. ``http_proxy`` / ``https_proxy`` / ``all_proxy`` / ``no_proxy`` are read
   lower case first, then upper case (curl; hyper-util reads upper case
   first). An empty value counts as unset.
2. ``HTTP_PROXY`` in upper case is ignored when ``REQUEST_METHOD`` is set:
   under CGI a request's ``Proxy:`` header becomes that variable
   ("httpoxy"). Only that one: no header can set the others (hyper-util
   drops every proxy under CGI).
3. ``NO_PROXY`` is comma-separated: ``*`` (everything), IP addresses and
   CIDR networks (IPv6 with or without brackets), host names (each covering
   its subdomains, never a mere suffix: ``example.com`` does not cover
   ``badexample.com``; a leading ``.`` or ``*.`` and a trailing ``.`` are
   ignored), any of them with ``:port`` to apply to that port only.
4. A proxy URL without a scheme means ``http://``; ``user:password@`` is
   percent-decoded, and becomes ``Proxy-Authorization: Basic`` for HTTP
   proxies and the SOCKS credentials for SOCKS ones.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Final, final

from hyper_core.http import Uri, UriForm
from hyper_util.client.legacy.connect._http import default_port

__all__ = ["PROXY_SCHEMES", "Intercept", "ProxyMatcher", "split_proxy_url"]

#: The proxy URL schemes understood.
PROXY_SCHEMES: Final = frozenset({"http", "https", "socks4", "socks4a", "socks5", "socks5h"})

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _basic_auth(user: str, password: str) -> str:
    raw = f"{user}:{password}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


def split_proxy_url(url: str | Uri) -> tuple[Uri, str | None, tuple[str, str] | None]:
    """Parse a proxy URL into ``(uri without credentials, Basic value, (user, password))``.

    The Basic value is set for ``http``/``https`` proxies, the raw pair for
    SOCKS ones (rule 4 of the module docstring).

    Raises:
        ValueError: No host, or a scheme not in :data:`PROXY_SCHEMES`.
    """
    text = str(url).strip()
    if "://" not in text:
        text = "http://" + text  # curl's rule: a bare host:port means http
    uri = Uri(text)
    if uri.form is not UriForm.ABSOLUTE or not uri.host:
        raise ValueError(f"invalid proxy URL {text!r}: needs a host")
    scheme = (uri.scheme or "").lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(
            f"unsupported proxy scheme {uri.scheme!r} (one of {', '.join(sorted(PROXY_SCHEMES))})"
        )
    authority = uri.authority or ""
    userinfo, at, hostport = authority.rpartition("@")
    basic: str | None = None
    raw: tuple[str, str] | None = None
    if at:
        user, _, password = userinfo.partition(":")
        user, password = urllib.parse.unquote(user), urllib.parse.unquote(password)
        if scheme in ("http", "https"):
            basic = _basic_auth(user, password)
        else:
            raw = (user, password)
    clean = Uri.from_parts(scheme=scheme, authority=hostport, path_and_query="/")
    return clean, basic, raw


@final
@dataclasses.dataclass(frozen=True, slots=True)
class Intercept:
    """The proxy chosen for one URL.

    Attributes:
        uri: The proxy's URL, without credentials (``http://proxy:3128/``,
            ``socks5h://proxy:1080/``).
        authorization: For an HTTP proxy, the ``Proxy-Authorization`` value
            from the URL's userinfo (``Basic ...``), or ``None``.
        raw_auth: For a SOCKS proxy, ``(username, password)`` from the URL's
            userinfo, or ``None`` (hyper-util's ``raw_auth``).
    """

    uri: Uri
    authorization: str | None = dataclasses.field(default=None, repr=False)
    raw_auth: tuple[str, str] | None = dataclasses.field(default=None, repr=False)


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``[v6]`` or a bare host / IPv6 address."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None


class _NoProxy:
    """The ``NO_PROXY`` rules (rule 3 of the module docstring)."""

    __slots__ = ("_all", "_domains", "_networks")

    def __init__(self, spec: str | None) -> None:
        self._all = False
        self._domains: list[tuple[str, int | None]] = []
        self._networks: list[tuple[_Network, int | None]] = []
        for raw in (spec or "").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self._all = True
                continue
            host, port = _split_port(entry)
            try:
                self._networks.append((ipaddress.ip_network(host, strict=False), port))
                continue
            except ValueError:
                pass
            domain = host.removeprefix("*").lstrip(".").rstrip(".")
            if domain:
                self._domains.append((domain, port))

    def matches(self, host: str, port: int) -> bool:
        if self._all:
            return True
        host = host.lower().strip("[]").rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            return any(
                address in network and (wanted is None or wanted == port)
                for network, wanted in self._networks
            )
        for domain, wanted in self._domains:
            if wanted is not None and wanted != port:
                continue
            if host == domain or host.endswith("." + domain):
                return True
        return False


def _intercept(url: str | Uri | None) -> Intercept | None:
    if url is None:
        return None
    uri, basic, raw = split_proxy_url(url)
    return Intercept(uri, basic, raw)


@final
class ProxyMatcher:
    """Chooses the proxy for each URL (hyper-util's ``Matcher``).

    Args:
        http: Proxy for ``http`` (and ``ws``) URLs.
        https: Proxy for ``https`` (and ``wss``) URLs.
        all: Proxy for URLs that ``http`` / ``https`` do not cover.
        no_proxy: URLs to reach directly, in curl's ``NO_PROXY`` syntax (see
            the module's rule 3): ``"localhost,.internal,10.0.0.0/8,[::1]:8080"``.

    Proxy URLs are ``http://``, ``https://``, ``socks4://``, ``socks4a://``,
    ``socks5://`` or ``socks5h://``, and may carry ``user:password@``; a
    bare ``host:port`` means ``http://``.

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
        """Read ``http_proxy``, ``https_proxy``, ``all_proxy`` and ``no_proxy``, either case.

        Lower case wins over upper case (curl); upper-case ``HTTP_PROXY`` is
        ignored under CGI (``REQUEST_METHOD`` set); empty values count as
        unset. See the module docstring for the rules.

        Args:
            environ: The variables to read (default ``os.environ``).

        Raises:
            ValueError: A variable holds an invalid proxy URL.
        """
        return cls(**_from_env(os.environ if environ is None else environ))

    @classmethod
    def from_system(
        cls,
        environ: Mapping[str, str] | None = None,
        system: Mapping[str, str] | None = None,
    ) -> ProxyMatcher:
        """The environment's settings (:meth:`from_env`), then the system's for what is unset.

        The system settings are what ``urllib.request`` reads from the
        operating system: macOS's network configuration and Windows'
        Internet Settings (on other systems there are none beyond the
        environment). A value from the environment always wins.

        Args:
            environ: The variables to read (default ``os.environ``).
            system: The system's settings as ``urllib.request.getproxies()``
                maps them (``{"http": ..., "https": ..., "no": ...}``);
                default: read from the operating system.
        """
        settings = _from_env(os.environ if environ is None else environ)
        for key, value in (_system_proxies() if system is None else system).items():
            name = {"http": "http", "https": "https", "all": "all", "no": "no_proxy"}.get(key)
            if name is not None and value and settings.get(name) is None:
                settings[name] = value
        return cls(**settings)

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


def _from_env(env: Mapping[str, str]) -> dict[str, str | None]:
    def read(name: str, *, upper: bool = True) -> str | None:
        value = env.get(name) or (env.get(name.upper()) if upper else None)
        return value or None

    cgi = "REQUEST_METHOD" in env
    return {
        "http": read("http_proxy", upper=not cgi),
        "https": read("https_proxy"),
        "all": read("all_proxy"),
        "no_proxy": read("no_proxy"),
    }


def _system_proxies() -> dict[str, str]:
    # urllib reads the OS settings only on these two; elsewhere its
    # getproxies() is the environment again, already read (with rule 2).
    if sys.platform == "darwin":
        return dict(urllib.request.getproxies_macosx_sysconf())  # type: ignore[attr-defined]
    if sys.platform == "win32":
        return dict(urllib.request.getproxies_registry())  # type: ignore[attr-defined]
    return {}
