"""HTTP/3 beside HTTPS: a server on TCP and UDP, a client that finds HTTP/3 by itself.

Needs the ``http3`` extra (``pip install 'hyper-util[http3]' hyper-tls``) and a
certificate::

    python -m trustme -d /tmp/certs      # a throwaway CA + localhost cert
    python examples/http3.py --certfile /tmp/certs/server.pem \\
        --keyfile /tmp/certs/server.key --cacert /tmp/certs/client.pem

What it does: :func:`hyper_util.server.serve` with ``http3=True`` listens
on TCP (HTTP/1.1 and HTTP/2 over TLS) and on UDP (HTTP/3) on the same port,
and its TCP responses say so with ``Alt-Svc: h3=":PORT"``. Then a pooled
:class:`~hyper_util.client.legacy.Client` with ``http3=True`` fetches the
same URL a few times: the first answer comes over TCP and carries the
Alt-Svc field, the QUIC handshake runs in the background, and the later
requests go over HTTP/3 on one QUIC connection. Each line printed is the
answer of one request (the service names the version it was reached by).
The server then shuts down gracefully, both sides at once.
"""

from __future__ import annotations

import argparse
import sys

import anyio
from anyio.abc import TaskStatus

from hyper_core.body import Full, Incoming, collect
from hyper_core.http import Request, Response
from hyper_tls import HttpsConnector, TlsAcceptor, client_ssl_context, server_ssl_context
from hyper_util.client.legacy import Client
from hyper_util.server import serve


async def hello(request: Request[Incoming]) -> Response[Full]:
    """Say which HTTP version the request came over."""
    return Response(200, body=Full(f"Hello over {request.version}!".encode()))


async def main(certfile: str, keyfile: str, cacert: str) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def run_server(*, task_status: TaskStatus[tuple[str, int]]) -> None:
            await serve(
                hello,
                host="127.0.0.1",
                port=0,
                tls=TlsAcceptor(server_ssl_context(certfile, keyfile)),
                http3=True,  # UDP beside TCP, same port, advertised by Alt-Svc
                certfile=certfile,
                keyfile=keyfile,
                shutdown_event=stop,
                handle_signals=False,
                task_status=task_status,
            )

        _, port = await tg.start(run_server)
        url = f"https://localhost:{port}/"
        connector = HttpsConnector(ssl_context=client_ssl_context(cafile=cacert))
        async with Client(connector, http3=True, http3_cafile=cacert) as client:
            for _ in range(20):
                response = await client.get(url)
                text = (await collect(response.body)).to_bytes().decode()
                print(f"{text}  alt-svc: {response.headers.get('alt-svc')}", flush=True)
                if response.version.value == "HTTP/3":
                    break
                await anyio.sleep(0.1)  # the QUIC handshake runs in the background
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
