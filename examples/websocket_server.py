"""A WebSocket echo server: an ASGI app on hyper_util's server, HTTP/1.1 and HTTP/2.

Run it, then talk to it::

    python examples/websocket_server.py --port 8765
    python examples/websocket_client.py ws://127.0.0.1:8765/echo hello world
    python examples/websocket_client.py ws://127.0.0.1:8765/echo --http2 hi

The app is plain ASGI, as Starlette or FastAPI would run it: it accepts a
WebSocket on ``/echo`` (with the ``echo`` subprotocol when the client offers
it), sends every message back, and refuses any other path (``403``).
:func:`hyper_util.asgi.serve` runs it on one port for both protocols: an
HTTP/1.1 ``Upgrade``, or an HTTP/2 extended CONNECT (RFC 8441) on a
connection that may carry other requests too. Frames, pings, compression
and the closing handshake are the server's work, not the app's.

``--backend trio`` runs the same code on trio. Ctrl-C or SIGTERM stops it
gracefully.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

import anyio
from hello_server import parse_args

from hyper_util.asgi import Receive, Scope, Send, serve


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo WebSocket messages on ``/echo``; refuse everything else."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"WebSockets only, on /echo\n"})
        return
    if scope["type"] != "websocket":
        return  # lifespan: nothing to set up
    await receive()  # websocket.connect
    if scope["path"] != "/echo":
        await send({"type": "websocket.close"})  # before accepting: a 403 response
        return
    subprotocol = "echo" if "echo" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        reply: dict[str, Any] = {"type": "websocket.send"}
        if message.get("text") is not None:
            reply["text"] = message["text"]
        else:
            reply["bytes"] = message["bytes"]
        await send(reply)


async def main(port: int) -> None:
    async with anyio.create_task_group() as tg:
        host, actual_port = await tg.start(partial(serve, echo, port=port, lifespan="off"))
        # A test (or a person) reads the port from this line.
        print(f"listening on http://{host}:{actual_port}", flush=True)


if __name__ == "__main__":
    args = parse_args("Echo WebSocket messages on /echo, over HTTP/1.1 and HTTP/2.")
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main, args.port, backend=args.backend)
