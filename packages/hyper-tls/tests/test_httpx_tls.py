"""The httpx transports over TLS: ``verify``, ``cert``, ``trust_env``, SNI, ALPN, proxies.

The origin is our TLS server (``serve(tls=TlsAcceptor(...))``) with a trustme
certificate for ``localhost`` and ``127.0.0.1``; its answer names the HTTP
version it spoke. httpx's TLS arguments must mean what they mean with
httpx's own transport: the context comes from ``httpx.create_ssl_context``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import httpx
import pytest
import trustme
from tls_helpers import CertFiles, raw_server, running_tls_server, tunnel_proxy, write_leaf

from hyper_core.error import HyperError
from hyper_core.rt import IO
from hyper_tls import TlsAcceptor, UnknownCaError
from hyper_util.client.httpx import AsyncHyperTransport, HyperTransport

pytestmark = pytest.mark.anyio


def trusting(certs: CertFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.cafile))


async def test_verify_context_and_alpn_picks_the_version(certs: CertFiles) -> None:
    async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
        url = f"https://localhost:{port}/"
        for http2, expected in ((False, "HTTP/1.1"), (True, "HTTP/2")):
            transport = AsyncHyperTransport(verify=trusting(certs), http2=http2)
            async with httpx.AsyncClient(transport=transport) as c:
                r = await c.post(url, content=b"abc")
                assert (r.text, r.http_version) == (f"{expected} 3", expected)
                ssl_object = r.extensions["network_stream"].get_extra_info("ssl_object")
                assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
        transport = AsyncHyperTransport(verify=trusting(certs), http1=False, http2=True)
        async with httpx.AsyncClient(transport=transport) as c:
            assert (await c.get(url)).text == "HTTP/2 0"


async def test_default_verification_refuses_an_unknown_ca(certs: CertFiles) -> None:
    async with (
        running_tls_server(TlsAcceptor(certs.server_context())) as (_, port),
        httpx.AsyncClient(transport=AsyncHyperTransport()) as c,
    ):
        with pytest.raises(httpx.ConnectError) as info:
            await c.get(f"https://localhost:{port}/")
    assert type(info.value) is httpx.ConnectError
    assert isinstance(info.value.__cause__, UnknownCaError)


async def test_verify_false_and_ssl_cert_file_with_trust_env(
    certs: CertFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
        url = f"https://localhost:{port}/"
        async with httpx.AsyncClient(transport=AsyncHyperTransport(verify=False)) as c:
            assert (await c.get(url)).text == "HTTP/1.1 0"
        monkeypatch.setenv("SSL_CERT_FILE", str(certs.cafile))
        async with httpx.AsyncClient(transport=AsyncHyperTransport()) as c:
            assert (await c.get(url)).text == "HTTP/1.1 0"
        transport = AsyncHyperTransport(trust_env=False)
        async with httpx.AsyncClient(transport=transport) as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(url)


async def test_sni_hostname_names_the_server_to_verify(certs: CertFiles, tmp_path: Path) -> None:
    # A certificate for "origin.test" only: reached by IP address, it is
    # accepted only when the request names that host for SNI.
    certfile, keyfile = write_leaf(certs.ca.issue_cert("origin.test"), tmp_path, "origin")
    acceptor = TlsAcceptor(ssl_server(certfile, keyfile))
    async with running_tls_server(acceptor) as (_, port):
        transport = AsyncHyperTransport(verify=trusting(certs))
        async with httpx.AsyncClient(transport=transport) as c:
            url = f"https://127.0.0.1:{port}/"
            with pytest.raises(httpx.ConnectError):
                await c.get(url)
            r = await c.get(url, extensions={"sni_hostname": "origin.test"})
            assert r.text == "HTTP/1.1 0"


def ssl_server(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    from hyper_tls import server_ssl_context

    return server_ssl_context(certfile, keyfile)


async def test_client_certificate_through_the_verify_context(
    certs: CertFiles, tmp_path: Path
) -> None:
    client_ca = trustme.CA()
    client_cert, client_key = write_leaf(client_ca.issue_cert("client"), tmp_path, "client")
    (tmp_path / "client_ca.pem").write_bytes(client_ca.cert_pem.bytes())
    from hyper_tls import server_ssl_context

    server = server_ssl_context(
        certs.certfile, certs.keyfile, client_cafile=tmp_path / "client_ca.pem"
    )
    async with running_tls_server(TlsAcceptor(server)) as (_, port):
        context = trusting(certs)
        async with httpx.AsyncClient(transport=AsyncHyperTransport(verify=context)) as c:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await c.get(f"https://localhost:{port}/")
        context = trusting(certs)
        context.load_cert_chain(client_cert, client_key)
        async with httpx.AsyncClient(transport=AsyncHyperTransport(verify=context)) as c:
            assert (await c.get(f"https://localhost:{port}/")).text == "HTTP/1.1 0"


async def test_https_through_a_connect_proxy_and_a_refusing_one(certs: CertFiles) -> None:
    requested: list[bytes] = []

    async def refuses(io: IO) -> None:
        await io.receive()
        await io.send(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")

    async with (
        running_tls_server(TlsAcceptor(certs.server_context())) as (_, port),
        raw_server(tunnel_proxy(requested)) as proxy_port,
        raw_server(refuses) as refusing_port,
    ):
        url = f"https://localhost:{port}/"
        proxy = httpx.Proxy(f"http://127.0.0.1:{proxy_port}", auth=("u", "p"))
        transport = AsyncHyperTransport(verify=trusting(certs), http2=True, proxy=proxy)
        async with httpx.AsyncClient(transport=transport) as c:
            r = await c.get(url)
            assert (r.text, r.http_version) == ("HTTP/2 0", "HTTP/2")
        assert requested == [f"CONNECT localhost:{port} HTTP/1.1".encode()]
        transport = AsyncHyperTransport(proxy=f"http://127.0.0.1:{refusing_port}")
        async with httpx.AsyncClient(transport=transport) as c:
            with pytest.raises(httpx.ProxyError) as info:
                await c.get(url)
        assert type(info.value) is httpx.ProxyError
        assert not isinstance(info.value, HyperError)


def test_sync_transport_over_tls(certs: CertFiles) -> None:
    async def scenario() -> None:
        async with running_tls_server(TlsAcceptor(certs.server_context())) as (_, port):
            await anyio.to_thread.run_sync(fetch, port)

    def fetch(port: int) -> None:
        transport = HyperTransport(verify=trusting(certs), http2=True)
        with httpx.Client(transport=transport) as c:
            r = c.post(f"https://localhost:{port}/", content=b"xy")
            assert (r.text, r.http_version) == ("HTTP/2 2", "HTTP/2")

    anyio.run(scenario)
