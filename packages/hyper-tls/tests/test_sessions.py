"""TLS session resumption by ``HttpsConnector``, against our TLS server on loopback.

What belongs here: that new connections resume a session from an earlier
one to the same origin (TLS 1.2 and 1.3), that a TLS 1.3 ticket is used
once, that a session is never offered to another origin (another host name
or SNI name on the same server), that ``session_cache_size=0`` and contexts
verified outside OpenSSL turn resumption off, and the bounds of
:class:`~hyper_tls._sessions.SessionCache`. The same against nginx is in
``test_interop_tls.py``.

Strategy: the server is ``serve(tls=TlsAcceptor(...))``, whose context
resumes any ticket it issued, for any host name: so a connection that did
not resume (``ssl_object.session_reused`` false) was offered no session.
Each connection sends one HTTP/1.1 request and reads the answer, which is
when a TLS 1.3 ticket arrives.
"""

from __future__ import annotations

import ssl

import anyio
import pytest
from tls_helpers import CertFiles, running_tls_server

from hyper_core.http import Uri
from hyper_tls import HttpsConnector, MaybeHttps, TlsAcceptor, TlsStream
from hyper_tls._sessions import SessionCache

pytestmark = pytest.mark.anyio

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


def client_context(certs: CertFiles, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = certs.client_context(http2=False)
    context.maximum_version = version
    return context


async def open_tls(
    connector: HttpsConnector, url: str, server_hostname: str | None = None
) -> TlsStream:
    io, _ = await connector.connect(Uri(url), server_hostname=server_hostname)
    assert isinstance(io, MaybeHttps)
    tls = io.inner
    assert isinstance(tls, TlsStream)
    return tls


async def exchange(tls: TlsStream, host: str = "localhost") -> None:
    await tls.send(f"GET / HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
    data = b""
    while not data.endswith(b"HTTP/1.1 0"):
        data += await tls.receive()
    assert data.startswith(b"HTTP/1.1 200 ")


async def resumed(connector: HttpsConnector, url: str, server_hostname: str | None = None) -> bool:
    """Open a connection, make one request, close it; whether it resumed a session."""
    tls = await open_tls(connector, url, server_hostname)
    try:
        await exchange(tls)
        return tls.ssl_object.session_reused
    finally:
        await tls.aclose()


@pytest.mark.parametrize("version", VERSIONS, ids=["tls12", "tls13"])
async def test_new_connections_resume_the_last_session(
    certs: CertFiles, version: ssl.TLSVersion
) -> None:
    async with running_tls_server(TlsAcceptor(certs.server_context(http2=False))) as (_, port):
        connector = HttpsConnector(ssl_context=client_context(certs, version), http2=False)
        url = f"https://localhost:{port}/"
        assert [await resumed(connector, url) for _ in range(4)] == [False, True, True, True]
        tls = await open_tls(connector, url)
        try:
            assert tls.ssl_object.version() == version.name.replace("_", ".")
        finally:
            await tls.aclose()


@pytest.mark.parametrize(
    ("version", "third"), [(VERSIONS[0], True), (VERSIONS[1], False)], ids=["tls12", "tls13"]
)
async def test_a_tls13_ticket_is_used_once(
    certs: CertFiles, version: ssl.TLSVersion, third: bool
) -> None:
    # TLS 1.2 sessions are meant to be resumed again; TLS 1.3 tickets are
    # not (RFC 8446 C.4): the second connection spends the only ticket, and
    # until it reads its own, a third has none.
    async with running_tls_server(TlsAcceptor(certs.server_context(http2=False))) as (_, port):
        connector = HttpsConnector(ssl_context=client_context(certs, version), http2=False)
        url = f"https://localhost:{port}/"
        assert not await resumed(connector, url)
        second = await open_tls(connector, url)
        third_tls = await open_tls(connector, url)
        try:
            assert second.ssl_object.session_reused
            assert third_tls.ssl_object.session_reused is third
            await exchange(second)
            await exchange(third_tls)
        finally:
            await second.aclose()
            await third_tls.aclose()
        assert await resumed(connector, url)


async def test_a_session_is_never_offered_to_another_origin(certs: CertFiles) -> None:
    # The server would resume any of its tickets for any name (the
    # certificate names both): only the connector's key keeps them apart.
    async with running_tls_server(TlsAcceptor(certs.server_context(http2=False))) as (_, port):
        connector = HttpsConnector(ssl_context=certs.client_context(http2=False), http2=False)
        by_name = f"https://localhost:{port}/"
        by_ip = f"https://127.0.0.1:{port}/"
        assert not await resumed(connector, by_name)
        assert not await resumed(connector, by_ip)  # another host
        assert not await resumed(connector, by_name, server_hostname="127.0.0.1")  # another SNI
        assert await resumed(connector, by_ip)
        assert await resumed(connector, by_name)
        assert await resumed(connector, by_name, server_hostname="127.0.0.1")


async def test_session_cache_size_zero_turns_resumption_off(certs: CertFiles) -> None:
    async with running_tls_server(TlsAcceptor(certs.server_context(http2=False))) as (_, port):
        context = certs.client_context(http2=False)
        connector = HttpsConnector(ssl_context=context, http2=False, session_cache_size=0)
        url = f"https://localhost:{port}/"
        assert [await resumed(connector, url) for _ in range(3)] == [False] * 3
    with pytest.raises(ValueError, match="session_cache_size"):
        HttpsConnector(ssl_context=context, session_cache_size=-1)


class _VerifiesElsewhere(ssl.SSLContext):
    """A context subclass, as an OS verifier's would be (truststore on macOS)."""


async def test_a_context_that_verifies_outside_openssl_never_resumes(certs: CertFiles) -> None:
    # A resumed session carries no certificate chain for such a verifier.
    context = _VerifiesElsewhere(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=certs.cafile)
    async with running_tls_server(TlsAcceptor(certs.server_context(http2=False))) as (_, port):
        connector = HttpsConnector(ssl_context=context, http2=False)
        url = f"https://localhost:{port}/"
        assert [await resumed(connector, url) for _ in range(2)] == [False, False]


async def session_of(certs: CertFiles) -> tuple[ssl.SSLSession, ssl.SSLSession]:
    """Two real, distinct, resumable TLS 1.3 sessions."""
    async with running_tls_server(TlsAcceptor(certs.server_context(http2=False))) as (_, port):
        sessions: list[ssl.SSLSession] = []
        connector = HttpsConnector(ssl_context=certs.client_context(http2=False), http2=False)
        for _ in range(2):
            tls = await open_tls(connector, f"https://localhost:{port}/")
            try:
                await exchange(tls)
                session = tls.ssl_object.session
                assert session is not None
                sessions.append(session)
            finally:
                await tls.aclose()
    return sessions[0], sessions[1]


async def test_session_cache_bounds(certs: CertFiles) -> None:
    first, second = await session_of(certs)
    cache = SessionCache(max_origins=2)
    key = ("localhost", 443, "localhost")
    for _ in range(9):
        cache.put(key, first, False)
    cache.put(key, second, False)
    assert len(cache) == 8  # the newest eight of one origin
    assert cache.take(key) is second  # newest first, and removed
    assert len(cache) == 7
    cache.put(("b", 443, "b"), first, False)
    cache.put(("c", 443, "c"), first, False)  # a third origin: the least recently used goes
    assert cache.take(key) is None
    assert cache.take(("b", 443, "b")) is first
    assert cache.take(("b", 443, "b")) is None
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_origins"):
        SessionCache(0)


async def test_a_reusable_session_stays_and_is_kept_once(certs: CertFiles) -> None:
    first, second = await session_of(certs)
    cache = SessionCache()
    key = ("localhost", 443, "localhost")
    cache.put(key, first, True)
    cache.put(key, second, True)
    cache.put(key, first, True)  # resumed again and offered back: now the newest
    assert len(cache) == 2
    assert cache.take(key) is first
    assert cache.take(key) is first
    assert len(cache) == 2


@pytest.mark.parametrize(
    ("version", "expected"), [(VERSIONS[0], 3), (VERSIONS[1], 1)], ids=["tls12", "tls13"]
)
async def test_connections_opened_at_once_share_a_tls12_session(
    certs: CertFiles, version: ssl.TLSVersion, expected: int
) -> None:
    async with running_tls_server(TlsAcceptor(certs.server_context(http2=False))) as (_, port):
        connector = HttpsConnector(ssl_context=client_context(certs, version), http2=False)
        url = f"https://localhost:{port}/"
        assert not await resumed(connector, url)
        streams: list[TlsStream] = []

        async def open_one() -> None:
            streams.append(await open_tls(connector, url))

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(open_one)
            assert sum(tls.ssl_object.session_reused for tls in streams) == expected
        finally:
            for tls in streams:
                await tls.aclose()
