"""Per-request timeouts for the pooled client: the :class:`Timeouts` extension.

What belongs here: :class:`Timeouts`, the four phase limits of one request,
which a request carries in its extensions to override the client's.

Strategy: one small immutable record, looked up once per request by type
(``request.extensions.get(Timeouts)``); a request without it uses the
client's own limits, which the client keeps in a ``Timeouts`` too, so the
request path reads the same four attributes either way. The total
``timeout`` stays a client setting: it bounds the whole exchange, body
included, and has no per-request counterpart in the APIs this mirrors
(httpx's four phases, reqwest's per-request timeout aside).
"""

from __future__ import annotations

import dataclasses
from typing import final

__all__ = ["Timeouts"]


@final
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """The limits of one request's phases, in seconds (``None``: no limit).

    Put one in a request's extensions to replace, for that request, all four
    of the client's limits of the same names::

        request.extensions.insert(Timeouts(connect=5, read=5, write=5, pool=5))

    Attributes:
        connect: Opening a connection, TLS included (``connect_timeout``).
        read: From the start of sending to the response head, and between
            pieces of the response body (``read_timeout``).
        write: Any single write blocked by a peer that does not read
            (``write_timeout``). On HTTP/2, where requests share the
            connection and its writes, the limit of the request that
            started most recently applies to the connection's writes.
        pool: Waiting for a connection when ``max_connections`` are busy
            (``pool_timeout``).

    Raises:
        ValueError: A limit is zero or negative.
    """

    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"the {name} timeout must be positive seconds (or None)")
