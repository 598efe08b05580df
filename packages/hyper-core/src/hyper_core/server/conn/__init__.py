"""Per-version server connections: ``http1`` and ``http2``.

What belongs here: the re-export of the per-version modules. Each module has
a ``Builder`` holding the options, whose ``serve_connection(io, service)``
returns a ``Connection`` that is awaited to drive it.
"""

from __future__ import annotations

from hyper_core.server.conn import http1, http2, http3

__all__ = ["http1", "http2", "http3"]
