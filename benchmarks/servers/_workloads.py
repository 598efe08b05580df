"""The HTTP/1 workloads of ``run.py``: what each server answers, byte for byte the same.

* ``hello`` (``GET /``): 200, ``Content-Type: text/plain``, ``Hello, World!``;
* ``headers`` (``GET /headers``): 200, a 4 KiB body and ten response header
  fields (``Content-Type`` and the nine of ``EXTRA_HEADERS``), what a page
  with caching and security headers looks like;
* ``upload`` (``POST /upload``): the service reads the whole 16 KiB request
  body, then answers 200 ``text/plain`` with its length in decimal.

Each server adds its own ``Content-Length``, ``Date`` and sometimes
``Server``; ``run.py``'s probe checks the rest.
"""

from __future__ import annotations

HELLO = b"Hello, World!"
PAGE = b"x" * 4096
UPLOAD_SIZE = 16384
CONTENT_TYPE = (b"content-type", b"text/plain")
EXTRA_HEADERS: list[tuple[bytes, bytes]] = [
    (b"cache-control", b"no-cache, no-store, must-revalidate"),
    (b"etag", b'"33a64df551425fcc55e4d42a148795d9f25f89d4"'),
    (b"last-modified", b"Wed, 21 Oct 2015 07:28:00 GMT"),
    (b"vary", b"Accept-Encoding"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"set-cookie", b"session=3f9a8c1e; Path=/; HttpOnly; SameSite=Lax"),
    (b"x-request-id", b"f058ebd6-02f7-4d3f-942e-904344e8cde5"),
]
PAGE_HEADERS = [CONTENT_TYPE, *EXTRA_HEADERS]
