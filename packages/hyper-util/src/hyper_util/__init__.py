"""hyper-util: the batteries for hyper-core (pooled client, auto server, graceful shutdown)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
