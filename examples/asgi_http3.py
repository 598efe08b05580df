"""An ASGI application over HTTP/3, unchanged: requests and a WebSocket on QUIC.

Needs the ``http3`` extra (``pip install 'hyper-util[http3]' hyper-tls``) and a
certificate::

    python -m trustme -d /tmp/certs      # a throwaway CA + localhost cert
    python examples/asgi_http3.py --certfile /tmp/certs/server.pem \\
        --keyfile /tmp/certs/server.key --cacert /tmp/certs/client.pem

What it does: :func:`hyper_util.asgi.serve` with ``http3=True`` serves a
plain ASGI app on TCP (HTTPS) and on UDP (HTTP/3), the same port number;
what ``python -m hyper_util run app:app --certfile ... --http3`` does from
the command line. A pooled :class:`~hyper_util.client.legacy.Client` that
knows the origin speaks HTTP/3 (``http3_origins``) then sends a request and
opens a WebSocket, both over QUIC (the WebSocket by extended CONNECT, RFC
9220). The app answers with what its scope says; each line printed is one
answer. The server then shuts down gracefully.
"""

from __future__ import annotations

import argparse
import sys

import anyio
from anyio.abc import TaskStatus

from hyper_core.body import collect
from hyper_tls import HttpsConnector, TlsAcceptor, client_ssl_context, server_ssl_context
from hyper_util import asgi
from hyper_util.asgi import Receive, Scope, Send
from hyper_util.client.legacy import Client
from hyper_util.ws import connect


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI 3 app that knows nothing of HTTP/3: it reports its scope."""
    if scope["type"] == "http":
        text = f"http_version={scope['http_version']} scheme={scope['scheme']}"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text.encode()})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": f"echo {message['text']}"})
        await send({"type": "websocket.close", "code": 1000})


async def main(certfile: str, keyfile: str, cacert: str) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def run_server(*, task_status: TaskStatus[tuple[str, int]]) -> None:
            await asgi.serve(
                app,
                host="127.0.0.1",
                port=0,
                tls=TlsAcceptor(server_ssl_context(certfile, keyfile)),
                http3=True,  # UDP beside TCP, same port
                certfile=certfile,
                keyfile=keyfile,
                shutdown_event=stop,
                handle_signals=False,
                task_status=task_status,
            )

        _, port = await tg.start(run_server)
        connector = HttpsConnector(ssl_context=client_ssl_context(cafile=cacert))
        async with Client(
            connector, http3=True, http3_origins=[f"localhost:{port}"], http3_cafile=cacert
        ) as client:
            response = await client.get(f"https://localhost:{port}/")
            text = (await collect(response.body)).to_bytes().decode()
            print(f"{response.version}: {text}", flush=True)
            # http2=True: extended CONNECT through the pool (RFC 8441/9220), which
            # speaks HTTP/3 to this origin; it waits for the server's SETTINGS.
            # Without it the pool is asked whether they allowed it already,
            # and they may still be on their way.
            url = f"wss://localhost:{port}/chat"
            async with connect(url, client=client, http2=True) as ws:
                await ws.send("hello")
                reply = await ws.receive()  # text: str, binary: bytes
                assert isinstance(reply, str)
                print(f"WebSocket over {ws.http_version}: {reply}", flush=True)
        stop.set()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    parser.add_argument("--cacert", required=True)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.certfile, args.keyfile, args.cacert, backend=args.backend)
    sys.exit(0)
