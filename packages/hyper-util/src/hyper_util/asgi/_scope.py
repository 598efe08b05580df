"""Building ASGI ``http`` and ``websocket`` scopes from hyper-core requests.

What belongs here: :class:`ConnectionInfo` (what is fixed per connection:
addresses, scheme, TLS details) and :func:`http_scope` / :func:`websocket_scope`.

Strategy: everything that is the same for every request of a connection is
computed once into :class:`ConnectionInfo`; a scope is then one dict built
from the request's parts. The percent-decoded path is cached per raw path
(a bounded dict: services see the same few paths over and over). Header
names are lower-cased as the spec asks; HTTP/2 and HTTP/3 pseudo-fields never
reach the service, and ``:authority`` comes back as the first ``host`` field
(spec). A QUIC connection (HTTP/3) is TLS without an ``ssl`` object: its
``tls`` extension comes from the connection's TLS typed attributes.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute

from hyper_core.http import Request, Version
from hyper_core.rt import IO

from ._types import ASGI_VERSION, SPEC_VERSION

__all__ = ["ConnectionInfo", "http_scope", "websocket_scope"]

_PATH_CACHE: dict[str, tuple[bytes, str]] = {}
#: Distinct raw paths whose decoded form is kept (bounded: paths come from clients).
_PATH_CACHE_MAX: Final = 1024
# Enum members as module constants: read from the class, each is a
# metaclass lookup (60 ns); compared by identity, no Python-level hash.
_HTTP_11: Final = Version.HTTP_11
_HTTP_2: Final = Version.HTTP_2
_HTTP_3: Final = Version.HTTP_3
_HTTP_VERSIONS: Final = {
    Version.HTTP_11: "1.1",
    Version.HTTP_10: "1.0",
    Version.HTTP_2: "2",
    Version.HTTP_3: "3",
}
#: The standard methods' names as plain ``str`` (a lookup costs less than ``str()``).
_METHOD_NAMES: Final[dict[str, str]] = {
    name: name for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
}
_TLS_VERSIONS: Final = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
#: The TLS 1.3 cipher suites by name (RFC 8446 appendix B.4), all QUIC uses.
# anyio's typed attributes are object() sentinels annotated with the type of
# the value they stand for: read through Any, or compiled code checks the
# sentinel against that type (TypeError: str object expected; got object).
_TLS: Final[Any] = TLSAttribute
_SOCKET: Final[Any] = SocketAttribute
_TLS13_SUITES: Final = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
}


def _paths(path: str) -> tuple[bytes, str]:
    cached = _PATH_CACHE.get(path)
    if cached is None:
        raw = path.encode("ascii")
        # ASGI: percent-encoded sequences and UTF-8 decoded into characters.
        cached = (raw, unquote(path, errors="surrogateescape") if "%" in path else path)
        if len(_PATH_CACHE) >= _PATH_CACHE_MAX:
            _PATH_CACHE.clear()
        _PATH_CACHE[path] = cached
    return cached


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


def _tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    chain: list[str] = []
    name: str | None = None
    der = ssl_object.getpeercert(True)
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        cert: dict[str, Any] = dict(ssl_object.getpeercert() or {})
        subject: Any = cert.get("subject", ())
        parts = [f"{key}={value}" for rdn in reversed(subject) for key, value in rdn]
        name = ",".join(parts) or None
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _quic_tls_extension(extra: Any) -> dict[str, Any]:
    # QUIC (HTTP/3): TLS 1.3 run by the QUIC library, without an ssl object;
    # its typed attributes give the version and the cipher suite.
    cipher = extra(_TLS.cipher, None)
    return {
        "server_cert": None,
        "client_cert_chain": [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(extra(_TLS.tls_version, None) or ""),
        "cipher_suite": _TLS13_SUITES.get(cipher[0]) if cipher else None,
    }


class ConnectionInfo:
    """What every scope of one connection shares.

    Args:
        client: The peer's ``(host, port)``, or None (Unix sockets).
        server: Our ``(host, port)``, or None.
        secure: The connection is TLS (``https``/``wss``).
        root_path: The mount point of the application (``--root-path``).
        tls: The ``tls`` scope extension, for TLS connections.
        state: The lifespan state, shallow-copied into every scope.
    """

    __slots__ = (
        "client",
        "http_scheme",
        "last_fields",
        "last_headers",
        "root_path",
        "server",
        "state",
        "tls",
        "ws_scheme",
    )

    def __init__(
        self,
        *,
        client: tuple[str, int] | None = None,
        server: tuple[str, int] | None = None,
        secure: bool = False,
        root_path: str = "",
        tls: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.server = server
        self.http_scheme = "https" if secure else "http"
        self.ws_scheme = "wss" if secure else "ws"
        self.root_path = root_path
        self.tls = tls
        self.state = state
        #: The memo of :func:`http_scope`: the header fields of the last
        #: HTTP/1.1 ``http`` request (as the connection parsed them; never
        #: written) and its scope's header list (never handed out).
        self.last_fields: list[tuple[bytes, bytes]] | None = None
        self.last_headers: list[tuple[bytes, bytes]] = []

    @classmethod
    def from_io(
        cls, io: IO, *, root_path: str = "", state: dict[str, Any] | None = None
    ) -> ConnectionInfo:
        """Read addresses and TLS details from an accepted stream's typed attributes."""
        extra = getattr(io, "extra", None)
        if extra is None:
            return cls(root_path=root_path, state=state)
        ssl_object = extra(_TLS.ssl_object, None)
        if ssl_object is not None:
            tls = _tls_extension(ssl_object)
        elif extra(_TLS.tls_version, None) is not None:
            tls = _quic_tls_extension(extra)
        else:
            tls = None
        return cls(
            client=_address(extra(_SOCKET.remote_address, None)),
            server=_address(extra(_SOCKET.local_address, None)),
            secure=tls is not None,
            root_path=root_path,
            tls=tls,
            state=state,
        )


