"""Access logging for :func:`hyper_util.server.serve`: one record per request.

What belongs here: the service wrapper that logs each request through the
standard :mod:`logging` module, on the ``hyper_util.access`` logger.

Strategy: off unless asked (``serve(access_log=True)``), and then cheap: the
wrapper is made once per connection (it knows the client address) and
formats nothing when the logger would drop an INFO record. The record is
written when the service returns its response head (or raises: status 500,
what the connection then answers), so ``duration`` is the time to the head
(a streamed body may still be flowing) and ``size`` is the body size when
it is known in advance, else ``-``. Each field is also on
the record as an attribute (``remote_addr``, ``method``, ``target``,
``http_version``, ``status``, ``size``, ``duration``) for structured
handlers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any, Final, final

from hyper_core.http import Request, Response
from hyper_core.service import Service

__all__ = ["ACCESS_LOGGER", "AccessLogged", "format_address"]

#: The name of the logger access records go to.
ACCESS_LOGGER: Final = "hyper_util.access"
_logger = logging.getLogger(ACCESS_LOGGER)


def format_address(address: object) -> str:
    """``host:port`` for an IP socket address, the path for a Unix one, else ``-``."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = address[0]
        return f"[{host}]:{address[1]}" if ":" in str(host) else f"{host}:{address[1]}"
    if isinstance(address, str) and address:
        return address
    return "-"


@final
class AccessLogged:
    """A service that logs each request it passes to ``service``."""

    __slots__ = ("_remote", "_service")

    def __init__(self, service: Service[Any], remote: str) -> None:
        self._service = service
        self._remote = remote

    def __call__(self, request: Request[Any]) -> Awaitable[Response[Any]]:
        """Call the service, then log the request line and the status.

        Not a coroutine: while the logger drops INFO records, the request
        gets the service's own awaitable and this wrapper costs no frame.
        """
        if not _logger.isEnabledFor(logging.INFO):
            return self._service(request)
        return self._logged(request)

    async def _logged(self, request: Request[Any]) -> Response[Any]:
        start = time.perf_counter()
        status: int | str = "-"
        size: int | str = "-"
        try:
            response = await self._service(request)
            status = int(response.status)
            hint = response.body.size_hint()
            if hint.upper == hint.lower:
                size = hint.lower
            return response
        except Exception:
            # The connection answers a service that raised with 500 (and
            # logs the error on ``hyper_core.server``); a cancelled service
            # (the client left) answered nothing: "-".
            status = 500
            raise
        finally:
            duration = time.perf_counter() - start
            target = request.uri.path_and_query
            version = str(request.version)
            _logger.info(
                '%s - "%s %s %s" %s %s %.1fms',
                self._remote,
                request.method,
                target,
                version,
                status,
                size,
                duration * 1000,
                extra={
                    "remote_addr": self._remote,
                    "method": str(request.method),
                    "target": target,
                    "http_version": version,
                    "status": status,
                    "size": size,
                    "duration": duration,
                },
            )
