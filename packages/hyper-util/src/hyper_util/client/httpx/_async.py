"""``AsyncHyperTransport``: httpx's async transport interface on the pooled client.

What belongs here: the transport class, the response stream it hands to
httpx, and :func:`build_client`, which both transports use to turn httpx's
transport arguments into a pooled client.

Strategy: httpx does everything above the transport (URL building,
redirects, cookies, auth, decoding); the transport only converts the
request (:mod:`._convert`), sends it through the pooled client, and wraps
the response: status, raw headers (httpx copies them), the body as an
``httpx.AsyncByteStream`` that reads the pooled client's ``Incoming``
directly, and the extensions httpcore provides. Errors are translated at
both points where they can surface: sending, and reading the body
(:mod:`._errors`). The client itself lives in an owner task
(:mod:`._owner`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import httpx

from hyper_core import upgrade
from hyper_core.body import Body, Incoming
from hyper_core.error import HyperError
from hyper_core.http import Response
from hyper_util.client.httpx._connect import (
    SNI_HOSTNAME,
    SocketOption,
    TransportConnector,
    build_connector,
)
from hyper_util.client.httpx._convert import (
    AsyncStreamBody,
    Converter,
    http_version,
    memory_body,
    reason_phrase,
)
from hyper_util.client.httpx._errors import to_httpx
from hyper_util.client.httpx._owner import ClientOwner
from hyper_util.client.httpx._stream import AsyncNetworkStream
from hyper_util.client.legacy import Client
from hyper_util.client.legacy.connect import Connected

if TYPE_CHECKING:
    import ssl

__all__ = ["DEFAULT_LIMITS", "AsyncHyperTransport", "AsyncResponseStream", "build_client"]

_HYPER_TLS_MISSING: Final = (
    "https URLs need hyper-tls, which is not installed: pip install hyper-tls"
)
#: What a keep-alive expiry of zero or less becomes: expired at once.
_IMMEDIATELY: Final = 1e-9
#: httpx's default limits (``httpx.HTTPTransport``'s ``limits``).
DEFAULT_LIMITS: Final = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0
)


def build_client(
    *,
    verify: ssl.SSLContext | str | bool,
    cert: Any,
    trust_env: bool,
    http1: bool,
    http2: bool,
    limits: httpx.Limits,
    proxy: Any,
    uds: str | None,
    local_address: str | None,
    retries: int,
    socket_options: Iterable[SocketOption] | None,
    http3: bool = False,
    http3_origins: Iterable[str] = (),
) -> tuple[Callable[[], Client], bool]:
    """What builds the pooled client for httpx's transport arguments, and whether TLS works.

    The client factory is called once per event loop (see :mod:`._owner`).

    Raises:
        ValueError: An unknown proxy scheme, or another bad option.
        ImportError: An ``https`` proxy without hyper-tls.
    """
    if isinstance(proxy, str | httpx.URL):
        proxy = httpx.Proxy(url=proxy)
    try:
        import hyper_tls  # noqa: F401 (only whether it is there)
    except ModuleNotFoundError:
        ssl_context = None
    else:
        # httpx's own context: verify, cert and SSL_CERT_FILE / SSL_CERT_DIR
        # (with trust_env) mean exactly what they mean with httpx.
        ssl_context = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
    connector = build_connector(
        ssl_context=ssl_context,
        http1=http1,
        http2=http2,
        proxy=proxy,
        uds=uds,
        local_address=local_address,
        retries=retries,
        socket_options=socket_options,
    )
    expiry = limits.keepalive_expiry
    make_client = functools.partial(
        Client,
        connector,
        pool_idle_timeout=None if expiry is None else max(expiry, _IMMEDIATELY),
        pool_max_idle=limits.max_keepalive_connections,
        max_connections=limits.max_connections,
        # httpcore speaks HTTP/2 with prior knowledge only when HTTP/1 is
        # off; otherwise HTTP/2 only where TLS's ALPN chose it.
        http2_only=http2 and not http1,
        # Every limit comes with each request (httpx's Timeout); a request
        # without one has none, as in httpcore.
        connect_timeout=None,
        http3=http3,
        http3_origins=tuple(http3_origins),
        # QUIC trusts what httpx's verify (and SSL_CERT_FILE) means for TLS.
        http3_ssl_context=ssl_context,
    )
    return make_client, isinstance(connector, TransportConnector) and connector.has_tls


class AsyncResponseStream(httpx.AsyncByteStream):
    """The body of a response from the pooled client, as httpx reads it.

    Closing it before the end closes the HTTP/1 connection (or resets the
    HTTP/2 stream); read to the end, the connection goes back to the pool.
    It is its own iterator, not an async generator: a reader that stops
    early leaves nothing behind for the garbage collector to finalize.
    """

    def __init__(self, body: Incoming) -> None:
        self._body = body

    def __aiter__(self) -> AsyncResponseStream:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        while True:
            try:
                frame = await body.frame()
            except Exception as exc:
                mapped = to_httpx(exc, receiving=True)
                if mapped is None:
                    raise
                raise mapped from exc
            if frame is None:
                raise StopAsyncIteration
            data = frame.data_ref
            if data:
                return data

    async def aclose(self) -> None:
        await self._body.aclose()


def _unsupported(url: httpx.URL) -> httpx.UnsupportedProtocol:
    # httpcore's messages.
    if not url.raw_scheme:
        return httpx.UnsupportedProtocol(
            "Request URL is missing an 'http://' or 'https://' protocol."
        )
    scheme = url.raw_scheme.decode("ascii", "replace")
    return httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")


class AsyncHyperTransport(httpx.AsyncBaseTransport):
    """An httpx transport on hyper-util's pooled client: ``AsyncClient(transport=...)``.

    The arguments are those of ``httpx.AsyncHTTPTransport``, with the same
    meaning and defaults::

        transport = AsyncHyperTransport(http2=True)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get("https://example.com/")

    Each request's timeouts come from httpx (``Timeout``: connect, read,
    write, pool). The transport works on asyncio, uvloop and trio, entered
    with ``async with`` or not; close it (or the ``AsyncClient``) when done.
    It serves one event loop at a time.

    Args:
        verify: ``True`` (certifi's CAs, or ``SSL_CERT_FILE`` /
            ``SSL_CERT_DIR`` with ``trust_env``), ``False``, a CA bundle
            path (deprecated by httpx), or an ``ssl.SSLContext``.
        cert: A client certificate (deprecated by httpx: load it into the
            ``SSLContext`` given as ``verify``).
        trust_env: Read ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``. (Proxy
            variables are the ``httpx`` client's business: see
            :func:`~hyper_util.client.httpx.proxy_mounts_from_env`.)
        http1: Speak HTTP/1.1.
        http2: Speak HTTP/2: negotiated by ALPN for ``https``, and with
            prior knowledge for ``http`` when ``http1`` is off.
        limits: ``max_connections`` (all origins), ``max_keepalive_connections``
            (idle connections kept), ``keepalive_expiry`` (seconds idle).
        proxy: An ``httpx.Proxy``, or its URL, for every request:
            ``http://`` and ``https://`` proxies (forwarding for ``http``
            URLs, CONNECT tunnels otherwise), ``socks5://`` and ``socks5h://``
            (the proxy resolves names in both, as with httpcore).
        uds: Connect every request through this Unix socket.
        local_address: Bind outgoing connections to this local IP address.
        retries: Connect attempts after a failed one (0.5 s backoff, doubling).
        socket_options: ``setsockopt`` arguments applied to each new socket.
        http3: Speak HTTP/3 (needs ``hyper-util[http3]``) to ``https``
            origins known to: in ``http3_origins``, or advertised by
            ``Alt-Svc``, as the pooled client's ``http3`` option (its guide:
            ``docs/guides/http3.md``). ``response.extensions["http_version"]``
            is then ``b"HTTP/3"``. Certificates are checked against the CAs
            of ``verify``.
        http3_origins: Prior knowledge: ``"host"`` or ``"host:port"``
            origins that speak HTTP/3, or ``"*"`` for every ``https`` one.

    Raises:
        ValueError: An unknown proxy scheme.
        ImportError: An ``https`` proxy without hyper-tls.
    """

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: httpx.Proxy | httpx.URL | str | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[SocketOption] | None = None,
        *,
        http3: bool = False,
        http3_origins: Iterable[str] = (),
    ) -> None:
        make_client, self._tls = build_client(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            proxy=proxy,
            uds=uds,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            http3=http3,
            http3_origins=http3_origins,
        )
        self._owner = ClientOwner(make_client)
        self._converter = Converter()

    @property
    def owner(self) -> ClientOwner:
        """Who runs the pooled client (the synchronous transport closes it from its thread)."""
        return self._owner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pooled client; return once the head arrived.

        Raises:
            httpx.TransportError: The matching subclass (``ConnectError``,
                ``ReadTimeout``, ``RemoteProtocolError``...).
            RuntimeError: The transport is closed, or serves another event loop.
        """
        body = memory_body(request)
        if body is None:
            stream = request.stream
            if not isinstance(stream, httpx.AsyncByteStream):
                raise RuntimeError("Attempted to send a sync request with an async transport.")
            body = AsyncStreamBody(stream)
        response, network_stream = await self.send(request, body)
        extensions: dict[str, Any] = {
            "http_version": http_version(response.version),
            "network_stream": network_stream,
        }
        phrase = reason_phrase(response)
        if phrase is not None:
            extensions["reason_phrase"] = phrase
        return httpx.Response(
            int(response.status),
            headers=response.headers.raw(),
            stream=AsyncResponseStream(response.body),
            extensions=extensions,
        )

    async def send(
        self, request: httpx.Request, body: Body
    ) -> tuple[Response[Incoming], AsyncNetworkStream]:
        """Send ``request`` with ``body``: the pooled client's response and its stream.

        What both transports share; errors are already httpx's.
        """
        client = await self._owner.client()
        url = request.url
        scheme = url.raw_scheme
        if scheme != b"http" and scheme != b"https":
            raise _unsupported(url)
        if scheme == b"https" and not self._tls:
            raise httpx.UnsupportedProtocol(_HYPER_TLS_MISSING)
        try:
            hyper = self._converter.request(request, body)
        except (HyperError, ValueError) as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        sni = request.extensions.get("sni_hostname")
        token = None if sni is None else SNI_HOSTNAME.set(sni)
        try:
            response = await client.request(hyper)
            connected = response.extensions.get(Connected)
            status = response.status
            upgraded = None
            if status == 101 or (request.method == "CONNECT" and 200 <= status < 300):
                upgraded = await upgrade.on(response)
        except Exception as exc:
            error = getattr(body, "error", None)
            if error is not None:
                raise error  # noqa: B904 (the request stream's own failure, as httpx does)
            mapped = to_httpx(exc, receiving=False)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if token is not None:
                SNI_HOSTNAME.reset(token)
        return response, AsyncNetworkStream(connected, upgraded)

    async def aclose(self) -> None:
        """Close every connection; the transport then refuses requests."""
        await self._owner.aclose()
