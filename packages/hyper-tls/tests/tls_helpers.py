"""Helpers shared by the hyper-tls tests: certificate files and servers.

What belongs here: :class:`CertFiles` (a trustme CA and a ``localhost``
leaf written as PEM files, for APIs and tools that want paths: nginx,
hypercorn, curl), :func:`running_tls_server` (:class:`hyper_tls.TlsAcceptor`
behind :func:`hyper_util.server.serve` on 127.0.0.1 port 0) and
:func:`raw_server` (an anyio listener running a handler, for odd peers).

Strategy: the tests import this module by name (``conftest.py`` puts this
folder on ``sys.path``: pytest's importlib mode does not); contexts are
built per test, because the connector sets ALPN on the context it is given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import trustme

from hyper_core.body import Full, Incoming, collect
from hyper_core.http import Request, Response
from hyper_core.rt import IO
from hyper_tls import TlsAcceptor, client_ssl_context, server_ssl_context
from hyper_util.server import serve


@dataclasses.dataclass(frozen=True)
class CertFiles:
    """A CA and a leaf for ``localhost`` and ``127.0.0.1``, as PEM files."""

    ca: trustme.CA
    cafile: Path
    certfile: Path
    keyfile: Path

    def client_context(self, *, http2: bool = True) -> ssl.SSLContext:
        return client_ssl_context(cafile=self.cafile, http2=http2)

    def server_context(self, *, http2: bool = True) -> ssl.SSLContext:
        return server_ssl_context(self.certfile, self.keyfile, http2=http2)


def write_leaf(leaf: trustme.LeafCert, folder: Path, stem: str) -> tuple[Path, Path]:
    certfile, keyfile = folder / f"{stem}.pem", folder / f"{stem}.key"
    certfile.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    keyfile.write_bytes(leaf.private_key_pem.bytes())
    return certfile, keyfile


def make_certs(folder: Path) -> CertFiles:
    ca = trustme.CA()
    certfile, keyfile = write_leaf(ca.issue_cert("localhost", "127.0.0.1"), folder, "localhost")
    cafile = folder / "ca.pem"
    cafile.write_bytes(ca.cert_pem.bytes())
    return CertFiles(ca, cafile, certfile, keyfile)


async def version_app(request: Request[Incoming]) -> Response[Full]:
    """Answers with the HTTP version and the request body's length."""
    body = (await collect(request.body)).to_bytes()
    return Response(200, body=Full(f"{request.version} {len(body)}".encode()))


@asynccontextmanager
async def running_tls_server(
    acceptor: TlsAcceptor, service: Any = version_app, **options: Any
) -> AsyncIterator[tuple[str, int]]:
    """Serve ``service`` over TLS on 127.0.0.1; yield ``(host, port)``."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        address = await tg.start(
            lambda task_status: serve(
                service,
                port=0,
                handle_signals=False,
                shutdown_event=stop,
                shutdown_timeout=5,
                tls=acceptor,
                task_status=task_status,
                **options,
            )
        )
        try:
            yield address[0], address[1]
        finally:
            stop.set()


@asynccontextmanager
async def raw_server(handler: Callable[[IO], Awaitable[None]]) -> AsyncIterator[int]:
    """Run ``handler`` for each connection on 127.0.0.1; yield the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def guarded(io: IO) -> None:
        try:
            await handler(io)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the client under test hung up first
        finally:
            with anyio.CancelScope(shield=True):
                await io.aclose()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, guarded)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


def tunnel_proxy(requested: list[bytes]) -> Callable[[IO], Awaitable[None]]:
    """A CONNECT proxy handler for :func:`raw_server`; records each request line.

    It answers 200, then copies bytes both ways between the client and the
    origin named in the CONNECT target.
    """

    async def proxy(client: IO) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await client.receive()
        requested.append(head.split(b"\r\n", 1)[0])
        target = head.split(b" ")[1].decode()
        host, _, port = target.rpartition(":")
        upstream = await anyio.connect_tcp(host, int(port))
        await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pump(source: IO, sink: IO) -> None:
            with contextlib.suppress(
                anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
            ):
                while True:
                    await sink.send(await source.receive())

        async with upstream, anyio.create_task_group() as tg:
            tg.start_soon(pump, client, upstream)
            await pump(upstream, client)
            tg.cancel_scope.cancel()

    return proxy
