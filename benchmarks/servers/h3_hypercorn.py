"""HTTP/3 benchmark server: hypercorn (``hypercorn[h3]``, aioquic) in one process.

``GET /`` answers ``Hello, World!``; ``GET /big`` answers ``--big`` bytes.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

HELLO = b"Hello, World!"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tcp-port", type=int, required=True)
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    parser.add_argument("--big", type=int, default=32 * 1024 * 1024)
    args = parser.parse_args()
    big = b"b" * args.big

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = big if scope["path"] == "/big" else HELLO
        kind = b"application/octet-stream" if body is big else b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    config = Config()
    config.bind = [f"127.0.0.1:{args.tcp_port}"]
    config.quic_bind = [f"127.0.0.1:{args.port}"]
    config.certfile = args.certfile
    config.keyfile = args.keyfile
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
