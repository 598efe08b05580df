"""hyper-core: HTTP/1.1 and HTTP/2 connections, client and server, on anyio."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
