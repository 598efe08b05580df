"""HTTP/3 benchmark server: hyper-core's http3 connection on hyper_core.quic (aioquic).

``GET /`` answers ``Hello, World!``; ``GET /big`` answers ``--big`` bytes.
"""

from __future__ import annotations

import argparse
import contextlib

import anyio

from hyper_core import quic
from hyper_core.body import Body, Full, Incoming
from hyper_core.http import Request, Response
from hyper_core.server.conn import http3

HELLO = b"Hello, World!"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    parser.add_argument("--big", type=int, default=32 * 1024 * 1024)
    parser.add_argument("--backend", default="asyncio")
    args = parser.parse_args()
    big = b"b" * args.big
    builder = http3.Builder()

    async def service(request: Request[Incoming]) -> Response[Body]:
        if request.uri.path == "/big":
            return Response(
                200, headers={"content-type": "application/octet-stream"}, body=Full(big)
            )
        return Response(200, headers={"content-type": "text/plain"}, body=Full(HELLO))

    async def run() -> None:
        async with (
            quic.listen("127.0.0.1", args.port, certfile=args.certfile, keyfile=args.keyfile) as ql,
            anyio.create_task_group() as tg,
        ):
            async for connection in ql:

                async def serve(c: quic.AioquicConnection = connection) -> None:
                    with contextlib.suppress(Exception):  # a benchmark client hanging up
                        await builder.serve_connection(c, service)

                tg.start_soon(serve)

    anyio.run(run, backend=args.backend)


if __name__ == "__main__":
    main()
