"""QUIC on UDP, backed by aioquic: what HTTP/3 runs over (``pip install 'hyper-core[http3]'``).

* :func:`listen`: a server's UDP endpoint; its :class:`QuicListener` yields
  each connection once its handshake is done, ready for
  :meth:`hyper_core.server.conn.http3.Builder.serve_connection`.
* :func:`connect`: a client's connection, ready for
  :func:`hyper_core.client.conn.http3.handshake`.

Both yield :class:`AioquicConnection`, an implementation of
:class:`hyper_core.rt.QuicConnection`. The sockets come from anyio, so this
runs on asyncio, uvloop and trio. Importing this module works without
aioquic; calling :func:`listen` or :func:`connect` then raises
``ImportError`` with the extra to install (the message is ``MISSING_EXTRA``).
"""

from __future__ import annotations

from hyper_core.quic._aioquic import MISSING_EXTRA, AioquicConnection, require_aioquic
from hyper_core.quic._endpoint import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_STREAMS,
    DEFAULT_STREAM_WINDOW,
    QuicListener,
    connect,
    listen,
)
from hyper_core.rt._quic import QuicConnectionClosed

__all__ = [
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_STREAM_WINDOW",
    "MISSING_EXTRA",
    "AioquicConnection",
    "QuicConnectionClosed",
    "QuicListener",
    "connect",
    "listen",
    "require_aioquic",
]
