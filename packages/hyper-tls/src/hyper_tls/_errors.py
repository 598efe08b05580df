"""The errors of hyper-tls: one root, one class per way a TLS handshake fails.

What belongs here: the exception classes and :func:`translate`, which turns
an :mod:`ssl` exception raised during a handshake into one of them.

Strategy: the caller branches on the class, so each failure a user can act
on has its own (unknown CA, hostname mismatch, expired certificate, any other
handshake failure, timeout). Every message names the host. The classes also
derive from :class:`hyper_util.client.legacy.ConnectError`, so code that
handles connection failures of the pooled client handles these too. The
OpenSSL verify code (``X509_V_ERR_*``) is kept as an attribute.
"""

from __future__ import annotations

import ssl
from typing import Final

from hyper_core.error import HyperError
from hyper_util.client.legacy import ConnectError, ConnectTimeoutError

__all__ = [
    "CertificateExpiredError",
    "CertificateVerifyError",
    "HandshakeError",
    "HandshakeTimeoutError",
    "HostnameMismatchError",
    "HttpsRequiredError",
    "TlsError",
    "UnknownCaError",
    "translate",
]

# OpenSSL X509_V_ERR_* codes (include/openssl/x509_vfy.h).
_UNKNOWN_CA_CODES: Final = frozenset({2, 18, 19, 20, 21})
_EXPIRED_CODE: Final = 10
_HOSTNAME_MISMATCH_CODES: Final = frozenset({62, 64})  # host name, IP address


class TlsError(HyperError):
    """Root of every error raised by hyper-tls."""


class HttpsRequiredError(TlsError, ConnectError):
    """``https_only`` is on and the URL is not ``https``."""


class HandshakeError(TlsError, ConnectError):
    """The TLS handshake failed (protocol, cipher or ALPN mismatch, peer closed...).

    Attributes:
        host: The host the handshake was with (the SNI name), or ``None``
            on the server side when the client sent none.
    """

    def __init__(self, message: str, *, host: str | None = None) -> None:
        super().__init__(message)
        self.host = host


class HandshakeTimeoutError(HandshakeError, ConnectTimeoutError):
    """The TLS handshake took longer than ``handshake_timeout``."""


class CertificateVerifyError(HandshakeError):
    """The peer's certificate was refused; a subclass says why when it is known.

    Attributes:
        verify_code: OpenSSL's ``X509_V_ERR_*`` code, or ``None``.
        verify_message: OpenSSL's text for it.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        verify_code: int | None = None,
        verify_message: str = "",
    ) -> None:
        super().__init__(message, host=host)
        self.verify_code = verify_code
        self.verify_message = verify_message


class UnknownCaError(CertificateVerifyError):
    """The certificate chain does not lead to a trusted CA (or is self-signed)."""


class HostnameMismatchError(CertificateVerifyError):
    """The certificate is valid but for other names than the host asked for."""


class CertificateExpiredError(CertificateVerifyError):
    """The certificate (or one in its chain) is past its ``notAfter`` date."""


def translate(exc: BaseException, host: str | None) -> HandshakeError:
    """Return the hyper-tls error for ``exc``, raised during a handshake with ``host``.

    The caller raises it ``from exc``.
    """
    where = host if host is not None else "the peer"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        text = exc.verify_message or str(exc)
        cls: type[CertificateVerifyError] = CertificateVerifyError
        if code in _UNKNOWN_CA_CODES:
            cls, why = UnknownCaError, "is not issued by a trusted CA"
        elif code in _HOSTNAME_MISMATCH_CODES:
            cls, why = HostnameMismatchError, "does not match the host name"
        elif code == _EXPIRED_CODE:
            cls, why = CertificateExpiredError, "has expired"
        else:
            why = "was refused"
        return cls(
            f"TLS certificate of {where} {why}: {text}",
            host=host,
            verify_code=code,
            verify_message=text,
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        return HandshakeError(f"TLS handshake with {where} failed: {reason}", host=host)
    detail = str(exc) or type(exc).__name__
    return HandshakeError(
        f"TLS handshake with {where} failed: the connection broke ({detail})", host=host
    )
