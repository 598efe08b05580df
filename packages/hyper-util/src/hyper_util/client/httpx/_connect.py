"""The connector chain behind the httpx transports: httpx's options as connectors.

What belongs here: :func:`build_connector`, which turns the arguments of
httpx's ``HTTPTransport`` (``verify``, ``cert``, ``proxy``, ``uds``,
``local_address``, ``retries``, ``socket_options``, ``http1``/``http2``)
into one connector for the pooled client, and the small connectors it
stacks; plus :data:`SNI_HOSTNAME`, how a request's ``sni_hostname`` reaches
the TLS handshake, and :class:`StreamInfo`, how the opened stream reaches
``response.extensions["network_stream"]``.

Strategy: each option is one thin wrapper, stacked only when the option is
used, in the order httpcore applies them: the socket (TCP with
``local_address``, or a Unix socket), its options, the proxy route
(forwarding for ``http``, a CONNECT tunnel otherwise), TLS (hyper-tls, with
httpx's own ``create_ssl_context`` so that ``verify``, ``cert`` and the
``SSL_CERT_FILE``/``SSL_CERT_DIR`` variables mean exactly what they mean in
httpx), retries around all of it, and on top the piece that reads the SNI
name and records the stream. The connect runs in the task of the request
that needs it (the pooled client connects inline), so a context variable
carries the per-request SNI name down without changing the connector
interface.
"""

from __future__ import annotations

import base64
import contextvars
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, TypeAlias, final

import anyio
import httpx
from anyio.abc import SocketAttribute

from hyper_core.http import Headers, Uri
from hyper_core.rt import IO
from hyper_util.client.legacy import ConnectError, ProxyError
from hyper_util.client.legacy.connect import (
    Connected,
    Connector,
    HttpConnector,
    ProxyHeaders,
    SocksConnector,
    TunnelConnector,
)
from hyper_util.rt import connect_unix

if TYPE_CHECKING:
    import ssl

    from hyper_tls import HttpsConnector

__all__ = ["SNI_HOSTNAME", "SocketOption", "StreamInfo", "TransportConnector", "build_connector"]

#: httpx's ``SOCKET_OPTION``: ``setsockopt`` arguments.
SocketOption: TypeAlias = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

#: The SNI name of the request being connected for (its ``sni_hostname``).
SNI_HOSTNAME: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "hyper_util_httpx_sni_hostname", default=None
)

#: httpcore's retry backoff: 0 s, then 0.5 s doubling.
_RETRY_BACKOFF: Final = 0.5

_HYPER_TLS_MISSING: Final = (
    "https needs hyper-tls, which is not installed: pip install hyper-tls "
    "(it provides the TLS connector of hyper-util's client)"
)


@final
class StreamInfo:
    """The stream a connection was opened with, kept in ``Connected.extra``."""

    __slots__ = ("io",)

    def __init__(self, io: IO) -> None:
        self.io = io


def _load_hyper_tls() -> Any:
    try:
        import hyper_tls
    except ModuleNotFoundError:
        return None
    return hyper_tls


@final
class _UnixConnector:
    """Every origin is reached through one Unix socket (httpx's ``uds``)."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        try:
            stream = await connect_unix(self._path)
        except OSError as exc:
            raise ConnectError(f"connecting to the Unix socket {self._path} failed: {exc}") from exc
        io: IO = stream
        return io, Connected()


@final
class _SocketOptions:
    """Sets httpx's ``socket_options`` on each new socket, after connecting (as httpcore)."""

    __slots__ = ("_inner", "_options")

    def __init__(self, inner: Connector, options: list[SocketOption]) -> None:
        self._inner = inner
        self._options = options

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        io, connected = await self._inner.connect(uri)
        extra = getattr(io, "extra", None)
        sock: socket.socket | None = (
            None if extra is None else extra(SocketAttribute.raw_socket, None)
        )
        if sock is not None:
            for option in self._options:
                try:
                    sock.setsockopt(*option)
                except OSError as exc:
                    with anyio.CancelScope(shield=True):
                        await io.aclose()
                    raise ConnectError(f"setting socket option {option} failed: {exc}") from exc
        return io, connected


@final
class _ProxyRoute:
    """Sends every origin through one HTTP proxy: forwarding for ``http``, a tunnel otherwise.

    As httpcore's ``HTTPProxy``: ``http`` URLs go to the proxy in
    absolute-form with the proxy headers on each request; others get a
    CONNECT tunnel (the proxy headers on the CONNECT), over which TLS to the
    origin follows.
    """

    __slots__ = ("_headers", "_proxy", "_to_proxy", "_tunnel")

    def __init__(self, to_proxy: Connector, proxy: httpx.Proxy) -> None:
        url = proxy.url
        authority = url.netloc.decode("ascii")
        self._proxy = Uri.from_parts(scheme=url.scheme, authority=authority, path_and_query="/")
        self._to_proxy = to_proxy
        fields: list[tuple[bytes, bytes]] = []
        authorization: str | None = None
        if proxy.raw_auth is not None:
            user, password = proxy.raw_auth
            authorization = "Basic " + base64.b64encode(user + b":" + password).decode("ascii")
            fields.append((b"Proxy-Authorization", authorization.encode("ascii")))
        extra = Headers(proxy.headers.raw)
        fields.extend(extra.raw())
        self._headers = Headers(fields)
        self._tunnel = TunnelConnector(
            self._proxy, to_proxy, authorization=authorization, headers=extra
        )

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        if uri.scheme == "http":
            io, connected = await self._to_proxy.connect(self._proxy)
            connected.extra.insert(ProxyHeaders(self._headers))
            return io, connected.replace(proxied=True)
        return await self._tunnel.connect(uri)


