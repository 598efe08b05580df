"""Fetch URLs with httpx on hyper's transport: one changed line in an httpx program.

Run it::

    python examples/httpx_client.py http://127.0.0.1:8080/ http://127.0.0.1:8080/other
    python examples/httpx_client.py --http2 http://127.0.0.1:8080/
    python examples/httpx_client.py --sync http://127.0.0.1:8080/
    python examples/httpx_client.py --backend trio http://127.0.0.1:8080/

Everything here is httpx's API: ``AsyncClient`` (or ``Client`` with
``--sync``), redirects followed, the body streamed to stdout. The only hyper
line is ``transport=``: connections, HTTP/1.1 and HTTP/2, the pool and the
timeouts are hyper-util's. All URLs share one client, so one keep-alive
connection serves them when they name the same origin.

For each URL, a line ``<status> <http version> <url>`` goes to stderr and
the body to stdout. ``--http2`` speaks HTTP/2 with prior knowledge (h2c);
over ``https://`` (with hyper-tls installed) ALPN picks it. Exit status: 0
when every response is 2xx, 1 otherwise or when a request fails.
"""

from __future__ import annotations

import argparse
import sys

import anyio
import httpx

from hyper_util.client.httpx import AsyncHyperTransport, HyperTransport


async def fetch_async(urls: list[str], http2: bool) -> int:
    transport = AsyncHyperTransport(http1=not http2, http2=http2)
    failed = 0
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        for url in urls:
            try:
                async with client.stream("GET", url) as response:
                    print(response.status_code, response.http_version, url, file=sys.stderr)
                    async for chunk in response.aiter_bytes():
                        sys.stdout.buffer.write(chunk)
                    failed += not response.is_success
            except httpx.HTTPError as exc:
                print(f"{url}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def fetch_sync(urls: list[str], http2: bool, backend: str) -> int:
    # The synchronous transport runs its connections on an event loop
    # thread of its own (``backend``); this thread just waits for answers.
    transport = HyperTransport(http1=not http2, http2=http2, backend=backend)
    failed = 0
    with httpx.Client(transport=transport, follow_redirects=True) as client:
        for url in urls:
            try:
                with client.stream("GET", url) as response:
                    print(response.status_code, response.http_version, url, file=sys.stderr)
                    for chunk in response.iter_bytes():
                        sys.stdout.buffer.write(chunk)
                    failed += not response.is_success
            except httpx.HTTPError as exc:
                print(f"{url}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="+", metavar="URL")
    parser.add_argument("--http2", action="store_true", help="HTTP/2 with prior knowledge")
    parser.add_argument("--sync", action="store_true", help="use httpx.Client, not AsyncClient")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    if args.sync:
        return fetch_sync(args.urls, args.http2, args.backend)
    status: int = anyio.run(fetch_async, args.urls, args.http2, backend=args.backend)
    return status


if __name__ == "__main__":
    sys.exit(main())
