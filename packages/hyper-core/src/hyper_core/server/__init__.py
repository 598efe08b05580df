"""Server-side HTTP connections.

What belongs here: nothing but the :mod:`hyper_core.server.conn` package,
which holds one module per protocol version (``conn.http1``). A server loop
(accepting sockets, graceful shutdown of many connections) is not part of
hyper-core; hyper-util provides one.
"""

from __future__ import annotations

from hyper_core.server import conn

__all__ = ["conn"]
