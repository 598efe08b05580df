"""``limit_requests``: a worker that retires itself after N requests (``--limit-max-requests``).

What belongs here: the service wrapper that counts requests and asks for a
graceful shutdown when the count is reached.

Strategy: a worker that leaks memory (the app's, or a library's) is
replaced before the leak matters: after ``max_requests`` requests the
wrapper calls ``on_limit`` once (typically ``shutdown_event.set`` of
:func:`~hyper_util.server.serve`), the worker stops accepting, finishes
what it has, and exits; :func:`~hyper_util.server.run_workers` starts its
replacement at once. Requests that arrive meanwhile on open keep-alive
connections are still served: nothing accepted is dropped. ``jitter``
spreads the limits of workers started together (gunicorn's
``max_requests_jitter``), so they do not all restart at the same moment.
The count is one integer increment per request.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Generic, TypeVar, final

from hyper_core.body import Body, Incoming
from hyper_core.http import Request, Response
from hyper_core.service import Service

__all__ = ["limit_requests"]

B = TypeVar("B", bound=Body)


@final
class _RequestLimit(Generic[B]):
    __slots__ = ("_count", "_limit", "_on_limit", "_service")

    def __init__(self, service: Service[B], limit: int, on_limit: Callable[[], object]) -> None:
        self._service = service
        self._limit = limit
        self._on_limit = on_limit
        self._count = 0

    async def __call__(self, request: Request[Incoming], /) -> Response[B]:
        self._count += 1
        if self._count == self._limit:
            self._on_limit()
        return await self._service(request)


def limit_requests(
    service: Service[B],
    max_requests: int,
    on_limit: Callable[[], object],
    *,
    jitter: int = 0,
) -> Service[B]:
    """Wrap ``service`` so that ``on_limit()`` is called as its ``max_requests``-th request starts.

    Args:
        service: The service to count requests of.
        max_requests: How many requests before ``on_limit`` (at least 1).
        on_limit: Called once, typically the ``set`` of the
            ``shutdown_event`` given to :func:`~hyper_util.server.serve`.
        jitter: Add a random 0..``jitter`` to ``max_requests``, so workers
            started together do not all stop together.

    Raises:
        ValueError: ``max_requests`` < 1 or ``jitter`` < 0.
    """
    if max_requests < 1:
        raise ValueError("max_requests must be at least 1")
    if jitter < 0:
        raise ValueError("jitter cannot be negative")
    limit = max_requests + (random.randint(0, jitter) if jitter else 0)
    return _RequestLimit(service, limit, on_limit)
