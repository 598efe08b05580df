"""Fetch an HTTPS URL with the pooled Client: OS trust store, HTTP/2 by ALPN.

Run it::

    python examples/https_client.py https://www.python.org/
    python examples/https_client.py --cacert /tmp/certs/client.pem https://localhost:8443/
    python examples/https_client.py --http1 https://localhost:8443/

:class:`hyper_tls.HttpsConnector` gives the client TLS: the certificate is
checked against the operating system's trust store (or only ``--cacert``)
and must name the host; ALPN offers ``h2`` and ``http/1.1``, and when the
server picks ``h2`` the pool uses one HTTP/2 connection for the origin.
A refused certificate raises a distinct error (``UnknownCaError``,
``HostnameMismatchError``, ``CertificateExpiredError``) naming the host;
nothing falls back to an unverified connection.

Prints the negotiated protocol and TLS version on stderr, the body on
stdout. Exit status: 0 for a 2xx response, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

import anyio

from hyper_core.body import collect
from hyper_tls import HttpsConnector, TlsError, client_ssl_context
from hyper_util.client.legacy import Client, ClientError
from hyper_util.client.legacy.connect import Connected


async def main(url: str, cacert: str | None, http2: bool) -> int:
    # The connector sets the context's ALPN list from its own ``http2`` flag.
    connector = HttpsConnector(ssl_context=client_ssl_context(cafile=cacert), http2=http2)
    async with Client(connector) as client:
        try:
            response = await client.get(url)
        except TlsError as exc:
            print(f"TLS refused: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        except ClientError as exc:
            print(f"request failed: {exc}", file=sys.stderr)
            return 1
        body = (await collect(response.body)).to_bytes()
    connected = response.extensions.get(Connected)
    alpn = "h2" if connected is not None and connected.alpn_h2 else "http/1.1"
    print(f"{response.status} {response.version} (ALPN {alpn})", file=sys.stderr)
    sys.stdout.buffer.write(body)
    return 0 if response.status.is_success() else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Fetch an https:// URL.")
    parser.add_argument("url")
    parser.add_argument("--cacert", help="trust only this CA file (PEM) instead of the OS store")
    parser.add_argument("--http1", action="store_true", help="offer only http/1.1 by ALPN")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    sys.exit(anyio.run(main, args.url, args.cacert, not args.http1, backend=args.backend))
