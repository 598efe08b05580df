"""An ASGI application as a hyper-core ``Service``.

What belongs here: :class:`ASGIService`, the service a server connection
calls for each request: it builds the scope, runs the app in its own task
(``AppRunner``), and returns the response once the app started it;
WebSocket requests go to ``_websocket.py``.

Strategy: one ``ASGIService`` per server holds what every connection shares
(the app, the runner, options, the lifespan state); :meth:`for_connection`
returns a copy bound to one connection's :class:`ConnectionInfo`, so scopes
cost no per-request address lookups.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from hyper_core import ext
from hyper_core.body import Full, Incoming
from hyper_core.error import CanceledError
from hyper_core.http import Request, Response, Version
from hyper_core.rt import IO

from ._http import HTTPCycle
from ._runner import AppRunner
from ._scope import ConnectionInfo, http_scope
from ._types import ASGIApp, ClientDisconnected, InvalidMessage, Scope
from ._websocket import WebSocketOptions, is_websocket_request, serve_websocket

__all__ = ["ASGIService"]

_log = logging.getLogger("hyper_util.asgi")

_HTTP_11: Final = Version.HTTP_11  # a module constant: reading it from the enum costs more
_HTTP_EXTENSIONS: Final[dict[str, dict[str, Any]]] = {
    "http.response.trailers": {},
    "http.response.early_hint": {},
    "http.response.pathsend": {},
}


class ASGIService:
    """Serves an ASGI 3 application's ``http`` and ``websocket`` scopes as a hyper-core service.

    Args:
        app: The ASGI application.
        runner: Where the app's calls run (an entered :class:`AppRunner`,
            or one made with ``AppRunner.from_task_group(tg)``).
        info: What the scopes say of the connection (addresses, scheme,
            root path, lifespan state); :meth:`for_connection` sets it per
            connection.
        websocket: WebSocket options; ``None`` means the defaults.
        limit_concurrency: Requests served at once before new ones get
            ``503 Service Unavailable``; ``None``: no limit.
        on_request: Called once per request (``--limit-max-requests`` counts with it).

    Usage, composing your own server::

        async with AppRunner() as runner:
            service = ASGIService(app, runner)
            await http1.Builder(upgrades=True).serve_connection(
                stream, service.for_connection(stream)
            )
    """

    __slots__ = ("_app", "_info", "_limit", "_on_request", "_runner", "_ws", "active")

    def __init__(
        self,
        app: ASGIApp,
        runner: AppRunner,
        *,
        info: ConnectionInfo | None = None,
        websocket: WebSocketOptions | None = None,
        limit_concurrency: int | None = None,
        on_request: Any = None,
    ) -> None:
        self._app = app
        self._runner = runner
        self._info = info if info is not None else ConnectionInfo()
        self._ws = websocket if websocket is not None else WebSocketOptions()
        self._limit = limit_concurrency
        self._on_request = on_request
        self.active = [0]  # shared by every per-connection copy

    def for_connection(self, io: IO) -> ASGIService:
        """A copy of this service whose scopes describe the connection over ``io``."""
        # Through __init__, not object.__new__: a compiled class refuses
        # the latter (docs/performance.md); once per connection.
        info = self._info
        copy = ASGIService(
            self._app,
            self._runner,
            info=ConnectionInfo.from_io(io, root_path=info.root_path, state=info.state),
            websocket=self._ws,
            limit_concurrency=self._limit,
            on_request=self._on_request,
        )
        copy.active = self.active
        return copy

    async def __call__(self, request: Request[Incoming]) -> Response[Any]:
        """Serve one request through the app (see the module docstring)."""
        if self._on_request is not None:
            self._on_request()
        active = self.active
        if self._limit is not None and active[0] >= self._limit:
            return Response(503, headers={"content-length": "0"}, body=Full(b""))
        info = self._info
        # An HTTP/1.1 request with the fields of the last http one (see
        # http_scope) is no WebSocket upgrade either: the test is a function
        # of the fields alone on HTTP/1. Compared once, for both.
        repeated = request.version is _HTTP_11 and request.headers.raw() == info.last_fields
        if not repeated and is_websocket_request(request):
            return await serve_websocket(self._app, self._runner, request, info, self._ws)
        cycle = HTTPCycle(request)
        extensions: dict[str, Any] = _HTTP_EXTENSIONS
        if info.tls is not None:
            extensions = {**_HTTP_EXTENSIONS, "tls": info.tls}
        scope = http_scope(request, info, extensions, repeated)
        active[0] += 1
        self._runner.spawn(self._run, cycle, scope)
        if not cycle.response_complete:
            # Still running (on asyncio the app's first step already ran):
            # from now on it must hear of a client that leaves.
            ext.on_client_gone(request, cycle.client_gone)
        response = cycle.response
        if response is None:
            try:
                response = await cycle.wait_response()
            except BaseException:
                cycle.client_gone()  # cancelled: the client left or the server closes
                raise
        if response is None:
            raise CanceledError("the client went away before the response")
        return response

    async def _run(self, cycle: HTTPCycle, scope: Scope) -> None:
        try:
            await self._app(scope, cycle.receive, cycle.send)
        except ClientDisconnected:
            pass  # spec 2.4: raised by send() after a disconnect; not an error
        except InvalidMessage:
            pass  # logged where it was detected; the exchange is answered
        except Exception as exc:
            if cycle.disconnected and isinstance(exc, OSError):
                pass
            else:
                _log.error("exception in the ASGI application", exc_info=exc)
                cycle.app_failed("the application raised")
        except BaseException:
            cycle.app_failed("the application was cancelled")
            raise
        else:
            if not cycle.response_complete and not cycle.disconnected:
                why = (
                    "the ASGI application returned without starting a response"
                    if not cycle.response_started
                    else "the ASGI application returned before its response was complete"
                )
                _log.error("%s", why)
                cycle.app_failed(why)
        finally:
            self.active[0] -= 1
