"""HttpConnector's socket options and resolvers, read back from real sockets.

Every option is set through ``HttpConnector`` and checked on the socket it
connected (``getsockopt``), or by what the server saw (the local address a
connection came from). The resolvers are checked with a counting resolver
in front of them and a ``FakeTimer`` for the cache's TTL; happy eyeballs
with a listener whose accept queue is full, so a connect to it hangs.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from hyper_core.http import Uri
from hyper_core.testing import FakeTimer
from hyper_util.client.legacy import ConnectError, ConnectTimeoutError, HttpConnector
from hyper_util.client.legacy.connect import (
    DEFAULT_DNS_CACHE_TTL,
    CachingResolver,
    GaiResolver,
    Resolver,
    SocketAddress,
)

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def listening(host: str = "127.0.0.1") -> AsyncIterator[tuple[int, list[tuple[str, int]]]]:
    """A listener on ``host`` that records the peer address of each connection."""
    peers: list[tuple[str, int]] = []
    listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        peer = stream.extra(anyio.abc.SocketAttribute.remote_address)
        peers.append((str(peer[0]), int(peer[1])))
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.receive()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield port, peers
        tg.cancel_scope.cancel()


def raw(io: object) -> socket.socket:
    """The socket under a stream (asyncio hands out a ``TransportSocket`` view of it)."""
    sock: socket.socket = io.extra(anyio.abc.SocketAttribute.raw_socket)  # type: ignore[attr-defined]
    assert sock.fileno() >= 0
    return sock


class Static:
    """A resolver with fixed answers that records what it was asked."""

    def __init__(self, *addresses: SocketAddress) -> None:
        self.addresses = list(addresses)
        self.asked: list[tuple[str, int, int]] = []

    async def resolve(
        self, host: str, port: int, family: int = socket.AF_UNSPEC, /
    ) -> Sequence[SocketAddress]:
        self.asked.append((host, port, family))
        await anyio.lowlevel.checkpoint()
        return list(self.addresses)


def _protocol(static: Static, gai: GaiResolver, cache: CachingResolver) -> list[Resolver]:
    # Checked by mypy: each is a Resolver.
    return [static, gai, cache]


# -- local addresses -----------------------------------------------------------------------


async def test_local_addresses_bind_each_family() -> None:
    connector = HttpConnector(local_addresses=("127.0.0.2", "::1"))
    async with listening("127.0.0.1") as (port, peers):
        io, connected = await connector.connect(Uri(f"http://127.0.0.1:{port}/"))
        assert connected.local_addr is not None
        assert connected.local_addr[0] == "127.0.0.2"
        await io.aclose()
        await anyio.wait_all_tasks_blocked()
        assert peers[0][0] == "127.0.0.2"  # what the server saw
    async with listening("::1") as (port, peers):
        io, connected = await connector.connect(Uri(f"http://[::1]:{port}/"))
        assert connected.remote_addr == ("::1", port)
        assert connected.local_addr is not None
        assert connected.local_addr[0] == "::1"
        await io.aclose()


async def test_one_local_family_restricts_connections_to_it() -> None:
    async with listening("127.0.0.1") as (port, _):
        resolver = Static(("::1", port, 0, 0), ("127.0.0.1", port))
        connector = HttpConnector(local_addresses=("127.0.0.3", None), resolver=resolver)
        io, connected = await connector.connect(Uri(f"http://dual.test:{port}/"))
        assert resolver.asked == [("dual.test", port, socket.AF_INET)]
        assert connected.local_addr is not None
        assert connected.local_addr[0] == "127.0.0.3"
        await io.aclose()

        only_v6 = HttpConnector(local_address="::1")
        with pytest.raises(ConnectError, match="family"):
            await only_v6.connect(Uri(f"http://127.0.0.1:{port}/"))


def test_local_address_checks() -> None:
    with pytest.raises(ValueError, match="not an IPv4"):
        HttpConnector(local_addresses=("::1", None))
    with pytest.raises(ValueError, match="not an IPv6"):
        HttpConnector(local_addresses=(None, "127.0.0.1"))
    with pytest.raises(ValueError, match="not both"):
        HttpConnector(local_address="127.0.0.1", local_addresses=("127.0.0.1", None))


# -- socket options --------------------------------------------------------------------------


async def test_defaults_leave_the_system_options_alone() -> None:
    async with listening() as (port, _):
        io, _ = await HttpConnector().connect(Uri(f"http://127.0.0.1:{port}/"))
        sock = raw(io)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0") == b""
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) != 2 * 50_000
        await io.aclose()


async def test_reuse_address_buffers_and_user_timeout() -> None:
    connector = HttpConnector(
        reuse_address=True,
        send_buffer_size=50_000,
        recv_buffer_size=60_000,
        tcp_user_timeout=2.5,
        local_address="127.0.0.1",
    )
    async with listening() as (port, _):
        io, _ = await connector.connect(Uri(f"http://127.0.0.1:{port}/"))
        sock = raw(io)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        # Linux doubles the value for its bookkeeping (socket(7)).
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 50_000
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * 60_000
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2500
        await io.aclose()


async def test_interface_binds_the_device() -> None:
    async with listening() as (port, _):
        io, _ = await HttpConnector(interface="lo").connect(Uri(f"http://127.0.0.1:{port}/"))
        device = raw(io).getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
        assert device.rstrip(b"\0") == b"lo"
        await io.aclose()
        with pytest.raises(ConnectError, match="SO_BINDTODEVICE") as info:
            await HttpConnector(interface="nosuchdev0").connect(Uri(f"http://127.0.0.1:{port}/"))
        assert "tcp connect error" in str(info.value)


def test_option_checks() -> None:
    with pytest.raises(ValueError, match="interface"):
        HttpConnector(interface="x" * 16)
    with pytest.raises(ValueError, match="send_buffer_size"):
        HttpConnector(send_buffer_size=0)
    with pytest.raises(ValueError, match="tcp_user_timeout"):
        HttpConnector(tcp_user_timeout=0)


# -- resolving ----------------------------------------------------------------------------------


async def test_ip_literals_never_reach_the_resolver() -> None:
    resolver = Static()
    connector = HttpConnector(resolver=resolver)
    async with listening("127.0.0.1") as (port4, _), listening("::1") as (port6, _):
        io, _ = await connector.connect(Uri(f"http://127.0.0.1:{port4}/"))
        await io.aclose()
        io, connected = await connector.connect(Uri(f"http://[::1]:{port6}/"))
        assert connected.remote_addr == ("::1", port6)
        await io.aclose()
    assert resolver.asked == []


async def test_names_go_to_the_resolver_and_failures_are_dns_errors() -> None:
    async with listening() as (port, _):
        resolver = Static(("127.0.0.1", port))
        io, connected = await HttpConnector(resolver=resolver).connect(
            Uri(f"http://service.internal:{port}/")
        )
        assert connected.remote_addr == ("127.0.0.1", port)
        await io.aclose()
    assert resolver.asked == [("service.internal", port, socket.AF_UNSPEC)]
    with pytest.raises(ConnectError, match="dns error"):
        await HttpConnector(resolver=GaiResolver()).connect(Uri("http://no-such-host.invalid/"))


async def test_default_resolver_caches_getaddrinfo() -> None:
    connector = HttpConnector()
    cache = connector.resolver
    assert isinstance(cache, CachingResolver)
    assert isinstance(cache.inner, GaiResolver)
    async with listening() as (port, _):
        for _ in range(3):
            io, connected = await connector.connect(Uri(f"http://localhost:{port}/"))
            assert connected.remote_addr == ("127.0.0.1", port)
            await io.aclose()
    assert len(cache) == 1


async def test_gai_resolver_returns_each_address_once() -> None:
    addresses = await GaiResolver().resolve("localhost", 8080)
    assert ("127.0.0.1", 8080) in addresses
    assert len(set(addresses)) == len(addresses)
    only_v4 = await GaiResolver().resolve("localhost", 8080, socket.AF_INET)
    assert only_v4
    assert all(":" not in address[0] for address in only_v4)


# -- the cache -----------------------------------------------------------------------------------


class Counting:
    """A resolver that counts lookups, can be held until released, or fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.release: anyio.Event | None = None
        self.error: OSError | None = None

    async def resolve(
        self, host: str, port: int, family: int = socket.AF_UNSPEC, /
    ) -> Sequence[SocketAddress]:
        self.calls += 1
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return [(f"10.0.0.{self.calls}", port)]


