"""hyper-tls: HTTPS connector and TLS acceptor with ALPN for hyper-util."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
