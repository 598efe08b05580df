"""The opening handshake as data: the request to send, the response to check.

What belongs here: the helpers both roles share (:func:`accept_token`, the
``Sec-WebSocket-Accept`` value; :func:`negotiate_deflate`, the server's
answer to a ``permessage-deflate`` offer) and the client's side: parsing a
WebSocket URL (:class:`Target`), the request of the opening handshake for
HTTP/1.1 (RFC 6455 section 4.1) and for HTTP/2 (RFC 8441 section 4), and
the checks of the server's answer (:func:`check_response`):
``Sec-WebSocket-Accept``, the subprotocol and the ``permessage-deflate``
parameters (RFC 7692). Nothing here does I/O, so each rule is tested with
plain values.

Strategy: the two protocols differ only in a few fields (HTTP/1.1 has the
key, ``Upgrade`` and ``Connection``; HTTP/2 a CONNECT with ``:protocol``), so
one :class:`Offer` records what was asked for and one check covers both.
Fields the handshake owns may not come from the caller's headers: a second
``Sec-WebSocket-Key`` or ``Upgrade`` would make the request mean something
else.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any, Final, final

from wsproto.extensions import Extension, PerMessageDeflate

from hyper_core.client.conn import http2
from hyper_core.error import InvalidUri, UserError
from hyper_core.http import Extensions, HeaderInit, Headers, Request, Uri, UriForm, Version
from hyper_util.ws._errors import HandshakeError

__all__ = [
    "MAX_REFUSED_BODY_SIZE",
    "Offer",
    "Target",
    "accept_token",
    "check_response",
    "negotiate_deflate",
]

#: Bytes of a refused handshake's response body kept in
#: :class:`~hyper_util.ws.HandshakeRefusedError` (the rest is not read).
MAX_REFUSED_BODY_SIZE: Final = 64 * 1024

_SCHEMES: Final = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Fields the handshake writes itself (lower case).
_OWNED: Final = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)
_DEFLATE: Final = "permessage-deflate"
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_token(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.strip() + _GUID).digest())


def negotiate_deflate(offers: str | None) -> tuple[PerMessageDeflate | None, str | None]:
    """Server side: accept a ``permessage-deflate`` offer, if any.

    Returns:
        The extension to run and the ``Sec-WebSocket-Extensions`` value to
        answer with, or ``(None, None)``.
    """
    if not offers:
        return None, None
    for offer in offers.split(","):
        if offer.strip().split(";")[0].strip() == "permessage-deflate":
            extension = PerMessageDeflate()
            accepted = extension.accept(offer.strip())
            if accepted is None:
                continue
            value = "permessage-deflate" if accepted is True else f"permessage-deflate; {accepted}"
            # ``accept`` may answer with only parameters; normalise to a full value.
            if isinstance(accepted, str) and accepted.startswith("permessage-deflate"):
                value = accepted
            return extension, value
    return None, None


@final
class Target:
    """A ``ws://`` or ``wss://`` URL (``http``/``https`` are taken as the same).

    Attributes:
        secure: ``wss``: the connection is TLS.
        uri: The same URL as ``http(s)://host:port/path?query``: what the
            connectors and the pooled client take, and the ``:scheme``,
            ``:authority`` and ``:path`` of an HTTP/2 handshake.
        host: The host, without IPv6 brackets.
        port: The port (80 or 443 when the URL names none).

    Raises:
        InvalidUri: not an absolute ``ws``/``wss``/``http``/``https`` URL
            with a host.
    """

    __slots__ = ("host", "port", "secure", "uri")

    def __init__(self, url: str | Uri) -> None:
        parsed = url if isinstance(url, Uri) else Uri(url)
        scheme = (parsed.scheme or "").lower()
        if parsed.form is not UriForm.ABSOLUTE or scheme not in _SCHEMES or not parsed.host:
            raise InvalidUri(f"a WebSocket URL is ws://host/path or wss://host/path, not {url!s}")
        self.secure = _SCHEMES[scheme] == "https"
        self.host = parsed.host.strip("[]")
        self.port = parsed.port if parsed.port is not None else (443 if self.secure else 80)
        self.uri = Uri.from_parts(
            scheme=_SCHEMES[scheme],
            authority=parsed.authority,
            path_and_query=parsed.path_and_query or "/",
        )

    @property
    def host_header(self) -> str:
        """The ``Host`` value: IPv6 in brackets, the port only when not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.secure else 80) else f"{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The URL with its ``ws``/``wss`` scheme, for messages."""
        return ("wss" if self.secure else "ws") + str(self.uri)[len(self.uri.scheme or "") :]

    def __repr__(self) -> str:
        return f"Target({self.ws_url!r})"


