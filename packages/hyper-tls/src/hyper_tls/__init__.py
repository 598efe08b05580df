"""hyper-tls: HTTPS connector and TLS acceptor with ALPN for hyper-util.

Client: :class:`HttpsConnector` (give it to ``hyper_util.client.legacy.Client``).
Server: :class:`TlsAcceptor` (give it to ``hyper_util.server.serve(tls=...)``)
with a context from :func:`server_ssl_context`. The guide is
``docs/guides/tls.md``.
"""

from __future__ import annotations

from hyper_tls._acceptor import TlsAcceptor
from hyper_tls._connector import DEFAULT_HANDSHAKE_TIMEOUT, HttpsConnector
from hyper_tls._context import (
    ALPN_H2,
    ALPN_HTTP1,
    MODERN_CIPHERS,
    alpn_protocols,
    client_ssl_context,
    server_ssl_context,
)
from hyper_tls._errors import (
    CertificateExpiredError,
    CertificateVerifyError,
    HandshakeError,
    HandshakeTimeoutError,
    HostnameMismatchError,
    HttpsRequiredError,
    TlsError,
    UnknownCaError,
)
from hyper_tls._stream import MaybeHttps, TlsStream

__version__ = "0.1.0"

__all__ = [
    "ALPN_H2",
    "ALPN_HTTP1",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "MODERN_CIPHERS",
    "CertificateExpiredError",
    "CertificateVerifyError",
    "HandshakeError",
    "HandshakeTimeoutError",
    "HostnameMismatchError",
    "HttpsConnector",
    "HttpsRequiredError",
    "MaybeHttps",
    "TlsAcceptor",
    "TlsError",
    "TlsStream",
    "UnknownCaError",
    "__version__",
    "alpn_protocols",
    "client_ssl_context",
    "server_ssl_context",
]
