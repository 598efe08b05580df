"""The pooled client's request rules: which origin a request goes to, and how it is written.

What belongs here: the synchronous, I/O-free rules of hyper-util's legacy
client (section 2.2 of the hyper inventory): checking a request and finding
its pool key, rewriting it for the connection it got (request-target form,
``Host``, proxy headers), and deciding whether a failed send may be retried.

Strategy: pure functions over the request and the pool's record of the
connection, so the rules read in one place and the request path in
``_client.py`` only sequences them. The caller's request object is never
changed: a rewritten request is a new ``Request`` sharing the body (and the
headers, when nothing is added).
"""

from __future__ import annotations

from typing import Any, Final

from hyper_core.body import Body, Empty, Full
from hyper_core.client.conn import TrySendError
from hyper_core.error import ClosedError, IncompleteMessageError
from hyper_core.http import Headers, Request, Uri, UriForm, Version
from hyper_util.client.legacy._errors import InvalidRequestError
from hyper_util.client.legacy._pooled import PooledConn, PoolKey
from hyper_util.client.legacy.connect._http import default_port
from hyper_util.client.legacy.connect._proxy import ProxyHeaders

__all__ = ["HostValues", "Targets", "as_body", "may_retry", "pool_key", "prepare"]

_HTTP_10: Final = Version.HTTP_10
_HTTP_2: Final = Version.HTTP_2
_ABSOLUTE: Final = UriForm.ABSOLUTE
_SUPPORTED_VERSIONS: Final = frozenset({Version.HTTP_10, Version.HTTP_11, Version.HTTP_2})
#: Origins whose ``Host`` value is kept ready (a bound, not a cache policy).
_HOST_VALUES_KEPT: Final = 1024
#: Absolute URIs whose pool key and origin-form target are kept ready (the
#: conveniences hand the same few ``Uri`` objects over and over; a bound, not
#: a cache policy: the table is emptied when full).
_TARGETS_KEPT: Final = 256


def as_body(body: Body | bytes | None) -> Body:
    """The body of a convenience call: bytes become ``Full``, ``None`` ``Empty``."""
    if body is None:
        return Empty()
    if isinstance(body, bytes | bytearray | memoryview):
        return Full(bytes(body))
    return body


def pool_key(request: Request[Any]) -> PoolKey:
    """Check ``request`` (hyper's rules) and return its origin ``(scheme, host, port)``.

    Raises:
        InvalidRequestError: Not HTTP/1.0, 1.1 or 2; not an absolute URI
            (authority-form is allowed for CONNECT, port 443 meaning https);
            CONNECT on HTTP/1.0.
    """
    uri = request.uri
    if request.version not in _SUPPORTED_VERSIONS:
        raise InvalidRequestError(f"unsupported HTTP version {request.version}")
    if uri.form is _ABSOLUTE:
        scheme = uri.scheme or "http"
    elif request.method == "CONNECT" and uri.form is UriForm.AUTHORITY:
        if request.version is _HTTP_10:
            raise InvalidRequestError("CONNECT needs HTTP/1.1 or later")
        scheme = "https" if uri.port == 443 else "http"
    else:
        raise InvalidRequestError(f"an absolute URI is required, got {str(uri)!r}")
    port = uri.port if uri.port is not None else default_port(scheme)
    return (scheme, (uri.host or "").lower(), port)


