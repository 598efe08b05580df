"""Internal protocol machinery, one package per HTTP version.

Nothing here is public API: the connections in :mod:`hyper_core.server.conn`
and :mod:`hyper_core.client.conn` are built on it, and its shapes may change
in any release.
"""

from __future__ import annotations

__all__: list[str] = []
