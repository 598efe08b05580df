"""SOCKS4, SOCKS4a and SOCKS5 proxies, against SOCKS servers no one here wrote.

Peers: Dante (``danted``, Debian's ``dante-server``: SOCKS4 and SOCKS5
without authentication), microsocks (Debian: SOCKS5 with a username and
password) and tiny-proxy (PyPI, run in the test's task group: SOCKS4a,
SOCKS4 user ids, SOCKS5 with a password, IPv6 targets). Dante and
microsocks run as subprocesses on 127.0.0.1 and a free port, stopped by
their PID; a missing one fails the test. The origin is a hyper-core HTTP/1
server that echoes the request target it got, so each test checks that the
request crossed the proxy in origin-form. Where names are resolved is
checked with a resolver that records what it was asked: ``socks4`` and
``socks5`` resolve here, ``socks4a`` and ``socks5h`` leave it to the proxy.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from tiny_proxy import Socks4ProxyHandler, Socks5ProxyHandler  # type: ignore[import-untyped]

from hyper_core.body import Body, Full, Incoming, collect
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
    ProxyMatcher,
    SocketAddress,
    SocksConnector,
)

pytestmark = pytest.mark.anyio

DANTED = "/usr/sbin/danted"
MICROSOCKS = "/usr/bin/microsocks"


# -- peers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def subprocess_peer(command: list[str], port: int, log: Path) -> Iterator[int]:
    assert os.path.exists(command[0]), f"{command[0]} is missing: .ci/run installs it with apt"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"{command[0]} did not start: {log.read_text()}"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


DANTE_CONF = """
logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 protocol: tcp }}
"""


@pytest.fixture(scope="module")
def dante(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Dante on 127.0.0.1: SOCKS4 and SOCKS5, no authentication."""
    folder = tmp_path_factory.mktemp("dante")
    port = free_port()
    conf = folder / "sockd.conf"
    conf.write_text(DANTE_CONF.format(port=port))
    command = [DANTED, "-f", str(conf), "-p", str(folder / "sockd.pid")]
    with subprocess_peer(command, port, folder / "sockd.log"):
        yield port


@pytest.fixture(scope="module")
def microsocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """microsocks on 127.0.0.1: SOCKS5 with user ``alice``, password ``s3cret``."""
    folder = tmp_path_factory.mktemp("microsocks")
    port = free_port()
    command = [MICROSOCKS, "-i", "127.0.0.1", "-p", str(port), "-u", "alice", "-P", "s3cret"]
    with subprocess_peer(command, port, folder / "microsocks.log"):
        yield port


@asynccontextmanager
async def tiny_proxy(handler: Any) -> AsyncIterator[int]:
    """tiny-proxy's handler on 127.0.0.1, in this test's task group."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler.handle, tg)
        yield port
        tg.cancel_scope.cancel()


@asynccontextmanager
async def origin(host: str = "127.0.0.1") -> AsyncIterator[int]:
    """An HTTP/1 server that answers with the target and Host it got."""

    async def service(request: Request[Incoming]) -> Response[Body]:
        await collect(request.body)
        text = f"{request.uri} host={request.headers.get('host')}"
        return Response(200, body=Full(text.encode()))

    listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(HyperError):
            await http1.Builder().serve_connection(stream, service)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield port
        tg.cancel_scope.cancel()


class Recording:
    """A resolver for ``localhost`` that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    async def resolve(
        self, host: str, port: int, family: int = socket.AF_UNSPEC, /
    ) -> Sequence[SocketAddress]:
        self.asked.append((host, family))
        return [("127.0.0.1", port)]


async def get_twice(connector: Any, url: str) -> tuple[list[str], Connected | None, int]:
    """Two GETs through ``connector``: the bodies, the connection info, connections opened."""
    bodies = []
    response = None
    async with Client(connector) as client:
        for _ in range(2):
            response = await client.get(url)
            bodies.append((await collect(response.body)).data.decode())
        opened = client.statistics().connections_opened
    assert response is not None
    return bodies, response.extensions.get(Connected), opened


def through(proxy: str, resolver: Recording | None = None) -> ProxyConnector:
    return ProxyConnector(HttpConnector(), ProxyMatcher(all=proxy), resolver=resolver)


# -- Dante: SOCKS5 and SOCKS4 ------------------------------------------------------------------


async def test_socks5_remote_dns_through_dante(dante: int) -> None:
    resolver = Recording()
    async with origin() as port:
        bodies, connected, opened = await get_twice(
            through(f"socks5h://127.0.0.1:{dante}", resolver), f"http://localhost:{port}/a?b"
        )
    assert bodies == [f"/a?b host=localhost:{port}"] * 2  # origin-form, one tunnel reused
    assert opened == 1
    assert connected is not None
    assert not connected.proxied
    assert connected.remote_addr == ("127.0.0.1", dante)
    assert resolver.asked == []  # the proxy resolved the name


async def test_socks5_local_dns_through_dante(dante: int) -> None:
    resolver = Recording()
    async with origin() as port:
        bodies, _, _ = await get_twice(
            through(f"socks5://127.0.0.1:{dante}", resolver), f"http://localhost:{port}/"
        )
    assert bodies == [f"/ host=localhost:{port}"] * 2
    assert resolver.asked == [("localhost", socket.AF_UNSPEC)]


async def test_socks4_through_dante_resolves_ipv4_here(dante: int) -> None:
    resolver = Recording()
    async with origin() as port:
        connector = SocksConnector(f"socks4://127.0.0.1:{dante}", resolver=resolver)
        bodies, _, _ = await get_twice(connector, f"http://localhost:{port}/four")
    assert bodies == [f"/four host=localhost:{port}"] * 2
    assert resolver.asked == [("localhost", socket.AF_INET)]


