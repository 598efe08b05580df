"""Run the hello ASGI application on hypercorn, in this one process.

Hypercorn's command line always forks worker processes when ``--workers`` is
at least 1; calling ``hypercorn.asyncio.serve`` directly keeps the server in
the process that ``run.py`` started and pinned, which is what ``workers=0``
does inside hypercorn. The access log stays off (hypercorn's default).

Usage: ``python hypercorn_serve.py --port N``.
"""

from __future__ import annotations

import argparse
import asyncio

from asgi_hello import app
from hypercorn.asyncio import serve
from hypercorn.config import Config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    asyncio.run(serve(app, config, mode="asgi"))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
