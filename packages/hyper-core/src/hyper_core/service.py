"""The Service protocol: what a server connection calls for each request.

What belongs here: :class:`Service` and nothing else.

Strategy: hyper's ``Service`` trait has one method, ``call(&self, req)``
(no ``poll_ready`` since 1.0), and needs ``service_fn`` to turn a closure
into one. In Python an async function already is that, so ``Service`` is a
callable protocol and there is no ``service_fn``: any
``async def handler(request: Request[Incoming]) -> Response[...]`` is a
service, and so is an object whose ``__call__`` is such a method. The
request parameter is positional-only, so the function may name it anything.

``Service`` is generic in the response body type, because ``Response`` is
invariant in its body: a handler returning ``Response[Full]`` is a
``Service[Full]``. A connection accepts ``Service[B]`` for any body type
``B``, so the checker still verifies that what the handler returns is a body.

A service reports failure by raising; each connection type documents what
it then sends the peer. ``Request`` and ``Response`` come from
:mod:`hyper_core.http`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol, TypeVar

from hyper_core.body import Body

if TYPE_CHECKING:
    from hyper_core.body import Incoming
    from hyper_core.http import Request, Response

__all__ = ["Service"]

B = TypeVar("B", bound=Body)


class Service(Protocol[B]):
    """Anything a server connection can call with a request to get a response.

    A plain async function is a service; there is no wrapper to apply::

        async def hello(request: Request[Incoming]) -> Response[Full]:
            return Response(200, body=Full(b"hello"))

        service: Service[Full] = hello

    A class works the same way, through ``async def __call__(self, request)``,
    when the service carries state (a database pool, a router).

    The connection calls it once per request, concurrently for HTTP/2
    streams, so a service must be safe to call from several tasks at once.
    """

    def __call__(self, request: Request[Incoming], /) -> Awaitable[Response[B]]:
        """Handle ``request`` and return the response to send.

        Args:
            request: The request; its body is read from the connection as the
                service reads it.

        Returns:
            An awaitable of the response (an ``async def`` returns one).

        Raises:
            Exception: Any failure. The connection translates it for the peer
                (see each connection type) and never shows it the exception.

        Cancel safety: the call is cancelled when the connection closes
        (the peer went away, or a graceful shutdown timed out).
        """
        ...
