"""``HttpsConnector`` and ``MaybeHttps`` against our TLS server on loopback.

What belongs here: client-side verification (right CA; unknown CA, wrong
host, expired certificate and a failed or stalled handshake, each with its
error class), ALPN in both directions, the pooled Client over TLS on
HTTP/1.1 and HTTP/2, client certificates, the OS trust store context
(truststore, with its handshake in a worker thread), https through a CONNECT
proxy, and ``https_only``.

Strategy: every certificate is made by trustme at test time; the server is
``serve(tls=TlsAcceptor(...))`` on 127.0.0.1 port 0; odd peers (a silent
one, one that is not TLS, a CONNECT proxy) are small anyio listeners.
"""

from __future__ import annotations

import datetime
import ssl
import sys
from pathlib import Path

import anyio
import anyio.abc
import certifi
import pytest
import trustme
import truststore
from tiny_proxy import Socks4ProxyHandler, Socks5ProxyHandler  # type: ignore[import-untyped]
from tls_helpers import (
    CertFiles,
    raw_server,
    running_tls_server,
    tunnel_proxy,
    version_app,
    write_leaf,
)

from hyper_core.body import collect
from hyper_core.error import HyperError
from hyper_core.http import Uri
from hyper_core.rt import IO, receive_or_eof
from hyper_tls import (
    CertificateExpiredError,
    HandshakeError,
    HandshakeTimeoutError,
    HostnameMismatchError,
    HttpsConnector,
    HttpsRequiredError,
    MaybeHttps,
    TlsAcceptor,
    TlsError,
    UnknownCaError,
    client_ssl_context,
    server_ssl_context,
)
from hyper_util.client.legacy import Client, ConnectError
from hyper_util.client.legacy.connect import (
    Connected,
    HttpConnector,
    ProxyConnector,
    ProxyMatcher,
    TunnelConnector,
)

pytestmark = pytest.mark.anyio


async def get(connector: HttpsConnector, url: str) -> tuple[bytes, Connected | None]:
    async with Client(connector) as client:
        response = await client.get(url)
        body = (await collect(response.body)).to_bytes()
        return body, response.extensions.get(Connected)


@pytest.mark.parametrize(("client_h2", "server_h2"), [(True, True), (False, True), (True, False)])
async def test_client_reaches_the_auto_server_and_alpn_decides(
    certs: CertFiles, client_h2: bool, server_h2: bool
) -> None:
    acceptor = TlsAcceptor(certs.server_context(http2=server_h2))
    async with running_tls_server(acceptor) as (_, port):
        connector = HttpsConnector(ssl_context=certs.client_context(), http2=client_h2)
        body, connected = await get(connector, f"https://localhost:{port}/")
    h2 = client_h2 and server_h2
    assert body == (b"HTTP/2 0" if h2 else b"HTTP/1.1 0")
    assert connected is not None
    assert connected.alpn_h2 is h2


@pytest.mark.parametrize("offer", [["h2", "http/1.1"], ["http/1.1"], None])
async def test_http2_none_keeps_the_contexts_alpn_list(
    certs: CertFiles, offer: list[str] | None
) -> None:
    # A context shared with other code is used as it is: its own ALPN list
    # (or none) decides, and alpn_h2 reports what the server chose.
    context = ssl.create_default_context(cafile=str(certs.cafile))  # no ALPN list
    if offer is not None:
        context.set_alpn_protocols(offer)
    async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
        connector = HttpsConnector(ssl_context=context, http2=None)
        io, connected = await connector.connect(Uri(f"https://localhost:{port}/"))
        await io.aclose()
    h2 = offer is not None and "h2" in offer
    assert connected.alpn_h2 is h2
    assert isinstance(io, MaybeHttps)
    assert io.alpn_protocol == ("h2" if h2 else None if offer is None else "http/1.1")


