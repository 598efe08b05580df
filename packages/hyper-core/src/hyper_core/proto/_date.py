"""The cached value of the ``Date`` response field, and its whole field line.

What belongs here: the ``Date`` value both protocol versions write (HTTP/2
sends :func:`http_date`, the HTTP/1 encoder :func:`date_line`); shared
here so that neither protocol package imports the other.

Strategy: formatting an IMF-fixdate costs a few microseconds, and a busy
server answers thousands of requests per second, so the value is formatted
at most once per wall-clock second and reused (as hyper does per thread).
The field lines the HTTP/1 encoder appends (``date: <value>`` and the
Title-Case ``Date: <value>``) are built in the same refresh, so a response
costs one ``time.time()`` call and a comparison, not a formatting.
The wall clock (``time.time``) is right here even under a fake
:class:`~hyper_core.rt.Timer`: ``Date`` is calendar time, not a deadline.
"""

from __future__ import annotations

import time
from email.utils import formatdate

__all__ = ["date_line", "http_date"]

_cached_second = -1
_cached_value = b""
_cached_line = b""
_cached_title_line = b""


def _refresh(now: int) -> None:
    global _cached_second, _cached_value, _cached_line, _cached_title_line
    value = formatdate(now, usegmt=True).encode("ascii")
    _cached_value = value
    _cached_line = b"date: " + value
    _cached_title_line = b"Date: " + value
    _cached_second = now


def http_date() -> bytes:
    """Return now as an IMF-fixdate (RFC 9110 section 5.6.7), cached per second."""
    now = int(time.time())
    if now != _cached_second:
        _refresh(now)
    return _cached_value


def date_line(title_case: bool = False) -> bytes:
    """Return the field line ``date: <now>`` (no CRLF), cached per second.

    Args:
        title_case: Spell the name ``Date`` instead of ``date``.
    """
    now = int(time.time())
    if now != _cached_second:
        _refresh(now)
    return _cached_title_line if title_case else _cached_line
