"""The Client's request rules and the HttpConnector's options, on the wire.

What the server receives is read as raw bytes on a loopback socket, so the
request-target form and the ``Host`` header are checked exactly as written.
The connector's socket options are read back from the socket itself.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

import hyper_util.client
import hyper_util.client.legacy
import hyper_util.client.legacy.connect
from hyper_core.body import collect
from hyper_core.error import ClosedError, UserError
from hyper_core.http import Request, Uri, Version
from hyper_core.testing import FakeTimer
from hyper_util.client.legacy import (
    Client,
    Connected,
    ConnectError,
    HttpConnector,
    InvalidRequestError,
)
from hyper_util.client.legacy._rules import HostValues

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "module",
    [hyper_util.client, hyper_util.client.legacy, hyper_util.client.legacy.connect],
)
def test_all_is_exactly_the_public_names(module: object) -> None:
    public = {name for name in vars(module) if not name.startswith("_")}
    exported = set(module.__all__)  # type: ignore[attr-defined]
    assert exported <= public
    # Everything public that is not a submodule or a future import is exported.
    extra = {
        name
        for name in public - exported
        if not isinstance(getattr(module, name), type(hyper_util)) and name != "annotations"
    }
    assert extra == set()


@asynccontextmanager
async def recording_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """Answers every request with 200 "ok", keeping each request head."""
    heads: list[bytes] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        buf = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        buf += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                head, _, buf = buf.partition(b"\r\n\r\n")
                heads.append(head)
                await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield port, heads
        tg.cancel_scope.cancel()


async def test_origin_form_and_host_without_default_port() -> None:
    async with recording_server() as (port, heads), Client(timer=FakeTimer()) as client:
        response = await client.get(f"http://127.0.0.1:{port}/a/b?c=d#frag")
        assert (await collect(response.body)).data == b"ok"
        response = await client.get(f"http://127.0.0.1:{port}", headers={"Host": "custom"})
        await collect(response.body)
    first = heads[0].split(b"\r\n")
    assert first[0] == b"GET /a/b?c=d HTTP/1.1"
    assert first[1] == f"host: 127.0.0.1:{port}".encode()
    second = heads[1].split(b"\r\n")
    assert second[0] == b"GET / HTTP/1.1"
    assert [line for line in second if line.lower().startswith(b"host:")] == [b"Host: custom"]


async def test_set_host_false_and_the_request_object_is_unchanged() -> None:
    async with (
        recording_server() as (port, heads),
        Client(timer=FakeTimer(), set_host=False) as client,
    ):
        request = Request("GET", f"http://127.0.0.1:{port}/x")
        await collect((await client.request(request)).body)
    assert b"host:" not in heads[0].lower()
    assert str(request.uri) == f"http://127.0.0.1:{port}/x"
    assert "host" not in request.headers


def test_host_value_drops_only_the_default_port() -> None:
    values = HostValues()

    def host(key: tuple[str, str, int], uri: str) -> list[tuple[bytes, bytes]]:
        return values.get(key, Uri(uri)).raw()

    assert host(("http", "example.com", 80), "http://example.com:80/") == [
        (b"host", b"example.com")
    ]
    assert host(("https", "example.com", 443), "https://example.com/") == [
        (b"host", b"example.com")
    ]
    assert host(("http", "::1", 8080), "http://[::1]:8080/") == [(b"host", b"[::1]:8080")]
    assert host(("https", "h", 80), "https://h:80/") == [(b"host", b"h:80")]
    # Each request gets its own copy of the cached field.
    first = values.get(("https", "h", 80), Uri("https://h:80/"))
    first.append("x-extra", "1")
    assert host(("https", "h", 80), "https://h:80/") == [(b"host", b"h:80")]


async def test_request_rules() -> None:
    async with Client(timer=FakeTimer()) as client:
        with pytest.raises(InvalidRequestError, match="absolute URI"):
            await client.get("/relative")
        with pytest.raises(InvalidRequestError, match="version"):
            await client.request(Request("GET", "http://h/", version=Version.HTTP_3))
        with pytest.raises(InvalidRequestError, match="CONNECT"):
            await client.request(Request("CONNECT", "h:443", version=Version.HTTP_10))
        assert issubclass(InvalidRequestError, UserError)


async def test_http2_version_on_an_http1_connection_is_refused() -> None:
    async with recording_server() as (port, _), Client(timer=FakeTimer()) as client:
        with pytest.raises(InvalidRequestError, match="HTTP/2"):
            await client.request(
                Request("GET", f"http://127.0.0.1:{port}/", version=Version.HTTP_2)
            )
        # The connection went back to the pool unused.
        assert client.statistics().idle_connections == 1


async def test_client_must_be_entered_and_cannot_be_reused() -> None:
    client = Client()
    with pytest.raises(ClosedError, match="async with"):
        await client.get("http://example.com/")
    async with client:
        pass
    with pytest.raises(ClosedError):
        await client.get("http://example.com/")
    with pytest.raises(UserError):
        async with client:
            pass


def test_option_ranges() -> None:
    with pytest.raises(ValueError, match="pool_idle_timeout"):
        Client(pool_idle_timeout=0)
    with pytest.raises(ValueError, match="max_connections"):
        Client(max_connections=0)
    with pytest.raises(ValueError, match="http2_max_connections_per_host"):
        Client(http2_max_connections_per_host=0)
    with pytest.raises(ValueError, match="pool_max_idle_per_host"):
        Client(pool_max_idle_per_host=-1)
    with pytest.raises(ValueError, match="not-an-ip"):
        HttpConnector(local_address="not-an-ip")


# -- HttpConnector -------------------------------------------------------------------------


async def test_enforce_http_and_missing_host() -> None:
    connector = HttpConnector()
    with pytest.raises(ConnectError, match="scheme is not http"):
        await connector.connect(Uri("https://example.com/"))
    with pytest.raises(ConnectError, match="host is missing"):
        await connector.connect(Uri("/relative"))


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Client(timer=FakeTimer()) as client:
        with pytest.raises(ConnectError, match="tcp connect error"):
            await client.get(f"http://127.0.0.1:{port}/")
        assert client.statistics().open_connections == 0


async def test_socket_options_and_local_address() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener:
        connector = HttpConnector(
            keepalive=30, keepalive_interval=5, keepalive_retries=3, local_address="127.0.0.1"
        )
        io, connected = await connector.connect(Uri(f"http://127.0.0.1:{port}/"))
        sock: socket.socket = io.extra(anyio.abc.SocketAttribute.raw_socket)  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 5
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert connected == Connected(
            remote_addr=("127.0.0.1", port), local_addr=connected.local_addr
        )
        assert connected.local_addr is not None
        assert connected.local_addr[0] == "127.0.0.1"
        await io.aclose()

        io, _ = await HttpConnector(nodelay=False).connect(Uri(f"http://127.0.0.1:{port}/"))
        sock = io.extra(anyio.abc.SocketAttribute.raw_socket)  # type: ignore[attr-defined]
        assert not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        await io.aclose()


async def test_dns_name_resolves_through_the_runtime() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener:
        io, connected = await HttpConnector().connect(Uri(f"http://localhost:{port}/"))
        assert connected.remote_addr == ("127.0.0.1", port)
        await io.aclose()


def test_connected_replace_keeps_extra() -> None:
    connected = Connected(remote_addr=("1.2.3.4", 80))
    connected.extra.insert(b"x")
    changed = connected.replace(alpn_h2=True)
    assert changed.alpn_h2
    assert changed.remote_addr == ("1.2.3.4", 80)
    assert changed.extra.get(bytes) == b"x"
