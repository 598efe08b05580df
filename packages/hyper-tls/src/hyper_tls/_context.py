"""Ready-made ``SSLContext`` objects for clients and servers, with ALPN set.

What belongs here: :func:`client_ssl_context` (verification on, the OS trust
store by default) and :func:`server_ssl_context` (modern defaults), and the
ALPN protocol lists.

Strategy: trust comes from the operating system through
``truststore.SSLContext`` (macOS Security framework, Windows CryptoAPI,
OpenSSL's configured store on Linux), as hyper-tls does with native-tls.
Where the OS store is unusable (truststore cannot build a context on this
platform, or, on Linux and the BSDs, where truststore reads OpenSSL's
default paths, those hold no CA file or directory: a bare container without
``ca-certificates``), the context trusts certifi's bundle instead, so a
missing system store is never an error on every request. Nothing here ever
turns verification off. Given CA files replace the system store, as curl's
``--cacert`` does, so a test CA never silently widens production trust.
"""

from __future__ import annotations

import os
import ssl
import sys
from typing import Final

import certifi
import truststore

__all__ = [
    "ALPN_H2",
    "ALPN_HTTP1",
    "MODERN_CIPHERS",
    "alpn_protocols",
    "client_ssl_context",
    "server_ssl_context",
]

ALPN_H2: Final = "h2"
ALPN_HTTP1: Final = "http/1.1"

#: TLS 1.2 cipher suites: Mozilla's "intermediate" list (forward secrecy and
#: AEAD only). TLS 1.3 suites are all AEAD and are not affected by it.
MODERN_CIPHERS: Final = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
)

StrPath = str | os.PathLike[str]


def alpn_protocols(http2: bool) -> list[str]:
    """The ALPN list to offer: ``["h2", "http/1.1"]``, or ``["http/1.1"]`` without HTTP/2."""
    return [ALPN_H2, ALPN_HTTP1] if http2 else [ALPN_HTTP1]


def _openssl_store_usable() -> bool:
    """Whether OpenSSL's default CA file or directory exists (what truststore uses on Linux)."""
    paths = ssl.get_default_verify_paths()
    # Either may be None at run time, whatever the stubs say.
    cafile: str | None = paths.cafile
    capath: str | None = paths.capath
    if cafile is not None and os.path.isfile(cafile):
        return True
    return capath is not None and os.path.isdir(capath) and any(os.scandir(capath))


def _certifi_context() -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certifi.where())


def _system_context() -> ssl.SSLContext:
    # macOS and Windows ask the OS itself; elsewhere truststore relies on
    # OpenSSL's default paths, which a minimal image may lack.
    if sys.platform not in ("darwin", "win32") and not _openssl_store_usable():
        return _certifi_context()
    try:
        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except Exception:  # an unsupported platform: certifi rather than no trust at all
        return _certifi_context()


def client_ssl_context(
    *,
    cafile: StrPath | None = None,
    cadata: str | bytes | None = None,
    certfile: StrPath | None = None,
    keyfile: StrPath | None = None,
    password: str | bytes | None = None,
    http2: bool = True,
) -> ssl.SSLContext:
    """Build a client context: TLS 1.2+, hostname and CA verification on, ALPN set.

    Args:
        cafile: Trust only the CAs in this PEM file instead of the OS store.
        cadata: Trust only these PEM (str) or DER (bytes) CAs instead of
            the OS store.
        certfile: A client certificate chain (PEM) to present when the
            server asks for one (mutual TLS).
        keyfile: Its private key (default: inside ``certfile``).
        password: The key's password, if it is encrypted.
        http2: Offer ``h2`` by ALPN before ``http/1.1``.

    Returns:
        A ``truststore.SSLContext`` (OS trust store) when no CA is given and
        the OS store is usable, otherwise a plain ``ssl.SSLContext``
        (certifi's bundle, or the given CAs).

    Raises:
        OSError: A file cannot be read.
        ssl.SSLError: A file does not hold what it should.
    """
    if cafile is None and cadata is None:
        context = _system_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=cafile, cadata=cadata)
    # PROTOCOL_TLS_CLIENT already sets both; say so, in case a fallback did not.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile, password)
    context.set_alpn_protocols(alpn_protocols(http2))
    return context


def server_ssl_context(
    certfile: StrPath,
    keyfile: StrPath | None = None,
    *,
    password: str | bytes | None = None,
    http2: bool = True,
    client_cafile: StrPath | None = None,
) -> ssl.SSLContext:
    """Build a server context with modern defaults.

    TLS 1.2 or newer, ALPN ``h2`` and ``http/1.1`` (or only ``http/1.1``),
    no TLS compression, Mozilla's intermediate TLS 1.2 ciphers
    (``hyper_tls.MODERN_CIPHERS``) chosen in the server's order, no renegotiation.

    Args:
        certfile: The certificate chain, PEM, leaf first.
        keyfile: The private key, PEM (default: inside ``certfile``).
        password: The key's password, if it is encrypted.
        http2: Offer HTTP/2 by ALPN.
        client_cafile: Ask clients for a certificate issued by these CAs
            and refuse the handshake without one (mutual TLS).

    Raises:
        OSError: A file cannot be read.
        ssl.SSLError: The certificate and key do not match or are malformed.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    context.set_ciphers(MODERN_CIPHERS)
    context.load_cert_chain(certfile, keyfile, password)
    context.set_alpn_protocols(alpn_protocols(http2))
    if client_cafile is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_cafile)
    return context
