"""HTTP/1.1 ``Upgrade: h2c`` (RFC 7540 section 3.2) for the auto server.

What belongs here: deciding whether an HTTP/1.1 request may upgrade to
cleartext HTTP/2, and the service wrapper that answers such a request with
``101 Switching Protocols``.

Strategy:

* The wrapper runs inside the HTTP/1 connection. For a valid upgrade request
  (HTTP/1.1, ``Upgrade`` lists ``h2c``, ``Connection`` lists ``upgrade`` and
  ``http2-settings``, exactly one well-formed ``HTTP2-Settings``) whose body
  is absent or of a known length within ``max_body`` bytes, it reads the
  body into memory (the request is complete before the ``101``), takes the upgrade slot with
  :func:`hyper_core.upgrade.on`, switches the HTTP/1 connection's upgrades
  on and returns ``101``. Any other request goes to the service unchanged:
  RFC 9110 section 7.8 lets a server ignore ``Upgrade``, so a chunked or
  oversized body is simply served over HTTP/1.1.
* After the HTTP/1 connection ends, the auto server hands the upgraded IO
  and the request to hyper-core's
  :meth:`~hyper_core.server.conn.http2.Builder.serve_upgraded_connection`,
  which applies ``HTTP2-Settings`` and serves the request as stream 1.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Final, final

from hyper_core.body import Incoming, SizeHint, collect
from hyper_core.http import Headers, Request, Response, Version
from hyper_core.upgrade import OnUpgrade, on

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hyper_core.server.conn import http1
    from hyper_core.service import Service

__all__ = ["DEFAULT_MAX_UPGRADE_BODY", "H2cUpgrader"]

#: Largest request body, in bytes, read into memory to upgrade its request
#: (64 KiB, the HTTP/2 initial flow-control window: what an HTTP/2 client
#: could have sent without waiting anyway). Larger bodies stay on HTTP/1.1.
DEFAULT_MAX_UPGRADE_BODY: Final = 65_536


def _tokens(headers: Headers, name: str) -> set[str]:
    return {
        token.strip().lower()
        for value in headers.get_all(name)
        for token in value.split(",")
        if token.strip()
    }


def _is_upgrade(request: Request[Any]) -> bool:
    """Whether ``request`` is a valid h2c upgrade request (RFC 7540 section 3.2)."""
    headers = request.headers
    if request.version is not Version.HTTP_11 or "h2c" not in _tokens(headers, "upgrade"):
        return False
    if not {"upgrade", "http2-settings"} <= _tokens(headers, "connection"):
        return False
    values = headers.get_all_raw(b"http2-settings")
    if len(values) != 1:
        return False
    # token68 without padding (RFC 7540 section 3.2.1), whole 6-byte settings:
    # checked before answering 101, so a bad value stays on HTTP/1.1.
    raw = values[0].strip()
    try:
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(decoded) % 6 == 0


def _with_body(request: Request[Any], body: bytes) -> Request[Incoming]:
    sender, incoming = Incoming.from_channel(
        max_buffer=max(1, len(body)), size_hint=SizeHint.with_exact(len(body))
    )
    if body:
        sender.send_data_nowait(body)
    sender.finish()
    request.body = incoming
    return request


@final
class H2cUpgrader:
    """Wraps a service to answer h2c upgrade requests; one per HTTP/1 connection.

    After the HTTP/1 connection ends, :attr:`request` is the request that
    upgraded (with its body in memory) and :attr:`on_upgrade` its upgrade
    when an upgrade happened, else both are ``None``.
    """

    __slots__ = ("_allowed", "_max_body", "_service", "connection", "on_upgrade", "request")

    def __init__(self, service: Service[Any], max_body: int, allowed: Callable[[], bool]) -> None:
        self._service = service
        self._max_body = max_body
        self._allowed = allowed  # False once the connection began shutting down
        self.connection: http1.Connection | None = None
        self.request: Request[Incoming] | None = None
        self.on_upgrade: OnUpgrade | None = None

    def _eligible(self, request: Request[Any]) -> bool:
        if self.request is not None or not self._allowed() or not _is_upgrade(request):
            return False
        headers = request.headers
        if "transfer-encoding" in headers:
            return False
        length = headers.get_all("content-length")
        return not length or (
            len(length) == 1 and length[0].isdigit() and int(length[0]) <= self._max_body
        )

    def __call__(self, request: Request[Incoming]) -> Awaitable[Response[Any]]:
        """Answer an h2c upgrade with 101, pass every other request to the service.

        Not a coroutine: a request without ``Upgrade`` (all but one, at
        most, per connection) gets the service's own awaitable, so this
        wrapper costs no frame of its own per request.
        """
        if request.headers.get_raw(b"upgrade") is None:
            return self._service(request)
        if self.connection is None or not self._eligible(request):
            return self._service(request)
        return self._upgrade(request)

    async def _upgrade(self, request: Request[Incoming]) -> Response[Any]:
        assert self.connection is not None
        body = (await collect(request.body)).to_bytes()
        self.on_upgrade = on(request)
        self.request = _with_body(request, body)
        # The IO must outlive the HTTP/1 connection: let it hand the IO over.
        self.connection.with_upgrades()
        return Response(101, headers=[("connection", "Upgrade"), ("upgrade", "h2c")])
