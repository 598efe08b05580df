"""``HttpsConnector``: TLS with SNI, verification and ALPN around any connector.

What belongs here: :class:`HttpsConnector` and the handshake glue shared
with the acceptor (:func:`handshake`).

Strategy: the inner connector opens the byte stream (TCP, or a CONNECT
tunnel through a proxy when the inner connector is a
``ProxyConnector``), then :class:`~hyper_tls.TlsStream` runs the handshake
over it, bounded by ``handshake_timeout``, resuming a session from an
earlier connection to the same origin when there is one (see
:mod:`hyper_tls._sessions`; resumption skips the certificate exchange and
its verification: on TLS 1.2 a quarter of a new connection's client CPU
and a round trip). The
ALPN result goes to the pool as ``Connected.alpn_h2``: an ``h2`` connection
is shared by every request to that origin. A failed or refused handshake
closes the stream and raises a :mod:`hyper_tls` error naming the host; there
is no retry without verification. Every result is a :class:`~hyper_tls.MaybeHttps`, so plain
``http`` connections and TLS ones have one type.
"""

from __future__ import annotations

import contextlib
import ssl
import sys
from collections.abc import Callable
from functools import partial
from typing import Final, final

import anyio
import truststore

from hyper_core.http import Uri
from hyper_core.rt import IO, Timer, default_timer
from hyper_tls._context import ALPN_H2, alpn_protocols, client_ssl_context
from hyper_tls._errors import (
    HandshakeTimeoutError,
    HttpsRequiredError,
    translate,
)
from hyper_tls._sessions import DEFAULT_SESSION_CACHE_SIZE, SessionCache, SessionKey
from hyper_tls._stream import MaybeHttps, TlsStream
from hyper_util.client.legacy import ConnectError
from hyper_util.client.legacy.connect import Connected, Connector, HttpConnector, default_port

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "HttpsConnector", "handshake"]

#: Seconds a TLS handshake may take (10 s: Go's
#: ``http.Transport.TLSHandshakeTimeout`` default).
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0


async def handshake(
    io: IO,
    ssl_context: ssl.SSLContext,
    *,
    server_side: bool,
    hostname: str | None,
    timeout: float | None,
    timer: Timer,
    session: ssl.SSLSession | None = None,
    on_session: Callable[[ssl.SSLSession, bool], None] | None = None,
) -> TlsStream:
    """Run a TLS handshake over ``io`` with a timeout; close ``io`` on any failure.

    ``session`` and ``on_session`` are :meth:`TlsStream.wrap`'s.

    Raises:
        HandshakeTimeoutError: ``timeout`` seconds passed.
        CertificateVerifyError: A subclass of it when the certificate was refused.
        HandshakeError: Any other failure.
    """
    stream: TlsStream | None = None
    wrap = partial(
        TlsStream.wrap,
        io,
        ssl_context,
        server_side=server_side,
        hostname=hostname,
        session=session,
        on_session=on_session,
    )
    try:
        if timeout is None:
            stream = await wrap()
        else:
            with timer.deadline(timer.now() + timeout):
                stream = await wrap()
    except BaseException as exc:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await io.aclose()
        if isinstance(exc, (ssl.SSLError, OSError, anyio.EndOfStream, anyio.BrokenResourceError)):
            raise translate(exc, hostname) from exc
        raise
    if stream is None:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await io.aclose()
        where = hostname if hostname is not None else "the peer"
        raise HandshakeTimeoutError(
            f"TLS handshake with {where} took more than {timeout} s", host=hostname
        )
    return stream


def _verifies_in_openssl(context: ssl.SSLContext) -> bool:
    if type(context) is ssl.SSLContext:
        return True
    # truststore leaves verification to OpenSSL except on macOS and Windows.
    return type(context) is truststore.SSLContext and sys.platform not in ("darwin", "win32")


