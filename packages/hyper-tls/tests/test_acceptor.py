"""``TlsAcceptor`` and ``server_ssl_context`` behind ``serve()``.

What belongs here: the server side: a stalled handshake neither delays
other clients nor lives past ``handshake_timeout``; certificates reload
for new connections; the modern defaults of ``server_ssl_context``.

Strategy: real loopback sockets; the stalled client is a raw TCP
connection that never speaks; reload is observed by which CA a new client
must trust.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import pytest
import trustme
from tls_helpers import CertFiles, running_tls_server, version_app, write_leaf

from hyper_core.body import collect
from hyper_tls import (
    MODERN_CIPHERS,
    HttpsConnector,
    TlsAcceptor,
    UnknownCaError,
    client_ssl_context,
    server_ssl_context,
)
from hyper_util.client.legacy import Client

pytestmark = pytest.mark.anyio


async def fetch(context: ssl.SSLContext, port: int) -> bytes:
    async with Client(HttpsConnector(ssl_context=context)) as client:
        response = await client.get(f"https://localhost:{port}/")
        return (await collect(response.body)).to_bytes()


async def test_a_stalled_handshake_does_not_delay_other_clients(certs: CertFiles) -> None:
    acceptor = TlsAcceptor(certs.server_context(), handshake_timeout=60)
    async with running_tls_server(acceptor, max_connections=10) as (_, port):
        stalled = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(3)]
        try:
            with anyio.fail_after(5):
                for _ in range(3):
                    assert await fetch(certs.client_context(), port) == b"HTTP/2 0"
        finally:
            for stream in stalled:
                await stream.aclose()


async def test_a_silent_client_is_closed_after_the_handshake_timeout(certs: CertFiles) -> None:
    acceptor = TlsAcceptor(certs.server_context(), handshake_timeout=0.3)
    async with running_tls_server(acceptor) as (_, port):
        silent = await anyio.connect_tcp("127.0.0.1", port)
        async with silent:
            started = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
                await silent.receive()
            assert anyio.current_time() - started >= 0.25


async def test_reload_swaps_the_certificate_for_new_connections(
    certs: CertFiles, tmp_path: Path
) -> None:
    other_ca = trustme.CA()
    certfile, keyfile = write_leaf(other_ca.issue_cert("localhost"), tmp_path, "new")
    acceptor = TlsAcceptor(certs.server_context())
    new_trust = client_ssl_context(cadata=other_ca.cert_pem.bytes().decode())
    async with running_tls_server(acceptor, version_app) as (_, port):
        assert await fetch(certs.client_context(), port) == b"HTTP/2 0"
        acceptor.reload(certfile, keyfile)
        assert await fetch(new_trust, port) == b"HTTP/2 0"
        with pytest.raises(UnknownCaError):
            await fetch(certs.client_context(), port)
    with pytest.raises(FileNotFoundError):
        acceptor.reload(tmp_path / "missing.pem", keyfile)


def test_server_context_has_modern_defaults(certs: CertFiles) -> None:
    context = server_ssl_context(certs.certfile, certs.keyfile)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    names = {cipher["name"] for cipher in context.get_ciphers() if cipher["protocol"] == "TLSv1.2"}
    assert names
    assert names <= set(MODERN_CIPHERS.split(":"))
    assert not any("CBC" in name or name[:7] == "RSA-AES" for name in names)
    with pytest.raises(ValueError, match="handshake_timeout"):
        TlsAcceptor(context, handshake_timeout=0)