@final
class TransportConnector:
    """The top of the chain: TLS with the request's SNI name, retries, the stream recorded.

    Args:
        inner: Opens the byte stream (direct, Unix socket or proxied).
        tls: hyper-tls's connector around ``inner``, or ``None`` when
            hyper-tls is not installed (``https`` is then refused).
        retries: Connect attempts after the first that fails, after 0 s,
            then 0.5 s doubling (httpcore's rule; a proxy's refusal is not
            retried).
    """

    __slots__ = ("_inner", "_retries", "_tls")

    def __init__(self, inner: Connector, tls: HttpsConnector | None, *, retries: int = 0) -> None:
        self._inner = inner
        self._tls = tls
        self._retries = retries

    @property
    def has_tls(self) -> bool:
        """Whether ``https`` URLs can be served (hyper-tls is installed)."""
        return self._tls is not None

    async def connect(self, uri: Uri, /) -> tuple[IO, Connected]:
        delay = 0.0
        attempt = 0
        while True:
            try:
                io, connected = await self._connect_once(uri)
            except ProxyError:
                raise  # the proxy answered: trying again changes nothing
            except ConnectError:
                if attempt >= self._retries:
                    raise
            else:
                connected.extra.insert(StreamInfo(io))
                return io, connected
            attempt += 1
            await anyio.sleep(delay)
            delay = _RETRY_BACKOFF if delay == 0 else delay * 2

    async def _connect_once(self, uri: Uri) -> tuple[IO, Connected]:
        if uri.scheme == "https":
            tls = self._tls
            if tls is None:
                raise ConnectError(_HYPER_TLS_MISSING)
            return await tls.connect(uri, server_hostname=SNI_HOSTNAME.get())
        return await self._inner.connect(uri)


def build_connector(
    *,
    ssl_context: ssl.SSLContext | None,
    http1: bool,
    http2: bool,
    proxy: httpx.Proxy | None,
    uds: str | None,
    local_address: str | None,
    retries: int,
    socket_options: Iterable[SocketOption] | None,
) -> Connector:
    """The connector for httpx's transport options (see the module docstring).

    ``ssl_context`` is the origin's context (from ``httpx.create_ssl_context``),
    ``None`` when hyper-tls is missing.

    Raises:
        ImportError: An ``https`` proxy without hyper-tls.
        ValueError: An unknown proxy scheme, or a bad option.
    """
    base: Connector
    if uds is not None:
        base = _UnixConnector(uds)
    else:
        base = HttpConnector(enforce_http=False, local_address=local_address)
    options = list(socket_options or ())
    if options:
        base = _SocketOptions(base, options)
    hyper_tls = _load_hyper_tls()
    if proxy is not None and proxy.url.scheme in ("socks5", "socks5h"):
        # httpcore sends the host name to a SOCKS5 proxy whichever of the two
        # schemes is given (its ``socks5`` resolves nothing locally): both
        # are SOCKS5 with the proxy resolving, hyper-util's ``socks5h``.
        user, password = proxy.auth if proxy.auth is not None else (None, None)
        base = SocksConnector(
            f"socks5h://{proxy.url.netloc.decode('ascii')}",
            base,
            username=user,
            password=password,
        )
    elif proxy is not None:
        scheme = proxy.url.scheme
        if scheme not in ("http", "https"):
            raise ValueError(
                f"proxy scheme {scheme!r} is not supported (http, https, socks5, socks5h)"
            )
        to_proxy = base
        if scheme == "https":
            if hyper_tls is None:
                raise ImportError(_HYPER_TLS_MISSING)
            # httpcore's proxy TLS: the Proxy's own context, else httpx's default.
            context = proxy.ssl_context or httpx.create_ssl_context()
            to_proxy = hyper_tls.HttpsConnector(base, context, http2=False, handshake_timeout=None)
        base = _ProxyRoute(to_proxy, proxy)
    tls: HttpsConnector | None = None
    if hyper_tls is not None and ssl_context is not None:
        # The TLS handshake counts against httpx's connect timeout, as in
        # httpcore: no limit of its own.
        tls = hyper_tls.HttpsConnector(base, ssl_context, http2=http2, handshake_timeout=None)
        if not http1:
            ssl_context.set_alpn_protocols(["h2"])
    return TransportConnector(base, tls, retries=retries)
