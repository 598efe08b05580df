"""The HTTP/2 client's header lists: request heads and trailers out, response heads in.

What belongs here: :func:`encode_request` (a ``Request`` to the HEADERS
fields h2 sends, with the pseudo-headers of RFC 9113 section 8.3.1 and
extended CONNECT's ``:protocol``), :func:`encode_trailers`, and
``_split_head`` (a received head to its status and regular fields). Pure
functions of their arguments; the connection that calls them is in
``_client.py`` and its bases.

Strategy: one pass over the request's raw headers, lower-cased as they are
copied; connection-specific fields (and those the ``connection`` header
lists) are dropped, as hyper does, so h2's own outbound validation can stay
off. Method bytes of the common methods are looked up, not encoded.
"""

from __future__ import annotations

from typing import Any, Final

from hyper_core.body import Body
from hyper_core.error import UserError
from hyper_core.http import Headers, Request
from hyper_core.proto.h2._common import CONNECTION_HEADERS, H2Protocol

__all__ = ["_split_head", "encode_request", "encode_trailers"]


# Connection-specific fields (RFC 9113 section 8.2.2), stripped as hyper does;
# ``host`` moves into ``:authority`` (section 8.3.1); ``te`` survives only as
# "trailers".
_STRIPPED: Final = CONNECTION_HEADERS | {b"host", b"te"}
# Methods whose request body has no defined meaning: an empty body of known
# length gets no ``content-length: 0`` (hyper's method_has_defined_payload_semantics).
_NO_PAYLOAD_SEMANTICS: Final = frozenset({"GET", "HEAD", "DELETE", "CONNECT"})
_METHOD_BYTES: Final = {
    m: m.encode() for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
}


def encode_request(
    request: Request[Any], body: Body, protocol: H2Protocol | None
) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Return the HEADERS fields of ``request`` and whether it is a CONNECT.

    Raises:
        UserError: a CONNECT without authority or with a body, or a
            ``Protocol`` on a method other than CONNECT.
    """
    method = request.method
    method_bytes = _METHOD_BYTES.get(method) or method.encode("ascii")
    uri = request.uri
    headers = request.headers
    authority = uri.authority
    if authority is not None:
        authority = authority.rpartition("@")[2]  # userinfo never goes on the wire
        authority_bytes: bytes | None = authority.encode("ascii")
    else:
        authority_bytes = headers.get_raw(b"host")
    is_connect = method == "CONNECT"
    fields: list[tuple[bytes, bytes]] = [(b":method", method_bytes)]
    if is_connect and protocol is None:
        if authority_bytes is None:
            raise UserError("a CONNECT request needs an authority (host:port)")
        fields.append((b":authority", authority_bytes))
    else:
        if protocol is not None and not is_connect:
            raise UserError("a :protocol (extended CONNECT) needs the CONNECT method")
        scheme = uri.scheme or "http"
        fields.append((b":scheme", scheme.encode("ascii")))
        if authority_bytes is not None:
            fields.append((b":authority", authority_bytes))
        fields.append((b":path", (uri.path_and_query or "/").encode("ascii")))
        if protocol is not None:
            fields.append((b":protocol", protocol.as_bytes()))
    listed: frozenset[bytes] = frozenset()
    connection = headers.get_all_raw(b"connection")
    if connection:
        listed = frozenset(
            token.strip().lower() for value in connection for token in value.split(b",")
        )
    has_length = False
    for name, value in headers.raw():
        lower = name.lower()
        if lower in _STRIPPED or lower in listed:
            if lower == b"te" and value.strip().lower() == b"trailers":
                fields.append((b"te", b"trailers"))
            continue
        if lower == b"content-length":
            has_length = True
            if is_connect and value.strip() != b"0":
                raise UserError("a CONNECT request cannot have a body")
        fields.append((lower, value))
    if not has_length:
        exact = body.size_hint().exact
        if exact is not None:
            if is_connect and exact:
                raise UserError("a CONNECT request cannot have a body")
            if exact or method not in _NO_PAYLOAD_SEMANTICS:
                fields.append((b"content-length", str(exact).encode("ascii")))
    return fields, is_connect


def encode_trailers(trailers: Headers) -> list[tuple[bytes, bytes]]:
    """Return trailer fields for HEADERS: lower-case, connection-specific ones dropped."""
    out: list[tuple[bytes, bytes]] = []
    for name, value in trailers.raw():
        lower = name.lower()
        if lower not in _STRIPPED:
            out.append((lower, value))
    return out


def _split_head(headers: list[Any]) -> tuple[int, list[tuple[bytes, bytes]]]:
    status = 0
    fields: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name[0] == 58:  # b":"
            if name == b":status":
                status = int(value)
        else:
            fields.append((name, value))
    return status, fields