class Targets:
    """The pool key and origin-form target of the absolute URIs seen lately.

    Keyed by the ``Uri`` object itself (by identity: the entry holds the
    object, so its ``id`` cannot be reused while it is there), which is
    cheaper than hashing a ``Uri`` and right for the client's conveniences,
    whose URI cache hands out the same object for the same URL.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Uri, PoolKey, Uri]] = {}

    def lookup(self, request: Request[Any]) -> tuple[PoolKey, Uri | None]:
        """Return ``(pool_key(request), origin-form target or None)``.

        The target is ``None`` for a URI not in absolute form.

        Raises:
            InvalidRequestError: As :func:`pool_key`.
        """
        uri = request.uri
        entry = self._entries.get(id(uri))
        if entry is not None and entry[0] is uri and request.version in _SUPPORTED_VERSIONS:
            return entry[1], entry[2]
        key = pool_key(request)
        if uri.form is not _ABSOLUTE:
            return key, None
        origin = uri.origin_form()
        entries = self._entries
        if len(entries) >= _TARGETS_KEPT:
            entries.clear()
        entries[id(uri)] = (uri, key, origin)
        return key, origin


class HostValues:
    """The ``Host`` field of each origin: the port only when not the default.

    Kept as a one-field :class:`Headers`, validated once per origin, so that
    each request's copy of it costs a list copy rather than a validation.
    """

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[PoolKey, Headers] = {}

    def get(self, key: PoolKey, uri: Uri) -> Headers:
        """Return a new ``Headers`` holding ``host: host[:port]`` for ``key`` (IPv6 in brackets)."""
        value = self._values.get(key)
        if value is None:
            scheme, _, port = key
            host = uri.host or ""
            text = f"[{host}]" if ":" in host else host
            if port != default_port(scheme):
                text = f"{text}:{port}"
            value = Headers([(b"host", text.encode("ascii"))])
            if len(self._values) < _HOST_VALUES_KEPT:
                self._values[key] = value
        return value.copy()


def prepare(
    request: Request[Any],
    conn: PooledConn,
    key: PoolKey,
    host_values: HostValues | None,
    origin: Uri | None = None,
) -> Request[Any]:
    """The request as written on ``conn``: target form, ``Host``, proxy headers.

    HTTP/2 requests go as they are (``:authority`` comes from the absolute
    URI; no ``Host`` is added). On HTTP/1 the target becomes origin-form,
    absolute-form through a forwarding proxy, and stays authority-form for
    CONNECT; ``Host`` is added first when ``host_values`` is given and the
    request has none; a forwarding proxy's headers are added. ``origin`` is
    the origin-form target when the caller has it ready (:class:`Targets`).

    Raises:
        InvalidRequestError: An HTTP/2 request on an HTTP/1 connection.
    """
    if conn.http2:
        return request
    if request.version is _HTTP_2:
        raise InvalidRequestError("HTTP/2 was requested but the connection speaks HTTP/1")
    uri = request.uri
    headers = request.headers
    connected = conn.connected
    if uri.form is _ABSOLUTE and not connected.proxied:
        uri = origin if origin is not None else uri.origin_form()
    # Host first (RFC 9112 section 3.2), then a forwarding proxy's fields,
    # then the request's own: extend() of a Headers copies, never revalidates.
    prepared: Headers | None = None
    if host_values is not None and headers.get_raw(b"host") is None:
        prepared = host_values.get(key, request.uri)
    if connected.proxied:
        proxy = connected.extra.get(ProxyHeaders)
        if proxy is not None and proxy.headers:
            if prepared is None:
                prepared = Headers()
            prepared.extend(
                [pair for pair in proxy.headers.raw() if headers.get_raw(pair[0].lower()) is None]
            )
    if prepared is not None:
        prepared.extend(headers)
        headers = prepared
    return Request.from_parts(
        request.method, uri, request.version, headers, request.body, request.extensions
    )


def may_retry(conn: PooledConn, exc: TrySendError[Any], request: Request[Any]) -> bool:
    """Whether a send that failed on a *reused* connection may go out again.

    Yes when nothing of it was written (or HTTP/2 says it was not processed:
    the request comes back in ``exc.request``), as in hyper. Beyond hyper,
    also for the keep-alive race on HTTP/1: the server closed the reused
    connection as the request went out and nothing of a response came back;
    resending is safe for idempotent methods (RFC 9110 section 9.2.2) with a
    body that can be sent again (``Full`` or ``Empty``).
    """
    if exc.request is not None:
        return True
    return (
        not conn.http2
        and request.method.is_idempotent
        and type(request.body) in (Full, Empty)
        and isinstance(exc.error, IncompleteMessageError | ClosedError)
    )