async def test_cache_keeps_answers_for_the_ttl() -> None:
    timer = FakeTimer()
    inner = Counting()
    cache = CachingResolver(inner, timer=timer)
    assert await cache.resolve("Example.com", 80) == (("10.0.0.1", 80),)
    timer.advance(DEFAULT_DNS_CACHE_TTL - 0.1)
    assert await cache.resolve("example.com", 80) == (("10.0.0.1", 80),)  # case-insensitive
    assert inner.calls == 1
    timer.advance(0.1)
    assert await cache.resolve("example.com", 80) == (("10.0.0.2", 80),)
    # Port and family are part of the key.
    await cache.resolve("example.com", 443)
    await cache.resolve("example.com", 80, socket.AF_INET)
    assert inner.calls == 4
    cache.clear()
    assert len(cache) == 0


async def test_cache_size_drops_the_least_recently_used() -> None:
    inner = Counting()
    cache = CachingResolver(inner, max_entries=2, timer=FakeTimer())
    await cache.resolve("a", 80)
    await cache.resolve("b", 80)
    await cache.resolve("a", 80)  # a is now the most recent
    await cache.resolve("c", 80)  # b goes
    assert len(cache) == 2
    calls = inner.calls
    await cache.resolve("a", 80)
    assert inner.calls == calls
    await cache.resolve("b", 80)
    assert inner.calls == calls + 1


