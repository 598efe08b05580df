"""Run an ASGI application (default: the hello one) on hypercorn, in this one process.

Hypercorn's command line always forks worker processes when ``--workers`` is
at least 1; calling ``hypercorn.asyncio.serve`` directly keeps the server in
the process that ``run.py`` started and pinned, which is what ``workers=0``
does inside hypercorn. The access log stays off (hypercorn's default).

Usage: ``python hypercorn_serve.py --port N [--app MODULE:ATTR] [--loop asyncio|uvloop]``
(the module is imported from this folder).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib

from hypercorn.asyncio import serve
from hypercorn.config import Config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", default="asgi_hello:app")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--keep-alive-timeout", type=float, default=None)
    args = parser.parse_args()
    module, _, attr = args.app.partition(":")
    app = getattr(importlib.import_module(module), attr)
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    if args.keep_alive_timeout is not None:
        config.keep_alive_timeout = args.keep_alive_timeout
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(app, config, mode="asgi"))
    else:
        asyncio.run(serve(app, config, mode="asgi"))


if __name__ == "__main__":
    main()
