"""An ASGI application served by hyper_util.asgi, without any framework.

Run it, then talk to it::

    python examples/asgi_server.py --port 8000
    curl http://127.0.0.1:8000/hello
    curl --http2-prior-knowledge -d 'some data' http://127.0.0.1:8000/echo
    python -m websockets ws://127.0.0.1:8000/ws       # or any WebSocket client

or run the same ``app`` with the command line::

    python -m hyper_util run asgi_server:app --app-dir examples

The app shows the three ASGI scopes: ``lifespan`` (its startup puts a
greeting into the state that every request sees), ``http`` (``/hello``
answers the greeting, ``/echo`` streams the request body back as it
arrives) and ``websocket`` (``/ws`` echoes every message). HTTP/1.1 and
HTTP/2 (h2c) are served on the same port, and WebSockets work on both.
``--backend trio`` runs it on trio. Ctrl-C or SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus

from hyper_util.asgi import Receive, Scope, Send, serve


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = b"Hello from the lifespan state!\n"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        if scope["path"] == "/echo":
            # Stream the body back chunk by chunk: nothing is buffered whole.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                more = message["more_body"]
                await send(
                    {"type": "http.response.body", "body": message["body"], "more_body": more}
                )
            return
        greeting = scope["state"]["greeting"] if scope["path"] == "/hello" else b"Not found\n"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if scope["path"] == "/hello" else 404,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"%d" % len(greeting)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": greeting})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({**message, "type": "websocket.send"})


async def main(port: int, *, task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED) -> None:
    async with anyio.create_task_group() as tg:
        bound = await tg.start(partial(serve, app, port=port))
        print(f"listening on http://127.0.0.1:{bound[1]}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.port, backend=args.backend)
    sys.exit(0)
