"""aiohttp.web serving ``run.py``'s workloads (``_workloads.py``), the access log off.

Usage: ``python aiohttp_hello.py --port N [--loop asyncio|uvloop]``.
"""

from __future__ import annotations

import argparse

from _workloads import EXTRA_HEADERS, HELLO, PAGE
from aiohttp import web

PAGE_HEADERS = {name.decode(): value.decode() for name, value in EXTRA_HEADERS}


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="text/plain")


async def page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE, content_type="text/plain", headers=PAGE_HEADERS)


async def upload(request: web.Request) -> web.Response:
    data = await request.read()
    return web.Response(body=str(len(data)).encode(), content_type="text/plain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    app = web.Application(client_max_size=1 << 20)
    app.router.add_get("/", hello)
    app.router.add_get("/headers", page)
    app.router.add_post("/upload", upload)
    loop = None
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
