"""HTTP protocol versions.

What belongs here: :class:`Version`.

Strategy: a plain enum whose values are the wire spelling, so ``str(v)``
costs nothing. Members are ordered by protocol age, which lets connection
code write ``version >= Version.HTTP_11`` as hyper does.
"""

from __future__ import annotations

import enum

__all__ = ["Version"]


class Version(enum.Enum):
    """The HTTP version of a request or response.

    ``HTTP_09`` appears only on a response read by an HTTP/1 client built
    with ``http09_responses=True`` (a response with no status line).
    """

    HTTP_09 = "HTTP/0.9"
    HTTP_10 = "HTTP/1.0"
    HTTP_11 = "HTTP/1.1"
    HTTP_2 = "HTTP/2"
    HTTP_3 = "HTTP/3"

    def __str__(self) -> str:
        return self.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _RANK[self] <= _RANK[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _RANK[self] > _RANK[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return _RANK[self] >= _RANK[other]


_RANK = {version: rank for rank, version in enumerate(Version)}
