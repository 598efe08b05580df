"""What the server connections log: the application's failures, at ERROR.

What belongs here: the ``hyper_core.server`` logger (:data:`SERVER_LOGGER`)
and the two calls the HTTP/1 and HTTP/2 server connections make on it.

Rules (the project's logging policy):

* A service that raises, returns something that is not a valid final
  response, or whose response body fails is the *application's* fault: one
  ERROR record per failing request, with the exception's traceback, so it is
  seen with no logging set up at all (Python's last-resort handler prints
  WARNING and above to stderr).
* What the *client* caused (a malformed request, a reset, a body cut
  short, a stream it reset while the service ran) is logged at DEBUG
  only: a server cannot act on it, and a hostile client must not be able
  to fill its logs.
* A response body that raises :class:`~hyper_core.error.BodyWriteAbortedError`
  aborted on purpose, and its producer reports why (an adapter such as the
  ASGI server logs the application's error itself): DEBUG, so the failure
  is logged once, not twice.
* Nothing is formatted unless the record will be emitted.

hyper-core configures no handler: that is the application's business.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import anyio.abc

from hyper_core.http import Request

__all__ = ["SERVER_LOGGER", "body_aborted", "client_fault", "service_failed"]

#: The logger of the server connections (both HTTP versions).
SERVER_LOGGER: Final = "hyper_core.server"

_log = logging.getLogger(SERVER_LOGGER)


def _peer(io: Any) -> str:
    extra = getattr(io, "extra", None)
    address = None if extra is None else extra(anyio.abc.SocketAttribute.remote_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    if isinstance(address, str) and address:
        return address
    return "-"


def _request_line(request: Request[Any] | None) -> str:
    if request is None:
        return "a request"
    return f"{request.method} {request.uri.path_and_query} {request.version}"


def service_failed(io: Any, request: Request[Any] | None, exc: BaseException) -> None:
    """Log at ERROR, with ``exc``'s traceback, that the application failed ``request``."""
    if _log.isEnabledFor(logging.ERROR):
        _log.error(
            "service error on %s from %s: %s",
            _request_line(request),
            _peer(io),
            type(exc).__name__,
            exc_info=exc,
        )


def _debug(template: str, io: Any, request: Request[Any] | None, exc: BaseException) -> None:
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug(template, _request_line(request), _peer(io), type(exc).__name__, exc)


def client_fault(io: Any, request: Request[Any] | None, exc: BaseException) -> None:
    """Log at DEBUG that ``request`` failed because of the client."""
    _debug("%s from %s ended by the client: %s: %s", io, request, exc)


def body_aborted(io: Any, request: Request[Any] | None, exc: BaseException) -> None:
    """Log at DEBUG that the response to ``request`` was aborted by its own body."""
    _debug("the response to %s from %s was aborted by its body: %s: %s", io, request, exc)
