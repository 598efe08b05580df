"""aiohttp.web serving the benchmark's hello-world response.

One route, ``GET /``, answered with the 13-byte ``Hello, World!`` body and
``Content-Type: text/plain``; the access log is off, as for every other server.

Usage: ``python aiohttp_hello.py --port N``.
"""

from __future__ import annotations

import argparse

from aiohttp import web

BODY = b"Hello, World!"


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="text/plain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
