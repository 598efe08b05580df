"""HTTP clients built on hyper-core's connections.

What belongs here: :mod:`hyper_util.client.legacy`, the pooled
:class:`~hyper_util.client.legacy.Client` with its connectors (hyper-util's
``client::legacy``).
"""

from __future__ import annotations

from hyper_util.client import legacy

__all__ = ["legacy"]
