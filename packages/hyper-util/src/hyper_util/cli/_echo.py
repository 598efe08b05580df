"""The echo service behind ``python -m hyper_util serve`` (no folder given).

What belongs here: :func:`echo`, a service that answers every request with
a plain-text picture of it: the request line, the header fields as
received, an empty line, then the request body byte for byte.

Strategy: the head is rendered at once and the body is *streamed* back as
it arrives (the request's :class:`~hyper_core.body.Incoming` is pulled
while the response is written), so echoing a large upload costs a chunk of
memory, not the upload. When the request's length is known the response
has an exact ``Content-Length``; otherwise it is chunked (HTTP/1.1) or just
DATA frames (HTTP/2). The request line shows the path and query (on HTTP/2
the authority travels in ``:authority``, so it is shown as a ``host`` line
when the request had no ``Host`` field, to keep the picture comparable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from hyper_core.body import Frame, Incoming, SizeHint, StreamBody
from hyper_core.http import Headers, Request, Response, Version

__all__ = ["echo", "render_head"]


def render_head(request: Request[Incoming]) -> bytes:
    """The request line and header fields, as the echo service writes them.

    Header names keep the case they arrived in (HTTP/2 ones are lower case);
    lines end with CRLF and an empty line closes the head, as on the wire.
    """
    lines = [f"{request.method} {request.uri.path_and_query} {request.version}"]
    headers = request.headers
    if request.version is Version.HTTP_2 and "host" not in headers:
        authority = request.uri.authority
        if authority is not None:
            lines.append(f"host: {authority}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _stream(head: bytes, body: Incoming) -> AsyncIterator[bytes | Frame]:
    yield head
    try:
        async for chunk in body:
            yield chunk
    finally:
        await body.aclose()


async def echo(request: Request[Incoming]) -> Response[StreamBody]:
    """Answer with the request's head as text, followed by its body."""
    head = render_head(request)
    hint = request.body.size_hint()
    exact = hint.exact
    size = None if exact is None else SizeHint.with_exact(len(head) + exact)
    headers = Headers([("content-type", "text/plain; charset=utf-8")])
    return Response(
        200, headers=headers, body=StreamBody(_stream(head, request.body), size_hint=size)
    )