async def test_a_refused_target_is_a_proxy_error(dante: int) -> None:
    closed = free_port()
    for scheme in ("socks5", "socks4"):
        connector = SocksConnector(f"{scheme}://127.0.0.1:{dante}")
        with pytest.raises(ProxyError, match=r"refused|could not connect"):
            await connector.connect(Uri(f"http://127.0.0.1:{closed}/"))


# -- microsocks: SOCKS5 with a password ------------------------------------------------------------


async def test_socks5_password_through_microsocks(microsocks: int) -> None:
    async with origin() as port:
        bodies, _, opened = await get_twice(
            through(f"socks5h://alice:s3cret@127.0.0.1:{microsocks}"),
            f"http://localhost:{port}/secret",
        )
        assert bodies == [f"/secret host=localhost:{port}"] * 2
        assert opened == 1
        target = Uri(f"http://127.0.0.1:{port}/")
        wrong = SocksConnector(f"socks5://alice:wrong@127.0.0.1:{microsocks}")
        with pytest.raises(ProxyAuthRequiredError, match="refused the username and password"):
            await wrong.connect(target)
        anonymous = SocksConnector(f"socks5://127.0.0.1:{microsocks}")
        with pytest.raises(ProxyAuthRequiredError, match="requires authentication"):
            await anonymous.connect(target)


# -- tiny-proxy: SOCKS4a, SOCKS4 user ids, SOCKS5 passwords, IPv6 --------------------------


async def test_socks4a_sends_the_name_to_tiny_proxy() -> None:
    resolver = Recording()
    async with origin() as port, tiny_proxy(Socks4ProxyHandler()) as proxy:
        connector = SocksConnector(f"socks4a://127.0.0.1:{proxy}", resolver=resolver)
        bodies, connected, _ = await get_twice(connector, f"http://localhost:{port}/4a")
    assert bodies == [f"/4a host=localhost:{port}"] * 2
    assert resolver.asked == []
    assert connected is not None
    assert connected.remote_addr == ("127.0.0.1", proxy)


async def test_socks4_user_id() -> None:
    async with origin() as port, tiny_proxy(Socks4ProxyHandler(username="bob")) as proxy:
        bodies, _, _ = await get_twice(
            SocksConnector(f"socks4://bob@127.0.0.1:{proxy}"), f"http://127.0.0.1:{port}/id"
        )
        assert bodies == [f"/id host=127.0.0.1:{port}"] * 2
        stranger = SocksConnector(f"socks4://127.0.0.1:{proxy}", username="eve")
        with pytest.raises(ProxyError, match="SOCKS4 proxy refused"):
            await stranger.connect(Uri(f"http://127.0.0.1:{port}/"))


async def test_socks5_password_and_ipv6_target_through_tiny_proxy() -> None:
    handler = Socks5ProxyHandler(username="carol", password="p@ss:word")
    async with origin("::1") as port, tiny_proxy(handler) as proxy:
        # Credentials from arguments, not the URL, for a password with ':'.
        connector = SocksConnector(
            f"socks5://127.0.0.1:{proxy}", username="carol", password="p@ss:word"
        )
        bodies, _, _ = await get_twice(connector, f"http://[::1]:{port}/six")
        assert bodies == [f"/six host=[::1]:{port}"] * 2
        # Percent-encoded in a URL, as curl reads it.
        matcher = ProxyMatcher.from_env(
            {"ALL_PROXY": f"socks5h://carol:p%40ss%3Aword@127.0.0.1:{proxy}"}
        )
        bodies, _, _ = await get_twice(
            ProxyConnector(HttpConnector(), matcher), f"http://[::1]:{port}/env"
        )
        assert bodies == [f"/env host=[::1]:{port}"] * 2


async def test_socks4_cannot_reach_ipv6() -> None:
    connector = SocksConnector("socks4://127.0.0.1:9")
    with pytest.raises(ProxyError, match="IPv4 addresses only"):
        await connector.connect(Uri("http://[::1]:80/"))


# -- broken proxies (our own, to misbehave on purpose) --------------------------------------


@asynccontextmanager
async def scripted(reply: bytes) -> AsyncIterator[int]:
    """A "proxy" that reads the greeting, sends ``reply`` and closes."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.receive()
                if reply:
                    await stream.send(reply)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield port
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("scheme", "reply", "message"),
    [
        ("socks5", b"", "closed the connection during the handshake"),
        ("socks5", b"HTTP/1.1 400 Bad Request\r\n\r\n", "does not speak SOCKS5"),
        ("socks5", b"\x05\xff", "requires authentication"),
        ("socks4", b"\x00\x5b\x00\x00\x00\x00\x00\x00", "rejected or failed"),
        ("socks4", b"HTTP/1.1", "invalid SOCKS4 reply"),
    ],
)
async def test_a_broken_proxy_is_a_clear_error(scheme: str, reply: bytes, message: str) -> None:
    async with scripted(reply) as port:
        connector = SocksConnector(f"{scheme}://127.0.0.1:{port}")
        with pytest.raises(ProxyError, match=message):
            await connector.connect(Uri("http://127.0.0.1:80/"))


def test_socks_urls_and_credentials_in_the_matcher() -> None:
    matcher = ProxyMatcher.from_env({"all_proxy": "socks5h://u%20ser:pa%3Ass@proxy"})
    found = matcher.intercept(Uri("https://example.com/"))
    assert found is not None
    assert str(found.uri) == "socks5h://proxy/"
    assert found.raw_auth == ("u ser", "pa:ss")
    assert found.authorization is None
    with pytest.raises(ValueError, match="not a SOCKS proxy URL"):
        SocksConnector("http://proxy:3128")
