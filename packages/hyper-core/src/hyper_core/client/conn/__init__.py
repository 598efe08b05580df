"""Client connections, one module per HTTP version: ``http1`` (and ``http2``).

What belongs here: the re-export of the per-version modules and of the
errors they share. Each module has a ``handshake(io, **options)`` (and a
``Builder``) returning a ``SendRequest`` that sends requests and a
``Connection`` that a task awaits to drive the connection.
"""

from __future__ import annotations

from hyper_core.client.conn import http1, http2, http3
from hyper_core.client.conn._errors import TrySendError

__all__ = ["TrySendError", "http1", "http2", "http3"]
