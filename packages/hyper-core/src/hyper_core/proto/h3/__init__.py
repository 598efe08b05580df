"""Internal: HTTP/3 (RFC 9114) over the QUIC interface of :mod:`hyper_core.rt`.

Framing in ``_frames``, QPACK (static table) in ``_qpack``, the control
streams and GOAWAY in ``_conn``, bodies in ``_body``, the two roles in
``_server`` and ``_client``. The public faces are
:mod:`hyper_core.server.conn.http3` and :mod:`hyper_core.client.conn.http3`.
"""

from __future__ import annotations

__all__: list[str] = []
