"""Send messages over a WebSocket and print what comes back.

Run it (``websocket_server.py`` is an echo server to try it with)::

    python examples/websocket_client.py ws://127.0.0.1:8765/echo hello world
    python examples/websocket_client.py ws://127.0.0.1:8765/echo --http2 over h2
    python examples/websocket_client.py wss://example.org/socket hi    # needs hyper-tls

Each message is sent, then one answer is read and printed on its own line.
The first line on stderr says how the WebSocket was opened: the HTTP
version and the subprotocol the server chose.

``hyper_util.ws.connect`` does the handshake and the frames. Without
``--http2`` it opens a connection of its own with the HTTP/1.1 ``Upgrade``;
with it, an HTTP/2 connection and an extended CONNECT (RFC 8441). Given a
pooled ``Client``, it would use that client's HTTP/2 connection when it
already has one to the server. Leaving the ``async with`` block sends the
close frame (1000) and waits, a bounded time, for the server's answer.

Exit status: 0 when every answer came; 1 when the server refused the
handshake (its status on stderr), the connection failed or closed early;
2 for a bad command line.
"""

from __future__ import annotations

import argparse
import sys

import anyio

from hyper_core.error import HyperError
from hyper_util.ws import HandshakeRefusedError, connect


async def talk(url: str, messages: list[str], http2: bool) -> int:
    try:
        async with connect(url, subprotocols=["echo"], http2=True if http2 else None) as ws:
            print(
                f"connected: {ws.http_version}, subprotocol {ws.subprotocol}",
                file=sys.stderr,
                flush=True,
            )
            for message in messages:
                await ws.send(message)
                print(await ws.receive(), flush=True)
    except HandshakeRefusedError as exc:
        print(
            f"refused: {exc.status} {exc.body.decode(errors='replace')}".rstrip(), file=sys.stderr
        )
        return 1
    except HyperError as exc:  # connecting failed, or the WebSocket closed early
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Send messages over a WebSocket.")
    parser.add_argument("url", help="ws:// or wss:// URL")
    parser.add_argument("messages", nargs="*", default=["hello"], help="text messages to send")
    parser.add_argument("--http2", action="store_true", help="WebSocket over HTTP/2 (RFC 8441)")
    parser.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="event loop to run on"
    )
    # Intermixed: the messages may come before or after the options.
    return parser.parse_intermixed_args()


if __name__ == "__main__":
    args = parse_args()
    sys.exit(anyio.run(talk, args.url, args.messages, args.http2, backend=args.backend))
