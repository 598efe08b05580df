"""Run the hello ASGI application on hypercorn for the h2c benchmark, in this one process.

As ``hypercorn_serve.py`` (``hypercorn.asyncio.serve`` called directly so the
server stays in the pinned process; no access log), with one change for
HTTP/2: hypercorn closes a connection with GOAWAY after
``keep_alive_max_requests`` (default 1,000) requests, which makes h2load
count every later stream of that connection as failed. The limit is raised
so that hypercorn, like the other servers, keeps its connections for the
whole run. Hypercorn accepts h2c with prior knowledge on a cleartext
listener by itself.

Usage: ``python h2_hypercorn.py --port N [--loop asyncio|uvloop]``.
"""

from __future__ import annotations

import argparse
import asyncio

from asgi_hello import app
from hypercorn.asyncio import serve
from hypercorn.config import Config

# More requests than any benchmark run sends on one connection.
MAX_REQUESTS_PER_CONNECTION = 10**9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    config.keep_alive_max_requests = MAX_REQUESTS_PER_CONNECTION
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(app, config, mode="asgi"))  # type: ignore[arg-type]
    else:
        asyncio.run(serve(app, config, mode="asgi"))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