async def test_concurrent_lookups_of_one_name_are_one_lookup() -> None:
    inner = Counting()
    inner.release = anyio.Event()
    cache = CachingResolver(inner, timer=FakeTimer())
    results: list[Sequence[SocketAddress]] = []

    async def ask() -> None:
        results.append(await cache.resolve("burst.test", 80))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        assert inner.calls == 1
        inner.release.set()
    assert results == [(("10.0.0.1", 80),)] * 5


async def test_a_failed_lookup_fails_every_waiter_and_is_not_cached() -> None:
    inner = Counting()
    inner.release = anyio.Event()
    inner.error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    cache = CachingResolver(inner, timer=FakeTimer())
    failures: list[BaseException] = []

    async def ask() -> None:
        try:
            await cache.resolve("down.test", 80)
        except OSError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        inner.release.set()
    assert len(failures) == 3
    assert all(isinstance(f, socket.gaierror) for f in failures)
    assert inner.calls == 1
    inner.error = None
    assert await cache.resolve("down.test", 80) == (("10.0.0.2", 80),)


async def test_a_cancelled_first_lookup_hands_over_to_a_waiter() -> None:
    inner = Counting()
    inner.release = anyio.Event()
    cache = CachingResolver(inner, timer=FakeTimer())
    got: list[Sequence[SocketAddress]] = []
    leader = anyio.CancelScope()

    async def lead() -> None:
        with leader:
            await cache.resolve("slow.test", 80)

    async def wait() -> None:
        got.append(await cache.resolve("slow.test", 80))

    async with anyio.create_task_group() as tg:
        tg.start_soon(lead)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert inner.calls == 1
        leader.cancel()
        await anyio.wait_all_tasks_blocked()
        assert inner.calls == 2  # the waiter looked it up itself
        inner.release.set()
    assert got == [(("10.0.0.2", 80),)]


async def test_empty_answers_are_errors() -> None:
    cache = CachingResolver(Static(), timer=FakeTimer())
    with pytest.raises(socket.gaierror, match="no address"):
        await cache.resolve("empty.test", 80)
    assert len(cache) == 0


# -- happy eyeballs ----------------------------------------------------------------------------


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port whose accept queue is full: new connects to it hang (SYNs dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        while True:
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(("127.0.0.1", port))
            _, writable, _ = select.select([], [filler], [], 0.2)
            if not writable:
                break  # this one hangs: the queue is full
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


async def test_happy_eyeballs_starts_the_next_address_after_the_delay() -> None:
    with black_hole() as hole:
        async with listening() as (port, _):
            resolver = Static(("127.0.0.1", hole), ("127.0.0.1", port))
            connector = HttpConnector(resolver=resolver, happy_eyeballs_timeout=0.05)
            with anyio.fail_after(5):
                io, connected = await connector.connect(Uri(f"http://two.test:{port}/"))
            assert connected.remote_addr == ("127.0.0.1", port)
            await io.aclose()

            one_by_one = HttpConnector(
                resolver=resolver, happy_eyeballs_timeout=None, connect_timeout=0.3
            )
            with pytest.raises(ConnectTimeoutError):
                await one_by_one.connect(Uri(f"http://two.test:{port}/"))


async def test_a_refused_address_moves_on_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    async with listening() as (port, _):
        resolver = Static(("127.0.0.1", closed), ("127.0.0.1", port))
        # A delay far longer than the test: only the failure can start the next.
        connector = HttpConnector(resolver=resolver, happy_eyeballs_timeout=30)
        with anyio.fail_after(5):
            io, connected = await connector.connect(Uri(f"http://two.test:{port}/"))
        assert connected.remote_addr == ("127.0.0.1", port)
        await io.aclose()
        resolver.addresses = [("127.0.0.1", closed)] * 2
        with pytest.raises(ConnectError, match="every address failed"):
            await connector.connect(Uri(f"http://two.test:{port}/"))
