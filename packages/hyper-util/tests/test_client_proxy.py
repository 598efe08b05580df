"""Proxies: a CONNECT tunnel proxy and a forwarding proxy built from hyper-core itself.

Both proxies are hyper-core HTTP/1 server connections on loopback in the
test's task group. The tunnel proxy answers CONNECT with 200, takes the raw
connection with ``hyper_core.upgrade.on(request)`` and copies bytes both
ways to the origin; the forwarding proxy takes absolute-form requests and
sends them on with a hyper-core HTTP/1 client connection. Each records what
it saw (targets, ``Proxy-Authorization``), and the origin records the
targets it got, so the tests check both hops. The environment-variable
rules of ``ProxyMatcher.from_env`` are checked on plain dictionaries.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import pytest

from hyper_core import upgrade
from hyper_core.body import Body, Empty, Full, Incoming, collect
from hyper_core.client.conn import http1 as client_http1
from hyper_core.error import HyperError
from hyper_core.http import Request, Response, Uri
from hyper_core.server.conn import http1
from hyper_util.client.legacy import (
    Client,
    Connected,
    HttpConnector,
    ProxyAuthRequiredError,
    ProxyError,
)
from hyper_util.client.legacy.connect import (
    ProxyConnector,
    ProxyHeaders,
    ProxyMatcher,
    TunnelConnector,
)

pytestmark = pytest.mark.anyio

Service = Callable[[Request[Incoming]], Awaitable[Response[Body]]]
CREDENTIALS = "Basic " + base64.b64encode(b"user:p@ss").decode()


@dataclass
class Peer:
    port: int
    targets: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    accepted: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def listen(
    make_service: Callable[[Peer, anyio.abc.TaskGroup], Service],
) -> AsyncIterator[Peer]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    peer = Peer(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        service = make_service(peer, tg)

        async def handle(stream: anyio.abc.SocketStream) -> None:
            peer.accepted += 1
            with contextlib.suppress(HyperError):
                await http1.Builder().serve_connection(stream, service).with_upgrades()

        tg.start_soon(listener.serve, handle, tg)
        yield peer
        tg.cancel_scope.cancel()


def origin_service(peer: Peer, tg: anyio.abc.TaskGroup) -> Service:
    async def service(request: Request[Incoming]) -> Response[Body]:
        peer.targets.append(str(request.uri))
        body = await collect(request.body)
        text = f"origin saw {request.uri} host={request.headers.get('host')} body={body.data!r}"
        return Response(200, body=Full(text.encode()))

    return service


async def pipe(source: Any, sink: Any) -> None:
    with contextlib.suppress(
        anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
    ):
        while True:
            await sink.send(await source.receive())


def tunnel_service(require_auth: bool, refuse: int | None = None) -> Callable[..., Service]:
    def make(peer: Peer, tg: anyio.abc.TaskGroup) -> Service:
        async def tunnel(request: Request[Incoming], host: str, port: int) -> None:
            upgraded = await upgrade.on(request)
            upstream = await anyio.connect_tcp(host, port)
            async with upstream, upgraded, anyio.create_task_group() as pipes:
                pipes.start_soon(pipe, upstream, upgraded)
                await pipe(upgraded, upstream)
                await upstream.send_eof()

        async def service(request: Request[Incoming]) -> Response[Body]:
            peer.targets.append(f"{request.method} {request.uri}")
            peer.auth.append(request.headers.get("proxy-authorization"))
            if request.method != "CONNECT":
                return Response(405, body=Empty())
            if refuse is not None:
                return Response(refuse, body=Empty())
            if require_auth and request.headers.get("proxy-authorization") != CREDENTIALS:
                return Response(
                    407, headers={"proxy-authenticate": 'Basic realm="test"'}, body=Empty()
                )
            assert request.uri.host is not None
            assert request.uri.port is not None
            tg.start_soon(tunnel, request, request.uri.host, request.uri.port)
            return Response(200, body=Empty())

        return service

    return make


def forwarding_service(peer: Peer, tg: anyio.abc.TaskGroup) -> Service:
    async def service(request: Request[Incoming]) -> Response[Body]:
        uri = request.uri
        peer.targets.append(f"{request.method} {uri}")
        peer.auth.append(request.headers.get("proxy-authorization"))
        if uri.scheme != "http" or uri.host is None:
            return Response(400, body=Full(b"absolute-form expected"))
        headers = request.headers.copy()
        headers.remove("proxy-authorization")
        stream = await anyio.connect_tcp(uri.host, uri.port or 80)
        sender, connection = await client_http1.handshake(stream)
        tg.start_soon(connection.serve)
        body = await collect(request.body)
        upstream = await sender.send_request(
            Request(request.method, uri.path_and_query, headers=headers, body=Full(body.data))
        )
        data = await collect(upstream.body)
        await sender.aclose()
        return Response(upstream.status, headers=upstream.headers, body=Full(data.data))

    return service


# -- forwarding ------------------------------------------------------------------------


async def test_forwarding_proxy_gets_absolute_form_and_credentials() -> None:
    async with listen(origin_service) as origin, listen(forwarding_service) as proxy:
        matcher = ProxyMatcher(http=f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        response = None
        async with Client(ProxyConnector(HttpConnector(), matcher)) as client:
            for i in range(2):
                response = await client.post(f"{origin.base}/path?{i}", b"data")
                text = (await collect(response.body)).data.decode()
                assert text == (f"origin saw /path?{i} host=127.0.0.1:{origin.port} body=b'data'")
        assert response is not None
        connected = response.extensions.get(Connected)
        assert connected is not None
        assert connected.proxied
        assert connected.extra.get(ProxyHeaders) is not None
    assert proxy.targets == [f"POST {origin.base}/path?0", f"POST {origin.base}/path?1"]
    assert proxy.auth == [CREDENTIALS, CREDENTIALS]
    assert proxy.accepted == 1  # the connection to the proxy was reused


async def test_no_proxy_connects_directly() -> None:
    async with listen(origin_service) as origin, listen(forwarding_service) as proxy:
        matcher = ProxyMatcher(http=proxy.base, no_proxy="localhost,127.0.0.0/8")
        async with Client(ProxyConnector(HttpConnector(), matcher)) as client:
            response = await client.get(f"{origin.base}/direct")
            await collect(response.body)
        connected = response.extensions.get(Connected)
        assert connected is not None
        assert not connected.proxied
    assert proxy.accepted == 0
    assert origin.targets == ["/direct"]


# -- CONNECT tunnels --------------------------------------------------------------------


async def test_tunnel_through_connect_proxy_with_credentials() -> None:
    async with (
        listen(origin_service) as origin,
        listen(tunnel_service(require_auth=True)) as proxy,
    ):
        matcher = ProxyMatcher(http=f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        connector = ProxyConnector(HttpConnector(), matcher, tunnel_http=True)
        response = None
        async with Client(connector) as client:
            for _ in range(3):
                response = await client.get(f"{origin.base}/through")
                text = (await collect(response.body)).data.decode()
                assert text.startswith("origin saw /through host=127.0.0.1:")
        assert response is not None
        connected = response.extensions.get(Connected)
        assert connected is not None
        assert not connected.proxied
    assert proxy.targets == [f"CONNECT 127.0.0.1:{origin.port}"]
    assert proxy.auth == [CREDENTIALS]
    assert origin.targets == ["/through"] * 3  # origin-form inside the tunnel


async def test_https_urls_are_tunnelled_for_a_tls_layer() -> None:
    async with (
        listen(origin_service) as origin,
        listen(tunnel_service(require_auth=False)) as proxy,
    ):
        connector = ProxyConnector(
            HttpConnector(enforce_http=False), ProxyMatcher(https=proxy.base)
        )
        # A TLS connector would now do its handshake over this IO; speak plain
        # HTTP over it instead to show the tunnel reaches the origin.
        io, connected = await connector.connect(Uri(f"https://127.0.0.1:{origin.port}/"))
        assert not connected.proxied
        sender, connection = await client_http1.handshake(io)
        async with anyio.create_task_group() as tg:
            tg.start_soon(connection.serve)
            response = await sender.send_request(Request("GET", "/tls", headers={"host": "x"}))
            assert (await collect(response.body)).data.startswith(b"origin saw /tls")
            await sender.aclose()
    assert proxy.targets == [f"CONNECT 127.0.0.1:{origin.port}"]


async def test_tunnel_needs_credentials() -> None:
    async with listen(tunnel_service(require_auth=True)) as proxy:
        tunnel = TunnelConnector(proxy.base, HttpConnector())
        with pytest.raises(ProxyAuthRequiredError) as info:
            await tunnel.connect(Uri("http://127.0.0.1:9/"))
        assert info.value.status == 407


async def test_tunnel_refused() -> None:
    async with listen(tunnel_service(require_auth=False, refuse=403)) as proxy:
        tunnel = TunnelConnector(proxy.base, HttpConnector())
        with pytest.raises(ProxyError) as info:
            await tunnel.connect(Uri("http://127.0.0.1:9/"))
        assert info.value.status == 403
        assert not isinstance(info.value, ProxyAuthRequiredError)


async def test_tunnel_to_a_proxy_that_closes() -> None:
    async def closes(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, closes)
        tunnel = TunnelConnector(f"127.0.0.1:{port}", HttpConnector())
        with pytest.raises(ProxyError, match="closed"):
            await tunnel.connect(Uri("http://127.0.0.1:9/"))
        tg.cancel_scope.cancel()


# -- choosing the proxy -------------------------------------------------------------------


def intercepted(matcher: ProxyMatcher, url: str) -> str | None:
    found = matcher.intercept(Uri(url))
    return None if found is None else str(found.uri)


def test_from_env_reads_both_cases_lowercase_first() -> None:
    env = {
        "HTTP_PROXY": "http://upper:1",
        "http_proxy": "http://lower:2",
        "HTTPS_PROXY": "secure:3",
        "NO_PROXY": "internal.example, .corp, 10.0.0.0/8, *.skip, host:8080",
    }
    matcher = ProxyMatcher.from_env(env)
    assert intercepted(matcher, "http://example.com/") == "http://lower:2/"
    assert intercepted(matcher, "https://example.com/") == "http://secure:3/"
    assert intercepted(matcher, "http://internal.example/") is None
    assert intercepted(matcher, "http://a.internal.example/") is None
    assert intercepted(matcher, "http://notinternal.example/") == "http://lower:2/"
    assert intercepted(matcher, "http://x.corp/") is None
    assert intercepted(matcher, "http://10.1.2.3/") is None
    assert intercepted(matcher, "http://11.1.2.3/") == "http://lower:2/"
    assert intercepted(matcher, "http://a.skip/") is None
    assert intercepted(matcher, "http://host:8080/") is None
    assert intercepted(matcher, "http://host:8081/") == "http://lower:2/"


def test_from_env_all_proxy_star_and_empty_values() -> None:
    matcher = ProxyMatcher.from_env({"ALL_PROXY": "http://all:1", "http_proxy": ""})
    assert intercepted(matcher, "http://example.com/") == "http://all:1/"
    assert intercepted(matcher, "https://example.com/") == "http://all:1/"
    matcher = ProxyMatcher.from_env({"ALL_PROXY": "http://all:1", "no_proxy": "*"})
    assert intercepted(matcher, "http://example.com/") is None
    assert intercepted(ProxyMatcher.from_env({}), "http://example.com/") is None


def test_from_env_ignores_uppercase_http_proxy_under_cgi() -> None:
    env = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker:1"}
    assert intercepted(ProxyMatcher.from_env(env), "http://example.com/") is None


def test_credentials_come_from_the_proxy_url() -> None:
    matcher = ProxyMatcher(http="http://user:p%40ss@proxy:3128")
    found = matcher.intercept(Uri("http://example.com/"))
    assert found is not None
    assert str(found.uri) == "http://proxy:3128/"
    assert found.authorization == CREDENTIALS


def test_invalid_proxy_url() -> None:
    with pytest.raises(ValueError, match="scheme"):
        ProxyMatcher(http="ftp://proxy:21")
    with pytest.raises(ValueError, match="needs an http or https proxy"):
        TunnelConnector("socks5://proxy:1080", HttpConnector())


def test_no_proxy_ip_forms_ports_and_dots() -> None:
    matcher = ProxyMatcher(
        all="http://p:1",
        no_proxy=" [::1]:8080 , 2001:db8::/32, 192.168.0.0/16:443, example.org., .Upper.Test ",
    )
    assert intercepted(matcher, "http://[::1]:8080/") is None
    assert intercepted(matcher, "http://[::1]:8081/") == "http://p:1/"
    assert intercepted(matcher, "http://[2001:db8::5]/") is None
    assert intercepted(matcher, "http://[2001:db9::5]/") == "http://p:1/"
    assert intercepted(matcher, "https://192.168.3.4/") is None  # port 443 by default
    assert intercepted(matcher, "http://192.168.3.4/") == "http://p:1/"
    assert intercepted(matcher, "http://www.example.org/") is None
    assert intercepted(matcher, "http://example.org./") is None
    assert intercepted(matcher, "http://a.upper.test/") is None
    assert intercepted(matcher, "http://notexample.org/") == "http://p:1/"


def test_specific_proxies_win_over_all_proxy() -> None:
    matcher = ProxyMatcher.from_env({"ALL_PROXY": "socks5h://all:1", "HTTP_PROXY": "http://h:2"})
    assert intercepted(matcher, "http://example.com/") == "http://h:2/"
    assert intercepted(matcher, "https://example.com/") == "socks5h://all:1/"
    assert intercepted(matcher, "wss://example.com/") == "socks5h://all:1/"


def test_cgi_keeps_the_variables_a_header_cannot_set() -> None:
    env = {
        "REQUEST_METHOD": "POST",
        "HTTP_PROXY": "http://attacker:1",
        "http_proxy": "http://admin-set:2",
        "HTTPS_PROXY": "http://secure:3",
    }
    matcher = ProxyMatcher.from_env(env)
    assert intercepted(matcher, "http://example.com/") == "http://admin-set:2/"
    assert intercepted(matcher, "https://example.com/") == "http://secure:3/"


def test_from_system_fills_in_what_the_environment_leaves_unset() -> None:
    system = {"http": "http://sys-http:1", "https": "sys-https:2", "no": "intranet", "ftp": "x"}
    matcher = ProxyMatcher.from_system({"HTTPS_PROXY": "http://env:3"}, system)
    assert intercepted(matcher, "http://example.com/") == "http://sys-http:1/"
    assert intercepted(matcher, "https://example.com/") == "http://env:3/"
    assert intercepted(matcher, "http://www.intranet/") is None
    # On Linux the system has nothing beyond the environment.
    assert intercepted(ProxyMatcher.from_system({}), "http://example.com/") is None
    assert intercepted(ProxyMatcher.from_system({"all_proxy": "p:4"}), "http://a/") == "http://p:4/"