@final
class Offer:
    """What the client asks for: key, subprotocols, compression, extra fields.

    Args:
        subprotocols: Subprotocols to offer, most wanted first (RFC tokens).
        headers: Extra request fields (``Origin``, ``Authorization``,
            cookies...); none of the fields the handshake owns.
        per_message_deflate: Offer ``permessage-deflate``.

    Raises:
        UserError: a subprotocol is not a token, or ``headers`` holds a
            field the handshake owns (``Upgrade``, ``Connection``,
            ``Sec-WebSocket-*``).
        hyper_core.error.InvalidHeader: ``headers`` holds an invalid field.
    """

    __slots__ = ("deflate", "headers", "key", "subprotocols")

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = (),
        headers: HeaderInit | None = None,
        per_message_deflate: bool = True,
    ) -> None:
        if isinstance(subprotocols, str):
            raise UserError("subprotocols is a sequence of names, not one string")
        for name in subprotocols:
            if _TOKEN.fullmatch(name) is None:
                raise UserError(f"invalid subprotocol name {name!r} (it must be a token)")
        self.subprotocols = list(subprotocols)
        self.headers = Headers(headers) if headers is not None else Headers()
        for name in self.headers:
            if name.lower() in _OWNED:
                raise UserError(f"the handshake writes {name!r} itself; remove it from headers")
        self.key = base64.b64encode(os.urandom(16))
        self.deflate = PerMessageDeflate() if per_message_deflate else None

    def fields(self, *, http2_: bool) -> Headers:
        """The handshake's header fields, then the caller's.

        HTTP/1.1 (RFC 6455 section 4.1): ``Upgrade``, ``Connection`` and the
        key; HTTP/2 (RFC 8441 section 5) has none of them (the request is a
        CONNECT with ``:protocol``). Both carry the version, the
        subprotocols and the compression offer.
        """
        fields: list[tuple[str | bytes, str | bytes]] = []
        if not http2_:
            fields += [
                ("upgrade", "websocket"),
                ("connection", "Upgrade"),
                ("sec-websocket-key", self.key),
            ]
        fields.append(("sec-websocket-version", "13"))
        if self.subprotocols:
            fields.append(("sec-websocket-protocol", ", ".join(self.subprotocols)))
        if self.deflate is not None:
            # RFC 7692 section 7.1.2.2: the server may then limit our window.
            fields.append(("sec-websocket-extensions", f"{_DEFLATE}; client_max_window_bits"))
        headers = Headers(fields)
        headers.extend(self.headers)
        return headers

    def http1_request(self, target: Target) -> Request[Any]:
        """``GET`` with ``Upgrade``, origin-form, with ``Host`` (for a connection of our own)."""
        headers = self.fields(http2_=False)
        if "host" not in headers:
            headers = Headers([("host", target.host_header), *headers.raw()])
        return Request("GET", target.uri.path_and_query or "/", headers=headers)

    def http2_request(self, target: Target) -> Request[Any]:
        """The extended CONNECT: ``:protocol websocket``, ``:scheme``, ``:authority``, ``:path``."""
        extensions = Extensions()
        extensions.insert(http2.Protocol("websocket"))
        return Request(
            "CONNECT",
            target.uri,
            headers=self.fields(http2_=True),
            version=Version.HTTP_2,
            extensions=extensions,
        )


def check_response(
    offer: Offer, headers: Headers, *, http2_: bool
) -> tuple[str | None, list[Extension]]:
    """Check a successful answer (101, or 2xx on HTTP/2) against the offer.

    Returns:
        The subprotocol the server chose (``None``: none) and the extensions
        to run (``permessage-deflate`` with the server's parameters, or none).

    Raises:
        HandshakeError: the answer breaks RFC 6455 section 4.1 (or RFC 8441):
            ``Upgrade``/``Connection`` missing (HTTP/1.1), a wrong
            ``Sec-WebSocket-Accept``, a subprotocol or extension not offered,
            or ``permessage-deflate`` parameters out of range.
    """
    if not http2_:
        upgrade = (headers.get("upgrade") or "").strip().lower()
        if upgrade != "websocket":
            raise HandshakeError(f"the 101 response has Upgrade {upgrade!r}, not 'websocket'")
        tokens = {t.strip().lower() for v in headers.get_all("connection") for t in v.split(",")}
        if "upgrade" not in tokens:
            raise HandshakeError("the 101 response has no 'Connection: upgrade'")
        accepts = headers.get_all_raw(b"sec-websocket-accept")
        if len(accepts) != 1 or accepts[0].strip() != accept_token(offer.key):
            raise HandshakeError("the 101 response has a wrong Sec-WebSocket-Accept")
    return _subprotocol(offer, headers), _extensions(offer, headers)


def _subprotocol(offer: Offer, headers: Headers) -> str | None:
    values = [p.strip() for v in headers.get_all("sec-websocket-protocol") for p in v.split(",")]
    values = [v for v in values if v]
    if not values:
        return None
    if len(values) > 1:
        raise HandshakeError(f"the server chose several subprotocols: {values}")
    if values[0] not in offer.subprotocols:
        raise HandshakeError(f"the server chose subprotocol {values[0]!r}, which was not offered")
    return values[0]


def _extensions(offer: Offer, headers: Headers) -> list[Extension]:
    accepted = [
        e.strip() for v in headers.get_all("sec-websocket-extensions") for e in v.split(",")
    ]
    extensions: list[Extension] = []
    for value in accepted:
        if not value:
            continue
        name = value.split(";", 1)[0].strip().lower()
        deflate = offer.deflate
        if name != _DEFLATE or deflate is None or extensions:
            raise HandshakeError(f"the server accepted extension {value!r}, which was not offered")
        try:
            deflate.finalize(value)
        except (ValueError, IndexError) as exc:
            raise HandshakeError(f"invalid permessage-deflate parameters: {value!r}") from exc
        extensions.append(deflate)
    return extensions
