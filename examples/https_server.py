"""An HTTPS server with HTTP/2 by ALPN, and certificates reloaded on SIGHUP.

Run it with a certificate and key (PEM), then fetch from it::

    python -m trustme -d /tmp/certs      # a throwaway CA + localhost cert
    python examples/https_server.py --certfile /tmp/certs/server.pem \\
        --keyfile /tmp/certs/server.key --port 8443
    curl --cacert /tmp/certs/client.pem --http2 https://localhost:8443/
    python examples/https_client.py --cacert /tmp/certs/client.pem https://localhost:8443/

The pieces: :func:`hyper_tls.server_ssl_context` builds a context with
modern defaults (TLS 1.2+, ALPN ``h2`` and ``http/1.1``);
:class:`hyper_tls.TlsAcceptor` runs each handshake in that connection's own
task with a 10 s timeout; :func:`hyper_util.server.serve` hands the ALPN
result to the auto server, so a client that chose ``h2`` gets HTTP/2.
Replace the certificate files and send SIGHUP: new connections get the new
certificate, open ones keep theirs. SIGINT or SIGTERM shut down gracefully.
"""

from __future__ import annotations

import argparse
import signal
import sys

import anyio
from anyio.abc import TaskStatus

from hyper_core.body import Full, Incoming
from hyper_core.http import Request, Response
from hyper_tls import TlsAcceptor, server_ssl_context
from hyper_util.server import serve


async def hello(request: Request[Incoming]) -> Response[Full]:
    """Say which HTTP version the client negotiated."""
    return Response(200, body=Full(f"Hello over {request.version}!\n".encode()))


async def reload_on_sighup(acceptor: TlsAcceptor, certfile: str, keyfile: str) -> None:
    """Reload the certificate and key at each SIGHUP; keep the old ones if that fails."""
    with anyio.open_signal_receiver(signal.SIGHUP) as signals:
        async for _ in signals:
            try:
                acceptor.reload(certfile, keyfile)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                print(f"reload failed, keeping the old certificate: {exc}", file=sys.stderr)
            else:
                print("certificate reloaded", file=sys.stderr, flush=True)


async def main(certfile: str, keyfile: str, port: int) -> None:
    acceptor = TlsAcceptor(server_ssl_context(certfile, keyfile))
    async with anyio.create_task_group() as tg:

        async def run_server(*, task_status: TaskStatus[tuple[str, int]]) -> None:
            await serve(
                hello,
                host="127.0.0.1",
                port=port,
                tls=acceptor,
                announce=False,  # the line below, on stdout, says it instead
                task_status=task_status,
            )
            # serve() returned: a graceful shutdown (SIGINT/SIGTERM) ended; stop the reloader.
            tg.cancel_scope.cancel()

        if sys.platform != "win32":
            tg.start_soon(reload_on_sighup, acceptor, certfile, keyfile)
        host, bound = await tg.start(run_server)
        # A test (or a person) reads the port from this line.
        print(f"listening on https://{host}:{bound}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN).")
    parser.add_argument("--certfile", required=True, help="certificate chain, PEM")
    parser.add_argument("--keyfile", required=True, help="private key, PEM")
    parser.add_argument("--port", type=int, default=8443, help="TCP port (0 picks a free one)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.certfile, args.keyfile, args.port, backend=args.backend)