async def test_maybe_https_exposes_the_session(certs: CertFiles) -> None:
    async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
        connector = HttpsConnector(ssl_context=certs.client_context())
        io, connected = await connector.connect(Uri(f"https://localhost:{port}/"))
        try:
            assert isinstance(io, MaybeHttps)
            assert io.is_https
            assert io.alpn_protocol == "h2"
            assert connected.alpn_h2
            assert io.tls_version in ("TLSv1.2", "TLSv1.3")
            assert io.cipher is not None
            assert io.cipher[2] >= 128
            cert = io.peer_certificate
            assert cert is not None
            assert ("DNS", "localhost") in cert["subjectAltName"]
            assert io.peer_certificate_binary is not None
            assert connected.remote_addr is not None
            assert connected.remote_addr[1] == port
        finally:
            await io.aclose()


async def test_http_passes_through_unless_https_only(certs: CertFiles) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener:
        connector = HttpsConnector(ssl_context=certs.client_context())
        io, connected = await connector.connect(Uri(f"http://127.0.0.1:{port}/"))
        assert isinstance(io, MaybeHttps)
        assert not io.is_https
        assert io.alpn_protocol is None
        assert io.peer_certificate is None
        assert not connected.alpn_h2
        await io.aclose()
        strict = HttpsConnector(ssl_context=certs.client_context(), https_only=True)
        with pytest.raises(HttpsRequiredError, match="https_only"):
            await strict.connect(Uri(f"http://127.0.0.1:{port}/"))


async def expect_refusal(
    certs: CertFiles, server: ssl.SSLContext, client: ssl.SSLContext, host: str = "localhost"
) -> TlsError:
    async with running_tls_server(TlsAcceptor(server)) as (_, port):
        with pytest.raises(TlsError) as caught:
            await get(HttpsConnector(ssl_context=client), f"https://{host}:{port}/")
    error = caught.value
    assert isinstance(error, ConnectError), "TLS errors are connect errors for the client"
    assert host in str(error)
    return error


async def test_unknown_ca(certs: CertFiles) -> None:
    other = client_ssl_context(cadata=trustme.CA().cert_pem.bytes().decode())
    error = await expect_refusal(certs, certs.server_context(), other)
    assert type(error) is UnknownCaError
    assert error.verify_code == 20


async def test_hostname_mismatch(certs: CertFiles, tmp_path: Path) -> None:
    certfile, keyfile = write_leaf(certs.ca.issue_cert("example.org"), tmp_path, "other")
    error = await expect_refusal(
        certs, server_ssl_context(certfile, keyfile), certs.client_context()
    )
    assert type(error) is HostnameMismatchError
    assert error.host == "localhost"


async def test_expired_certificate(certs: CertFiles, tmp_path: Path) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    leaf = certs.ca.issue_cert("localhost", not_after=past)
    certfile, keyfile = write_leaf(leaf, tmp_path, "expired")
    error = await expect_refusal(
        certs, server_ssl_context(certfile, keyfile), certs.client_context()
    )
    assert type(error) is CertificateExpiredError


