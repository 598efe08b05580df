"""HTTP clients: the per-connection building blocks.

What belongs here: the :mod:`~hyper_core.client.conn` package, one module per
HTTP version (``hyper_core.client.conn.http1``), each with a ``handshake``
that turns an IO into a ``(SendRequest, Connection)`` pair. A pooled client
with connectors lives in ``hyper_util``, built on these.
"""

from __future__ import annotations

from hyper_core.client import conn

__all__ = ["conn"]