@final
class HttpsConnector:
    """Connects ``https`` URLs with TLS and passes ``http`` ones through.

    Verification is always on: the chain must lead to a trusted CA (the
    operating system's store by default, through truststore) and the
    certificate must name the host; the SNI name is the URL's host (IPv6
    brackets removed). ALPN offers ``h2`` and ``http/1.1`` (only
    ``http/1.1`` when ``http2`` is off); ``h2`` sets ``Connected.alpn_h2``.

    Args:
        inner: Opens the byte stream (default
            ``HttpConnector(enforce_http=False)``); a
            ``ProxyConnector`` here sends ``https`` through a CONNECT tunnel.
        ssl_context: The client context (trust, client certificate for
            mutual TLS, versions). Default: :func:`client_ssl_context`.
            Its ALPN list is set by this connector (the context is changed:
            give each connector its own if they differ in ``http2``), unless
            ``http2`` is ``None``.
        https_only: Refuse URLs that are not ``https``.
        handshake_timeout: Seconds the TLS handshake may take (``None``: no
            limit of its own; the client's ``connect_timeout`` still bounds it).
        http2: Offer HTTP/2 by ALPN. ``None``: leave ``ssl_context``'s ALPN
            list as it is (a context shared with other code is not changed);
            ``Connected.alpn_h2`` still says what was negotiated. Without a
            context, ``None`` is ``True``.
        timer: The clock for ``handshake_timeout`` (default: anyio's).
        session_cache_size: Origins whose TLS sessions are kept so that new
            connections resume them (each session once; keyed by host, port
            and SNI name, so never offered to another origin); ``0`` turns
            resumption off. Only with a context that verifies certificates
            inside OpenSSL (a plain ``ssl.SSLContext``, or truststore's where
            it delegates to OpenSSL, as on Linux): a resumed session carries
            no certificate chain for the OS verifier of macOS or Windows.

    Raises:
        ValueError: ``handshake_timeout`` is not positive, or
            ``session_cache_size`` is negative.
    """

    __slots__ = (
        "_context",
        "_handshake_timeout",
        "_http2",
        "_https_only",
        "_inner",
        "_sessions",
        "_timer",
    )

    def __init__(
        self,
        inner: Connector | None = None,
        ssl_context: ssl.SSLContext | None = None,
        *,
        https_only: bool = False,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        http2: bool | None = True,
        timer: Timer | None = None,
        session_cache_size: int = DEFAULT_SESSION_CACHE_SIZE,
    ) -> None:
        if handshake_timeout is not None and handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be positive seconds (or None)")
        if session_cache_size < 0:
            raise ValueError("session_cache_size cannot be negative")
        self._inner: Connector = inner if inner is not None else HttpConnector(enforce_http=False)
        if ssl_context is None:
            http2 = http2 is not False
            ssl_context = client_ssl_context(http2=http2)
        elif http2 is not None:
            ssl_context.set_alpn_protocols(alpn_protocols(http2))
        self._context = ssl_context
        self._https_only = https_only
        self._handshake_timeout = handshake_timeout
        self._http2 = http2
        self._timer = timer if timer is not None else default_timer()
        self._sessions = (
            SessionCache(session_cache_size)
            if session_cache_size and _verifies_in_openssl(ssl_context)
            else None
        )

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The client context in use."""
        return self._context

    async def connect(
        self, uri: Uri, /, *, server_hostname: str | None = None
    ) -> tuple[IO, Connected]:
        """Open a connection to ``uri``'s origin; TLS for ``https``.

        Args:
            uri: The URL whose origin to connect to.
            server_hostname: The name to send as SNI and to verify the
                certificate against, instead of ``uri``'s host (httpx's
                ``sni_hostname`` extension; for an origin reached by IP
                address or through an alias).

        Returns:
            A :class:`MaybeHttps` and the inner connector's
            :class:`Connected`, with ``alpn_h2`` set when ALPN chose ``h2``.

        Raises:
            HttpsRequiredError: ``https_only`` and ``uri`` is not ``https``.
            UnknownCaError, HostnameMismatchError, CertificateExpiredError:
                The certificate was refused for that reason.
            CertificateVerifyError: It was refused for another reason.
            HandshakeTimeoutError: The handshake took too long.
            HandshakeError: The handshake failed otherwise.
            ConnectError: The inner connector failed.

        Cancel safety: a cancelled connect leaves nothing open.
        """
        scheme = uri.scheme
        if scheme not in ("https", "wss"):
            if self._https_only:
                raise HttpsRequiredError(f"https_only: refusing a {scheme} URL: {uri}")
            io, connected = await self._inner.connect(uri)
            return MaybeHttps(io), connected
        host = uri.host
        if not host:
            raise ConnectError(f"invalid URL, host is missing: {uri}")
        host = host.strip("[]")
        sni = host if server_hostname is None else server_hostname
        io, connected = await self._inner.connect(uri)
        sessions = self._sessions
        session = on_session = None
        if sessions is not None:
            key: SessionKey = (host, uri.port or default_port(scheme), sni)
            session = sessions.take(key)
            on_session = partial(sessions.put, key)
        tls = await handshake(
            io,
            self._context,
            server_side=False,
            hostname=sni,
            timeout=self._handshake_timeout,
            timer=self._timer,
            session=session,
            on_session=on_session,
        )
        h2 = tls.ssl_object.selected_alpn_protocol() == ALPN_H2
        return MaybeHttps(tls), connected.replace(alpn_h2=h2)

    def __repr__(self) -> str:
        return (
            f"HttpsConnector(inner={self._inner!r}, https_only={self._https_only}, "
            f"handshake_timeout={self._handshake_timeout}, http2={self._http2}, "
            f"sessions={self._sessions!r})"
        )
