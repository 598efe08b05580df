"""Running ``hyper_util.asgi.serve`` inside a test, and TLS material for it.

What belongs here: :func:`running` (serve an app on 127.0.0.1, port 0, in
the test's own task group; leaving the block shuts it down gracefully) and
:func:`tls_setup` (a trustme CA, the server's TLS hook and the CA file for
clients).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import trustme

from hyper_util.asgi import ASGIApp, serve


@asynccontextmanager
async def running(app: ASGIApp, **options: Any) -> AsyncIterator[str]:
    """Serve ``app``; yields ``http://127.0.0.1:PORT`` (``https://localhost:PORT`` with tls)."""
    stop = anyio.Event()
    options.setdefault("handle_signals", False)
    options.setdefault("timeout_graceful_shutdown", 5)
    async with anyio.create_task_group() as tg:
        bound = await tg.start(partial(serve, app, port=0, shutdown_event=stop, **options))
        host = "localhost" if options.get("tls") is not None else "127.0.0.1"
        scheme = "https" if options.get("tls") is not None else "http"
        try:
            yield f"{scheme}://{host}:{bound[1]}"
        finally:
            stop.set()


class TlsSetup:
    """A CA, a ``localhost`` certificate, the server hook and a client context."""

    def __init__(self, folder: Path, *, http: str = "auto") -> None:
        from hyper_tls import TlsAcceptor, server_ssl_context

        self.ca = trustme.CA()
        leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        self.cert = folder / "cert.pem"
        self.key = folder / "key.pem"
        self.ca_file = folder / "ca.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(self.cert)
        leaf.private_key_pem.write_to_path(self.key)
        self.ca.cert_pem.write_to_path(self.ca_file)
        context = server_ssl_context(str(self.cert), str(self.key), http2=http != "1")
        self.hook = TlsAcceptor(context)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return context
