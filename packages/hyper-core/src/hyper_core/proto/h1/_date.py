"""The cached value of the ``Date`` response field.

Strategy: formatting an IMF-fixdate costs a few microseconds, and a busy
server answers thousands of requests per second, so the value is formatted
at most once per wall-clock second and reused (as hyper does per thread).
The wall clock (``time.time``) is right here even under a fake
:class:`~hyper_core.rt.Timer`: ``Date`` is calendar time, not a deadline.
"""

from __future__ import annotations

import time
from email.utils import formatdate

__all__ = ["http_date"]

_cached_second = -1
_cached_value = b""


def http_date() -> bytes:
    """Return now as an IMF-fixdate (RFC 9110 section 5.6.7), cached per second."""
    global _cached_second, _cached_value
    now = int(time.time())
    if now != _cached_second:
        _cached_value = formatdate(now, usegmt=True).encode("ascii")
        _cached_second = now
    return _cached_value
