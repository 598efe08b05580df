"""Server connections that serve more than one HTTP version: :mod:`.auto`.

What belongs here: the public re-exports of ``hyper_util.server.conn``.
Per-version connections live in :mod:`hyper_core.server.conn`.
"""

from __future__ import annotations

from hyper_util.server.conn import auto

__all__ = ["auto"]