async def test_a_peer_that_is_not_tls_fails_the_handshake(certs: CertFiles) -> None:
    async def not_tls(io: IO) -> None:
        await io.receive()
        await io.send(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        await io.aclose()

    async with raw_server(not_tls) as port:
        connector = HttpsConnector(ssl_context=certs.client_context())
        with pytest.raises(HandshakeError, match="localhost") as caught:
            await connector.connect(Uri(f"https://localhost:{port}/"))
    assert type(caught.value) is HandshakeError


async def test_a_silent_peer_hits_the_handshake_timeout(certs: CertFiles) -> None:
    async def silent(io: IO) -> None:
        await receive_or_eof(io)
        await anyio.sleep(30)

    async with raw_server(silent) as port:
        connector = HttpsConnector(ssl_context=certs.client_context(), handshake_timeout=0.3)
        with anyio.fail_after(5), pytest.raises(HandshakeTimeoutError, match="localhost"):
            await connector.connect(Uri(f"https://localhost:{port}/"))


async def test_client_certificates(certs: CertFiles, tmp_path: Path) -> None:
    leaf = certs.ca.issue_cert("client@example.org")
    client_cert, client_key = write_leaf(leaf, tmp_path, "client")
    server = server_ssl_context(certs.certfile, certs.keyfile, client_cafile=certs.cafile)
    async with running_tls_server(TlsAcceptor(server), version_app) as (_, port):
        with_cert = client_ssl_context(
            cafile=certs.cafile, certfile=client_cert, keyfile=client_key
        )
        body, _ = await get(HttpsConnector(ssl_context=with_cert), f"https://localhost:{port}/")
        assert body == b"HTTP/2 0"
        without = certs.client_context()
        # TLS 1.3 ends the client's handshake before the server checks the
        # client certificate: its refusal arrives as the connection's first read.
        with pytest.raises(HyperError):
            await get(HttpsConnector(ssl_context=without), f"https://localhost:{port}/")


async def test_the_os_trust_store_context_verifies_in_a_worker_thread(certs: CertFiles) -> None:
    # truststore.SSLContext is what client_ssl_context() gives without a CA
    # file; trusting the test CA in it exercises the threaded handshake path.
    trusting = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    certs.ca.configure_trust(trusting)
    assert type(client_ssl_context()) is truststore.SSLContext
    async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
        body, connected = await get(
            HttpsConnector(ssl_context=trusting), f"https://localhost:{port}/"
        )
        assert body == b"HTTP/2 0"
        assert connected is not None
        assert connected.alpn_h2
        with pytest.raises(UnknownCaError, match="localhost"):
            await get(HttpsConnector(), f"https://localhost:{port}/")


async def test_https_through_a_connect_proxy(certs: CertFiles) -> None:
    requested: list[bytes] = []
    async with (
        running_tls_server(TlsAcceptor(certs.server_context())) as (_, port),
        raw_server(tunnel_proxy(requested)) as proxy_port,
    ):
        tunnel = TunnelConnector(
            f"http://127.0.0.1:{proxy_port}", HttpConnector(enforce_http=False)
        )
        connector = HttpsConnector(tunnel, certs.client_context())
        body, connected = await get(connector, f"https://localhost:{port}/")
    assert requested == [f"CONNECT localhost:{port} HTTP/1.1".encode()]
    assert body == b"HTTP/2 0"
    assert connected is not None
    assert connected.alpn_h2


def test_an_empty_os_store_falls_back_to_certifi(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A bare image without ca-certificates: OpenSSL's default paths point at
    # nothing. The context must then trust certifi's bundle, verification on.
    empty = ssl.DefaultVerifyPaths(
        str(tmp_path / "missing.pem"), str(tmp_path / "missing"), "", "", "", ""
    )
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: empty)
    monkeypatch.setattr(sys, "platform", "linux")
    context = client_ssl_context()
    assert type(context) is not truststore.SSLContext
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    with open(certifi.where(), "rb") as bundle:
        assert bundle.read().count(b"BEGIN CERTIFICATE") == context.cert_store_stats()["x509_ca"]


@pytest.mark.parametrize("proxy_scheme", ["socks5h", "socks4a"])
async def test_https_through_a_socks_proxy(certs: CertFiles, proxy_scheme: str) -> None:
    # tiny-proxy (PyPI) is the SOCKS server; TLS to the origin runs over its tunnel.
    handler = Socks5ProxyHandler() if proxy_scheme == "socks5h" else Socks4ProxyHandler()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy_port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with (
        listener,
        anyio.create_task_group() as tg,
        running_tls_server(TlsAcceptor(certs.server_context())) as (_, port),
    ):
        tg.start_soon(listener.serve, handler.handle, tg)
        matcher = ProxyMatcher(https=f"{proxy_scheme}://127.0.0.1:{proxy_port}")
        inner = ProxyConnector(HttpConnector(enforce_http=False), matcher)
        connector = HttpsConnector(inner, certs.client_context())
        body, connected = await get(connector, f"https://localhost:{port}/")
        tg.cancel_scope.cancel()
    assert body == b"HTTP/2 0"
    assert connected is not None
    assert connected.alpn_h2
    assert connected.remote_addr == ("127.0.0.1", proxy_port)