def _headers(request: Request[Any]) -> list[tuple[bytes, bytes]]:
    fields = request.headers.raw()
    version = request.version
    if version is _HTTP_2 or version is _HTTP_3:
        # Names are lower-case on HTTP/2 and 3 already; :authority becomes host (spec).
        authority = request.uri.authority
        out = [(n, v) for n, v in fields if n != b"host"]
        if authority is not None:
            out.insert(0, (b"host", authority.encode("ascii")))
        return out
    return [(n.lower(), v) for n, v in fields]


def http_scope(
    request: Request[Any],
    info: ConnectionInfo,
    extensions: Mapping[str, Any],
    repeated: bool = False,
) -> dict[str, Any]:
    """The ``http`` scope of ``request``.

    A keep-alive client sends the same header fields request after request:
    an HTTP/1.1 request whose fields equal the previous one's on ``info``
    (byte for byte, in order: ``info.last_fields``) gets a copy of that
    request's header list instead of lower-casing the names again. The
    caller compares the fields once, for this and for its WebSocket test
    (see ``ASGIService.__call__``), and says so with ``repeated``.
    """
    if repeated:
        return _scope(request, info, extensions, "1.1", info.last_headers.copy())
    if request.version is _HTTP_11:
        fields = request.headers.raw()
        headers = [(n.lower(), v) for n, v in fields]
        info.last_fields = fields
        info.last_headers = headers.copy()  # the app may change the one it gets
        return _scope(request, info, extensions, "1.1", headers)
    return _scope(request, info, extensions, None, _headers(request))


def _scope(
    request: Request[Any],
    info: ConnectionInfo,
    extensions: Mapping[str, Any],
    http_version: str | None,
    headers: list[tuple[bytes, bytes]],
) -> dict[str, Any]:
    uri = request.uri
    path = uri.path
    paths = _PATH_CACHE.get(path) or _paths(path)  # _paths' lookup, inlined
    query = uri.query
    method = request.method
    # One dict display: the cheapest way to build it (every key is needed:
    # frameworks read most of them, so building lazily would cost more).
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": ASGI_VERSION, "spec_version": SPEC_VERSION},
        "http_version": http_version or _HTTP_VERSIONS.get(request.version, "1.1"),
        "scheme": info.http_scheme,
        "method": _METHOD_NAMES.get(method) or str(method),
        "path": paths[1],
        "raw_path": paths[0],
        "query_string": query.encode("ascii") if query else b"",
        "root_path": info.root_path,
        "headers": headers,
        "client": info.client,
        "server": info.server,
        "extensions": extensions.copy() if type(extensions) is dict else dict(extensions),
    }
    if info.state is not None:
        scope["state"] = info.state.copy()
    return scope


def websocket_scope(
    request: Request[Any],
    info: ConnectionInfo,
    subprotocols: list[str],
    extensions: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``websocket`` scope of an upgrade (HTTP/1.1) or extended CONNECT (HTTP/2) request."""
    version = "1.1" if request.version is _HTTP_11 else None
    scope = _scope(request, info, extensions, version, _headers(request))
    scope["type"] = "websocket"
    scope["scheme"] = info.ws_scheme
    del scope["method"]  # not a key of the websocket scope
    scope["subprotocols"] = subprotocols
    return scope
