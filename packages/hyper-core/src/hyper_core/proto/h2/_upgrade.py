"""The server side of an HTTP/1.1 ``Upgrade: h2c`` (RFC 7540 section 3.2).

What belongs here: what turns the HTTP/1.1 request that asked for the
upgrade into stream 1 of the HTTP/2 connection: checking its
``HTTP2-Settings`` value and building the HTTP/2 request the service sees.
Deciding *whether* to upgrade (which requests, which bodies) is the caller's
policy (hyper-util's auto server); the public entry is
:meth:`hyper_core.server.conn.http2.Builder.serve_upgraded_connection`.

Strategy: the client's request is complete before the ``101`` (its body
was read in full by the HTTP/1 side), so stream 1 starts half-closed
(remote): h2's ``initiate_upgrade_connection`` sets that up and applies the
client's settings in place of a first SETTINGS frame. The request keeps its
method, target, fields and extensions; it loses what described the
HTTP/1.1 connection (RFC 9113 section 8.2.2), and its ``Host`` becomes the
authority of an absolute ``http`` URI, as for any HTTP/2 request.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from hyper_core.body import Incoming
from hyper_core.http import Headers, Request, Uri, Version

__all__ = ["settings_payload", "upgraded_request"]

#: Fields that describe the HTTP/1.1 connection, not the request; they may
#: not appear in an HTTP/2 request (RFC 9113 section 8.2.2). ``host`` goes
#: into the URI's authority instead.
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"upgrade",
        b"http2-settings",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"host",
    }
)


def settings_payload(request: Request[Any]) -> bytes:
    """The request's ``HTTP2-Settings`` value, padded as h2 wants it.

    Raises:
        ValueError: No field, more than one, or not the base64url encoding of
            whole 6-byte settings (RFC 7540 section 3.2.1).
    """
    values = request.headers.get_all_raw(b"http2-settings")
    if len(values) != 1:
        raise ValueError("an h2c upgrade request has exactly one HTTP2-Settings field")
    # token68 without padding; the decoder wants it padded.
    raw = values[0].strip()
    raw += b"=" * (-len(raw) % 4)
    try:
        decoded = base64.b64decode(raw, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("HTTP2-Settings is not base64url") from None
    if len(decoded) % 6:
        raise ValueError("HTTP2-Settings does not hold whole 6-byte settings")
    return raw


def upgraded_request(request: Request[Incoming]) -> Request[Incoming]:
    """``request`` as stream 1 sees it: HTTP/2, absolute URI, no connection fields."""
    fields = [
        (name, value) for name, value in request.headers.raw() if name.lower() not in _HOP_BY_HOP
    ]
    authority = request.headers.get("host") or "localhost"
    return Request(
        request.method,
        Uri(f"http://{authority}{request.uri.path_and_query}"),
        headers=Headers(fields),
        body=request.body,
        version=Version.HTTP_2,
        extensions=request.extensions,
    )
