"""``AsyncHyperTransport``: every failure is the httpx exception a user catches.

Each kind is provoked for real on loopback (a refused port, a listener whose
backlog is full, a server that stalls, stops reading, sends garbage, closes
or resets mid-message) and must surface through ``httpx.AsyncClient`` as
the matching ``httpx`` class, chained from hyper's error and never a hyper
error itself. Connector options (``uds``, ``local_address``,
``socket_options``, ``retries``) and the forwarding proxy are checked here
too.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from httpx_helpers import State, raw_peer, read_head, running_server, wait_until
from tiny_proxy import Socks5ProxyHandler  # type: ignore[import-untyped]

from hyper_core.error import HyperError
from hyper_core.rt import IO
from hyper_util.client.httpx import AsyncHyperTransport

pytestmark = pytest.mark.anyio


def client(timeout: Any = 5.0, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AsyncHyperTransport(**options), timeout=timeout)


def check_mapped(exc: BaseException, kind: type[httpx.HTTPError]) -> None:
    """``exc`` is exactly the httpx class users catch, from hyper, and no hyper error."""
    assert type(exc) is kind, repr(exc)
    assert not isinstance(exc, HyperError)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listener that never accepts, its backlog filled: further connects hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def reset(io: IO) -> None:
    """Close the socket with RST (SO_LINGER 0) instead of FIN."""
    sock = io.extra(anyio.abc.SocketAttribute.raw_socket)  # type: ignore[attr-defined]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# -- connecting --------------------------------------------------------------------------


async def test_refused_connection_is_connect_error() -> None:
    async with client() as c:
        with pytest.raises(httpx.ConnectError) as info:
            await c.get(f"http://127.0.0.1:{free_port()}/")
    check_mapped(info.value, httpx.ConnectError)
    assert isinstance(info.value.__cause__, HyperError)


async def test_connect_timeout() -> None:
    with full_backlog() as port:
        async with client(httpx.Timeout(5.0, connect=0.3)) as c:
            started = time.monotonic()
            with pytest.raises(httpx.ConnectTimeout) as info:
                await c.get(f"http://127.0.0.1:{port}/")
    check_mapped(info.value, httpx.ConnectTimeout)
    assert 0.25 < time.monotonic() - started < 3


async def test_retries_try_again_with_httpcores_backoff() -> None:
    async with client(retries=2) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{free_port()}/")
    # Three attempts: after 0 s, then 0.5 s.
    assert 0.45 < time.monotonic() - started < 5


async def test_unsupported_protocol() -> None:
    async with client() as c:
        with pytest.raises(httpx.UnsupportedProtocol) as info:
            await c.get("ftp://127.0.0.1/file")
    check_mapped(info.value, httpx.UnsupportedProtocol)
    assert "'ftp://'" in str(info.value)


# -- timeouts ----------------------------------------------------------------------------


async def test_read_timeout_waiting_for_the_head_and_between_chunks() -> None:
    async with running_server() as server, client(httpx.Timeout(5.0, read=1.0)) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            await c.get(f"{server.base}/slow-head?delay=10")
        check_mapped(info.value, httpx.ReadTimeout)
        async with c.stream("GET", f"{server.base}/slow-body?delay=10") as r:
            with pytest.raises(httpx.ReadTimeout) as info:
                await r.aread()
        check_mapped(info.value, httpx.ReadTimeout)
        # A per-request timeout overrides the client's.
        r = await c.get(f"{server.base}/slow-head?delay=0.4", timeout=2)
        assert r.content == b"late"


async def test_write_timeout_when_the_server_stops_reading() -> None:
    async def reads_the_head_only(io: IO) -> None:
        await read_head(io)
        await anyio.sleep(30)

    async with raw_peer(reads_the_head_only) as port, client(httpx.Timeout(5, write=0.3)) as c:
        with pytest.raises(httpx.WriteTimeout) as info:
            await c.post(f"http://127.0.0.1:{port}/", content=b"x" * (64 << 20))
    check_mapped(info.value, httpx.WriteTimeout)


async def test_pool_timeout_when_every_connection_is_busy() -> None:
    state = State()
    limits = httpx.Limits(max_connections=1)
    async with (
        running_server(state) as server,
        client(httpx.Timeout(5, pool=0.2), limits=limits) as c,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(c.get, f"{server.base}/hold")
        await wait_until(lambda: state.arrived == 1, "the first request holds the connection")
        with pytest.raises(httpx.PoolTimeout) as info:
            await c.get(f"{server.base}/bytes/1")
        check_mapped(info.value, httpx.PoolTimeout)
        state.release.set()


async def test_no_timeout_at_all_with_timeout_none() -> None:
    async with running_server() as server, client(None) as c:
        assert (await c.get(f"{server.base}/slow-head?delay=0.3")).content == b"late"


# -- the peer misbehaves -----------------------------------------------------------------


async def test_garbage_instead_of_a_response_is_remote_protocol_error() -> None:
    async def garbage(io: IO) -> None:
        await read_head(io)
        await io.send(b"NOT HTTP AT ALL\r\n\r\n")

    async with raw_peer(garbage) as port, client() as c:
        with pytest.raises(httpx.RemoteProtocolError) as info:
            await c.get(f"http://127.0.0.1:{port}/")
    check_mapped(info.value, httpx.RemoteProtocolError)


async def test_server_closing_without_answering_is_remote_protocol_error() -> None:
    async def hangs_up(io: IO) -> None:
        await read_head(io)

    async with raw_peer(hangs_up) as port, client() as c:
        with pytest.raises(httpx.RemoteProtocolError) as info:
            await c.post(f"http://127.0.0.1:{port}/", content=b"not idempotent")
    check_mapped(info.value, httpx.RemoteProtocolError)


async def test_body_shorter_than_its_content_length_is_remote_protocol_error() -> None:
    async def short(io: IO) -> None:
        await read_head(io)
        await io.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")

    async with raw_peer(short) as port, client() as c:
        with pytest.raises(httpx.RemoteProtocolError) as info:
            await c.get(f"http://127.0.0.1:{port}/")
    check_mapped(info.value, httpx.RemoteProtocolError)


async def test_reset_mid_body_is_read_error() -> None:
    async def resets(io: IO) -> None:
        await read_head(io)
        await io.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
        await anyio.sleep(0.1)
        reset(io)

    async with (
        raw_peer(resets) as port,
        client() as c,
        c.stream("GET", f"http://127.0.0.1:{port}/") as r,
    ):
        with pytest.raises(httpx.ReadError) as info:
            await r.aread()
    check_mapped(info.value, httpx.ReadError)


async def test_reset_while_uploading_is_write_error() -> None:
    async def resets_at_once(io: IO) -> None:
        await io.receive(1)
        reset(io)

    async with raw_peer(resets_at_once) as port, client() as c:
        with pytest.raises((httpx.WriteError, httpx.ReadError)) as info:
            await c.post(f"http://127.0.0.1:{port}/", content=b"x" * (64 << 20))
    # The reset arrives while the body is being written; a kernel that
    # reports it on the next read instead makes it a ReadError (httpcore
    # tells them apart the same way).
    check_mapped(info.value, type(info.value))


async def test_header_that_cannot_be_sent_is_local_protocol_error() -> None:
    async with running_server() as server, client() as c:
        request = c.build_request("GET", f"{server.base}/echo")
        request.headers["x-bad"] = "line\r\nInjected: yes"
        with pytest.raises(httpx.LocalProtocolError) as info:
            await c.send(request)
    check_mapped(info.value, httpx.LocalProtocolError)


async def test_request_stream_errors_come_out_unchanged() -> None:
    class Boom(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        yield b"some"
        raise Boom("the user's own error")

    async with running_server() as server, client() as c:
        with pytest.raises(Boom, match="the user's own error"):
            await c.post(f"{server.base}/echo", content=failing())
        # The pool survived it.
        assert (await c.get(f"{server.base}/bytes/1")).content == b"x"


# -- connector options -------------------------------------------------------------------


async def test_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")

    async def answers(io: anyio.abc.SocketStream) -> None:
        async with io:
            head = await read_head(io)
            body = head.split(b"\r\n", 1)[0]
            response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            await io.send(response)

    listener = await anyio.create_unix_listener(path)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, answers)
        async with client(uds=path) as c:
            r = await c.get("http://anything.invalid/over-unix")
            assert r.content == b"GET /over-unix HTTP/1.1"
        tg.cancel_scope.cancel()


async def test_local_address_and_socket_options() -> None:
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    async with (
        running_server() as server,
        client(local_address="127.0.0.1", socket_options=options) as c,
    ):
        r = await c.get(f"{server.base}/bytes/1")
        sock = r.extensions["network_stream"].get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert r.extensions["network_stream"].get_extra_info("client_addr")[0] == "127.0.0.1"


async def test_forwarding_proxy_gets_absolute_targets_and_credentials() -> None:
    seen: list[bytes] = []

    async def proxy(io: IO) -> None:
        head = await read_head(io)
        seen.append(head)
        await io.send(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied")

    async with raw_peer(proxy) as port:
        proxy_config = httpx.Proxy(
            f"http://user:p%40ss@127.0.0.1:{port}", headers={"X-Proxy-Extra": "1"}
        )
        async with client(proxy=proxy_config) as c:
            r = await c.get("http://origin.invalid:8080/path?q=1")
            assert r.content == b"proxied"
    lines = seen[0].split(b"\r\n")
    assert lines[0] == b"GET http://origin.invalid:8080/path?q=1 HTTP/1.1"
    credentials = base64.b64encode(b"user:p@ss")
    assert b"Proxy-Authorization: Basic " + credentials in lines
    assert b"X-Proxy-Extra: 1" in lines
    assert b"Host: origin.invalid:8080" in lines


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_socks5_proxy_with_credentials(scheme: str) -> None:
    handler = Socks5ProxyHandler(username="carol", password="p@ss")
    proxy_listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy_port = proxy_listener.extra(anyio.abc.SocketAttribute.local_port)
    async with (
        running_server() as server,
        proxy_listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(proxy_listener.serve, handler.handle, tg)
        proxy = httpx.Proxy(f"{scheme}://carol:p%40ss@127.0.0.1:{proxy_port}")
        async with client(proxy=proxy) as c:
            r = await c.get(f"{server.base.replace('127.0.0.1', 'localhost')}/echo/socks")
            assert r.json()["target"] == "/echo/socks"
        tg.cancel_scope.cancel()


def test_unknown_proxy_schemes_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="ftp"):
        AsyncHyperTransport(proxy=httpx.Proxy("http://127.0.0.1:1").url.copy_with(scheme="ftp"))


async def test_https_without_hyper_tls_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "hyper_tls", None)  # as if it were not installed
    async with client() as c:
        with pytest.raises(httpx.UnsupportedProtocol, match="pip install hyper-tls"):
            await c.get("https://127.0.0.1:1/")
        # Plain http still works without it.
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{free_port()}/")
