"""HTTP/1.1 ``Upgrade: h2c`` (RFC 7540 section 3.2) for the auto server.

What belongs here: deciding whether an HTTP/1.1 request may upgrade to
cleartext HTTP/2, the service wrapper that answers such a request with
``101 Switching Protocols``, and starting the HTTP/2 connection whose stream
1 is the upgraded request.

Strategy:

* The wrapper runs inside the HTTP/1 connection. For a valid upgrade request
  (HTTP/1.1, ``Upgrade`` lists ``h2c``, ``Connection`` lists ``upgrade`` and
  ``http2-settings``, exactly one well-formed ``HTTP2-Settings``) whose body
  is absent or of a known length within ``max_body`` bytes, it reads the
  body, turns the request into an HTTP/2 one, takes the upgrade slot with
  :func:`hyper_core.upgrade.on`, switches the HTTP/1 connection's upgrades
  on and returns ``101``. Any other request goes to the service unchanged:
  RFC 9110 section 7.8 lets a server ignore ``Upgrade``, so a chunked or
  oversized body is simply served over HTTP/1.1.
* hyper-core's HTTP/2 server has no public entry for an upgraded connection
  yet, so :func:`serve_upgraded` reaches into its dispatcher: it lets h2 set
  up stream 1 (``initiate_upgrade_connection``, which also applies the
  client's ``HTTP2-Settings``) and queues stream 1 with the upgraded request
  like any stream the reader accepted. The dispatcher then sends its own
  SETTINGS once more when it starts, which RFC 9113 allows (each SETTINGS
  frame is acknowledged on its own). This is the one place that depends on
  those internals; a test covers it.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Final, final

from hyper_core.body import Incoming, SizeHint, collect
from hyper_core.http import Headers, Request, Response, Uri, Version
from hyper_core.proto.h2._server_stream import _Stream
from hyper_core.upgrade import OnUpgrade, on

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hyper_core.rt import IO
    from hyper_core.server.conn import http1, http2
    from hyper_core.service import Service

__all__ = ["DEFAULT_MAX_UPGRADE_BODY", "H2cUpgrader", "serve_upgraded"]

#: Largest request body, in bytes, read into memory to upgrade its request
#: (64 KiB, the HTTP/2 initial flow-control window: what an HTTP/2 client
#: could have sent without waiting anyway). Larger bodies stay on HTTP/1.1.
DEFAULT_MAX_UPGRADE_BODY: Final = 65_536

#: Fields that describe the HTTP/1.1 connection, not the request; they may
#: not appear in an HTTP/2 request (RFC 9113 section 8.2.2).
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "upgrade",
        "http2-settings",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "host",
    }
)


def _tokens(headers: Headers, name: str) -> set[str]:
    return {
        token.strip().lower()
        for value in headers.get_all(name)
        for token in value.split(",")
        if token.strip()
    }


def _settings_of(request: Request[Any]) -> bytes | None:
    """The ``HTTP2-Settings`` payload if ``request`` is a valid h2c upgrade request."""
    headers = request.headers
    if request.version is not Version.HTTP_11 or "h2c" not in _tokens(headers, "upgrade"):
        return None
    if not {"upgrade", "http2-settings"} <= _tokens(headers, "connection"):
        return None
    values = headers.get_all("http2-settings")
    if len(values) != 1:
        return None
    raw = values[0].strip().encode("ascii", "replace")
    # token68 without padding (RFC 7540 section 3.2.1); h2 wants it padded.
    raw += b"=" * (-len(raw) % 4)
    try:
        decoded = base64.urlsafe_b64decode(raw)
    except (binascii.Error, ValueError):
        return None
    if len(decoded) % 6:  # each setting is 6 bytes
        return None
    return raw


def _to_http2(request: Request[Any], body: bytes) -> Request[Incoming]:
    headers = request.headers
    authority = headers.get("host") or "localhost"
    fields = [(n, v) for n, v in headers.raw() if n.lower().decode("latin-1") not in _HOP_BY_HOP]
    sender, incoming = Incoming.from_channel(
        max_buffer=max(1, len(body)), size_hint=SizeHint.with_exact(len(body))
    )
    if body:
        sender.send_data_nowait(body)
    sender.finish()
    upgraded: Request[Incoming] = Request(
        request.method,
        Uri(f"http://{authority}{request.uri.path_and_query}"),
        headers=Headers(fields),
        body=incoming,
        version=Version.HTTP_2,
        extensions=request.extensions,
    )
    return upgraded


@final
class H2cUpgrader:
    """Wraps a service to answer h2c upgrade requests; one per HTTP/1 connection.

    After the HTTP/1 connection ends, :attr:`request` is the upgraded request
    (stream 1) and :attr:`settings` the client's ``HTTP2-Settings`` when an
    upgrade happened, else both are ``None``.
    """

    __slots__ = (
        "_allowed",
        "_max_body",
        "_service",
        "connection",
        "on_upgrade",
        "request",
        "settings",
    )

    def __init__(self, service: Service[Any], max_body: int, allowed: Callable[[], bool]) -> None:
        self._service = service
        self._max_body = max_body
        self._allowed = allowed  # False once the connection began shutting down
        self.connection: http1.Connection | None = None
        self.request: Request[Incoming] | None = None
        self.settings: bytes | None = None
        self.on_upgrade: OnUpgrade | None = None

    def _eligible(self, request: Request[Any]) -> bytes | None:
        if self.request is not None or not self._allowed():
            return None
        settings = _settings_of(request)
        if settings is None:
            return None
        headers = request.headers
        if "transfer-encoding" in headers:
            return None
        length = headers.get_all("content-length")
        if length and (
            len(length) != 1 or not length[0].isdigit() or int(length[0]) > self._max_body
        ):
            return None
        return settings

    def __call__(self, request: Request[Incoming]) -> Awaitable[Response[Any]]:
        """Answer an h2c upgrade with 101, pass every other request to the service.

        Not a coroutine: a request without ``Upgrade`` (all but one, at
        most, per connection) gets the service's own awaitable, so this
        wrapper costs no frame of its own per request.
        """
        if request.headers.get_raw(b"upgrade") is None:
            return self._service(request)
        settings = self._eligible(request)
        if settings is None or self.connection is None:
            return self._service(request)
        return self._upgrade(request, settings)

    async def _upgrade(self, request: Request[Incoming], settings: bytes) -> Response[Any]:
        assert self.connection is not None
        body = (await collect(request.body)).to_bytes()
        self.on_upgrade = on(request)
        self.request = _to_http2(request, body)
        self.settings = settings
        # The IO must outlive the HTTP/1 connection: let it hand the IO over.
        self.connection.with_upgrades()
        return Response(101, headers=[("connection", "Upgrade"), ("upgrade", "h2c")])


def serve_upgraded(
    builder: http2.Builder,
    io: IO,
    service: Service[Any],
    settings: bytes,
    request: Request[Incoming],
) -> http2.Connection:
    """Return an HTTP/2 connection over ``io`` whose stream 1 is ``request``."""
    conn = builder.serve_connection(io, service)
    dispatcher = conn._dispatcher
    dispatcher._h2.initiate_upgrade_connection(settings)
    stream = _Stream(1)
    dispatcher._streams[1] = stream
    dispatcher._to_spawn.append((stream, request))
    return conn
