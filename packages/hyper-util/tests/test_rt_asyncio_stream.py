"""The asyncio fast path's own behaviour, beyond the shared IO conformance suite.

What belongs here: path selection (``fast=None/False/True`` on each
backend), what only :class:`AsyncioSocketStream` promises (ClosedResourceError
after ``send_eof``, BusyResourceError, graceful ``aclose`` with its timeout,
read coalescing, statistics), Unix sockets and wrapped sockets on both paths,
the listener across several sockets, and ``AnyioExecutor``.

Strategy: real loopback and Unix sockets; tests that exercise the asyncio
fast path itself set ``anyio_backend`` to asyncio only (it drives asyncio
transports); path-selection and adapter tests run on both backends (trio's
fast path is :class:`TrioSocketStream`, tested in ``test_rt_trio_stream``).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.abc import SocketAttribute, SocketStream

from hyper_core.rt import Executor
from hyper_util.rt import (
    AnyioExecutor,
    AnyioTimer,
    AsyncioSocketStream,
    StreamListener,
    TrioSocketStream,
    connect_tcp,
    connect_unix,
    create_tcp_listener,
    create_unix_listener,
    current_library,
    wrap_connected_socket,
    wrap_socket_listener,
)
from hyper_util.rt._asyncio_protocol import writelines_pauses
from hyper_util.rt._backend import use_fast_path

pytestmark = pytest.mark.anyio

STEP_TIMEOUT = 20.0

# The fast path drives asyncio transports and protocols: asyncio only (on
# asyncio's own loop and on uvloop's).
asyncio_only = pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ],
)


async def poll_until(condition: Callable[[], bool]) -> None:
    for _ in range(2000):  # at most 2000 x 10 ms
        if condition():
            return
        await anyio.sleep(0.01)
    raise AssertionError("condition never became true")


def buffered_at_least(stream: AsyncioSocketStream, n: int) -> bool:
    return stream.statistics().read_buffered >= n


async def read_until_error(stream: SocketStream) -> None:
    with anyio.fail_after(STEP_TIMEOUT):
        for _ in range(100_000):  # bounded: 32 MiB at most 64 KiB per read is 512
            await stream.receive()
    raise AssertionError("the stream never failed")


async def tcp_pair(
    fast: bool | None, host: str = "127.0.0.1", **options: Any
) -> tuple[SocketStream, SocketStream]:
    async with await create_tcp_listener(host, 0, fast=fast, **options) as listener:
        port = listener.extra(SocketAttribute.local_port)
        client = await connect_tcp(host, port, fast=fast, **options)
        server = await listener.accept()
    return server, client


FAST_TYPES: dict[str, type[SocketStream]] = {
    "asyncio": AsyncioSocketStream,
    "trio": TrioSocketStream,
}


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_socket_attributes_match_anyio_streams(host: str, anyio_backend_name: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.fail("IPv6 loopback is needed for this test")
    fast_server, fast_client = await tcp_pair(True, host=host)
    slow_server, slow_client = await tcp_pair(False, host=host)
    async with fast_server, fast_client, slow_server, slow_client:
        assert isinstance(fast_server, FAST_TYPES[anyio_backend_name])
        assert isinstance(fast_client, FAST_TYPES[anyio_backend_name])
        assert not isinstance(slow_server, (AsyncioSocketStream, TrioSocketStream))
        assert set(fast_server.extra_attributes) == set(slow_server.extra_attributes)
        for server, client in ((fast_server, fast_client), (slow_server, slow_client)):
            remote = server.extra(SocketAttribute.remote_address)
            assert remote == client.extra(SocketAttribute.local_address)
            assert remote[0] == host
            assert server.extra(SocketAttribute.remote_port) == remote[1]
            local = server.extra(SocketAttribute.local_address)
            assert local == client.extra(SocketAttribute.remote_address)
            assert server.extra(SocketAttribute.local_port) == local[1]
            expected = socket.AF_INET6 if ":" in host else socket.AF_INET
            assert server.extra(SocketAttribute.family) == expected
            assert server.extra(SocketAttribute.raw_socket).fileno() >= 0


async def test_fast_path_is_chosen_by_the_running_backend(anyio_backend_name: str) -> None:
    server, client = await tcp_pair(None)
    async with server, client:
        assert current_library() == anyio_backend_name
        assert isinstance(server, FAST_TYPES[anyio_backend_name])
        assert isinstance(client, FAST_TYPES[anyio_backend_name])
    server, client = await tcp_pair(False)
    async with server, client:
        assert not isinstance(server, (AsyncioSocketStream, TrioSocketStream))
        assert not isinstance(client, (AsyncioSocketStream, TrioSocketStream))


def test_forcing_a_fast_path_outside_asyncio_and_trio_fails() -> None:
    # No event loop runs here: sniffio finds no library.
    with pytest.raises(RuntimeError, match="asyncio or trio"):
        use_fast_path(True)
    assert use_fast_path(None) is None
    assert use_fast_path(False) is None


@asyncio_only
async def test_send_after_send_eof_or_close_is_closed_resource() -> None:
    server, client = await tcp_pair(True)
    assert isinstance(server, AsyncioSocketStream)
    async with client:
        await server.send_eof()
        with pytest.raises(anyio.ClosedResourceError):
            await server.send(b"x")
        with pytest.raises(anyio.ClosedResourceError):
            await server.send_many([b"x", b"y"])
        await server.aclose()
        await server.aclose()  # closing twice is harmless
        with pytest.raises(anyio.ClosedResourceError):
            await server.send_eof()
        with pytest.raises(anyio.ClosedResourceError):
            await server.receive()


@asyncio_only
async def test_unreceive_puts_bytes_back_in_front() -> None:
    server, client = await tcp_pair(True)
    assert isinstance(server, AsyncioSocketStream)
    async with server, client:
        await client.send(b"abcdef")
        got = b""
        while len(got) < 6:
            got += await server.receive()
        server.unreceive(got[2:])
        server.unreceive(got[:2])
        server.unreceive(b"")  # nothing to give back
        await client.send(b"gh")
        await anyio.sleep(0.01)
        received = b""
        while len(received) < 8:
            received += await server.receive(3)
        assert received == b"abcdefgh"
        assert server.statistics().read_buffered == 0
        # A reader already waiting gets what is put back.
        async with anyio.create_task_group() as tg:
            results: list[bytes] = []

            async def read() -> None:
                results.append(await server.receive())

            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            server.unreceive(b"back")
        assert results == [b"back"]


@asyncio_only
async def test_two_readers_at_once_is_busy() -> None:
    server, client = await tcp_pair(True)
    async with server, client, anyio.create_task_group() as tg:
        tg.start_soon(server.receive)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await server.receive()
        with pytest.raises(ValueError, match="max_bytes"):
            await client.receive(0)
        await client.send(b"go")


@asyncio_only
async def test_receive_coalesces_buffered_chunks_up_to_max_bytes() -> None:
    server, client = await tcp_pair(True)
    async with server, client:
        assert isinstance(server, AsyncioSocketStream)
        for i in range(10):
            await client.send(bytes([65 + i]) * 10)
            # Let each chunk land as its own data_received call.
            await poll_until(functools.partial(buffered_at_least, server, (i + 1) * 10))
        assert await server.receive(35) == b"A" * 10 + b"B" * 10 + b"C" * 10 + b"D" * 5
        assert server.statistics().read_buffered == 65
        assert await server.receive() == b"D" * 5 + b"".join(bytes([69 + i]) * 10 for i in range(6))


@asyncio_only
async def test_aclose_sends_what_is_queued_first() -> None:
    server, client = await tcp_pair(True)
    payload = b"z" * (3 * 1024 * 1024)
    async with client:
        assert isinstance(server, AsyncioSocketStream)
        received = bytearray()

        async def read_all() -> None:
            while True:
                try:
                    received.extend(await client.receive())
                except anyio.EndOfStream:
                    return

        with anyio.fail_after(STEP_TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_all)
                # Queue it all without waiting for room, then close at once.
                server._transport.write(payload)
                await server.aclose()
        assert bytes(received) == payload


@asyncio_only
async def test_aclose_gives_up_on_a_peer_that_never_reads() -> None:
    server, client = await tcp_pair(True, close_timeout=0.2)
    async with client:
        assert isinstance(server, AsyncioSocketStream)
        server._transport.write(b"q" * (32 * 1024 * 1024))
        with anyio.fail_after(STEP_TIMEOUT):
            await server.aclose()
        assert server._transport.is_closing()
        with pytest.raises(anyio.BrokenResourceError):
            await read_until_error(client)


@asyncio_only
async def test_high_water_marks_are_validated() -> None:
    async with await create_tcp_listener("127.0.0.1", 0, fast=True) as listener:
        port = listener.extra(SocketAttribute.local_port)
        with pytest.raises(ValueError, match="high_water"):
            await connect_tcp("127.0.0.1", port, read_high_water=0)


async def test_unix_sockets_on_every_path(tmp_path: Path, anyio_backend_name: str) -> None:
    for fast in (None, False):
        path = tmp_path / f"sock-{fast}"
        async with await create_unix_listener(path, fast=fast) as listener:
            assert listener.fast is (fast is None)
            client = await connect_unix(path, fast=fast)
            server = await listener.accept()
        async with server, client:
            assert isinstance(server, FAST_TYPES[anyio_backend_name]) is listener.fast
            assert isinstance(client, FAST_TYPES[anyio_backend_name]) is listener.fast
            await client.send(b"over unix")
            await client.send_eof()
            assert await server.receive() == b"over unix"
            with pytest.raises(anyio.EndOfStream):
                await server.receive()
            assert server.extra(SocketAttribute.family) == socket.AF_UNIX


async def test_wrapped_sockets(anyio_backend_name: str) -> None:
    a, b = socket.socketpair()
    left = await wrap_connected_socket(a)
    right = await wrap_connected_socket(b, fast=False)
    async with left, right:
        assert isinstance(left, FAST_TYPES[anyio_backend_name])
        assert not isinstance(right, FAST_TYPES[anyio_backend_name])
        await left.send(b"ping")
        assert await right.receive() == b"ping"
        await right.send(b"pong")
        assert await left.receive() == b"pong"

    raw = socket.create_server(("127.0.0.1", 0))
    async with await wrap_socket_listener(raw) as listener:
        port = listener.extra(SocketAttribute.local_port)
        assert port == listener.extra(SocketAttribute.local_address)[1]
        client = await connect_tcp("127.0.0.1", port)
        server = await listener.accept()
        async with server, client:
            await server.send(b"hi")
            assert await client.receive() == b"hi"


async def test_listener_accepts_on_every_socket_and_serves() -> None:
    first = await create_tcp_listener("127.0.0.1", 0)
    second = await create_tcp_listener("127.0.0.1", 0)
    ports = [first.extra(SocketAttribute.local_port), second.extra(SocketAttribute.local_port)]
    combined = StreamListener([*first.listeners, *second.listeners], fast=first.fast)
    async with combined:
        with anyio.fail_after(STEP_TIMEOUT):
            for port in ports:
                client = await connect_tcp("127.0.0.1", port)
                server = await combined.accept()
                async with server, client:
                    assert server.extra(SocketAttribute.local_port) == port

            seen: list[bytes] = []

            async def handler(stream: SocketStream) -> None:
                async with stream:
                    seen.append(await stream.receive())

            async with anyio.create_task_group() as tg:
                tg.start_soon(combined.serve, handler)
                for port in ports:
                    async with await connect_tcp("127.0.0.1", port) as client:
                        await client.send(str(port).encode())
                await poll_until(lambda: len(seen) == 2)
                tg.cancel_scope.cancel()
    assert sorted(seen) == sorted(str(p).encode() for p in ports)
    with pytest.raises(anyio.ClosedResourceError):
        await combined.accept()


async def test_listener_close_wakes_a_waiting_accept() -> None:
    listener = await create_tcp_listener("127.0.0.1", 0)
    errors: list[Exception] = []

    async def wait_for_one() -> None:
        try:
            await listener.accept()
        except anyio.ClosedResourceError as exc:
            errors.append(exc)

    with anyio.fail_after(STEP_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_one)
            await anyio.wait_all_tasks_blocked()
            await listener.aclose()
    assert len(errors) == 1


async def _pending_connection(port: int) -> socket.socket:
    """A client whose request is already sent, waiting in the listen queue."""
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await anyio.sleep(0.05)  # the handshake has completed: accept() would not block
    return client


@asyncio_only
async def test_an_accept_cancelled_before_it_starts_accepts_nothing() -> None:
    async with await create_tcp_listener("127.0.0.1", 0) as listener:
        client = await _pending_connection(listener.extra(SocketAttribute.local_port))
        with client, anyio.fail_after(STEP_TIMEOUT):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await listener.accept()
            assert scope.cancelled_caught  # nothing was accepted ...
            async with await listener.accept() as server:  # ... so the next accept gets it
                assert (await server.receive()).startswith(b"GET / ")


@asyncio_only
async def test_an_accept_cancelled_while_it_sets_up_the_stream_keeps_the_connection() -> None:
    # The connection is taken from the kernel at once; the stream around it is
    # made over a loop iteration. A cancel in that iteration (a server
    # stopping gracefully cancels its accept loop) used to close the socket
    # with the request unread: the client saw a reset.
    async with await create_tcp_listener("127.0.0.1", 0) as listener:
        client = await _pending_connection(listener.extra(SocketAttribute.local_port))
        with client, anyio.fail_after(STEP_TIMEOUT):
            accepted: list[SocketStream] = []
            with anyio.CancelScope() as scope:
                asyncio.get_running_loop().call_soon(scope.cancel)
                accepted.append(await listener.accept())
            assert len(accepted) == 1
            async with accepted[0] as server:
                assert (await server.receive()).startswith(b"GET / ")
                await server.send(b"HTTP/1.1 204 No Content\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 204")


async def test_anyio_executor_spawns_into_the_callers_task_group() -> None:
    done: list[str] = []

    async def work(name: str, delay: float) -> None:
        await anyio.sleep(delay)
        done.append(name)

    async with anyio.create_task_group() as tg:
        executor: Executor = AnyioExecutor(tg)
        executor.spawn(work, "slow", 0.02)
        executor.spawn(work, "fast", 0)
    assert done == ["fast", "slow"]


async def test_anyio_executor_on_error_keeps_the_other_tasks() -> None:
    failures: list[Exception] = []
    done: list[str] = []

    async def boom() -> None:
        await anyio.lowlevel.checkpoint()
        raise KeyError("one bad connection")

    async def fine() -> None:
        await anyio.sleep(0.02)
        done.append("fine")

    async with anyio.create_task_group() as tg:
        executor = AnyioExecutor(tg, on_error=failures.append)
        executor.spawn(boom)
        executor.spawn(fine)
    assert done == ["fine"]
    assert [type(e) for e in failures] == [KeyError]

    with pytest.raises(ExceptionGroup) as info:
        async with anyio.create_task_group() as tg:
            AnyioExecutor(tg).spawn(boom)
    assert info.group_contains(KeyError)


async def test_anyio_timer_is_hyper_cores() -> None:
    timer = AnyioTimer()
    start = timer.now()
    with timer.deadline(start + 0.01) as scope:
        await timer.sleep(10)
    assert scope.expired


@asyncio_only
async def test_connect_by_name_races_the_addresses_on_every_loop() -> None:
    # asyncio's create_connection races addresses itself; uvloop's has no
    # happy eyeballs, so the fast path does it (and must still connect).
    async with await create_tcp_listener("127.0.0.1", 0, fast=True) as listener:
        port = listener.extra(SocketAttribute.local_port)
        client = await connect_tcp("localhost", port, fast=True, happy_eyeballs_delay=0.05)
        server = await listener.accept()
        async with client, server:
            await client.send(b"ping")
            assert await server.receive() == b"ping"
            assert isinstance(client, AsyncioSocketStream)


@asyncio_only
async def test_happy_eyeballs_race_connects_and_reports_refusal() -> None:
    import asyncio

    from hyper_util.rt._asyncio_open import _happy_eyeballs

    loop = asyncio.get_running_loop()
    async with await create_tcp_listener("127.0.0.1", 0, fast=True) as listener:
        port = listener.extra(SocketAttribute.local_port)
        sock = await _happy_eyeballs(loop, "127.0.0.1", port, None, 0.05)
        with sock:
            assert sock.getpeername() == ("127.0.0.1", port)
            assert not sock.getblocking()
        async with await listener.accept():
            pass
    # The listener is gone: the one address refuses, and that error is raised.
    with pytest.raises(ConnectionRefusedError):
        await _happy_eyeballs(loop, "127.0.0.1", port, None, 0.05)


def test_interleave_alternates_families_first_family_first() -> None:
    from hyper_util.rt._asyncio_open import _interleave

    v6a, v6b = (socket.AF_INET6, 1, 6, "", ("::1", 1)), (socket.AF_INET6, 1, 6, "", ("::2", 1))
    v4a, v4b = (
        (socket.AF_INET, 1, 6, "", ("10.0.0.1", 1)),
        (socket.AF_INET, 1, 6, "", ("10.0.0.2", 1)),
    )
    assert _interleave([v6a, v6b, v4a, v4b]) == [v6a, v4a, v6b, v4b]
    assert _interleave([v4a, v6a, v6b]) == [v4a, v6a, v6b]
    assert _interleave([]) == []


def test_writelines_that_never_pauses_is_recognised() -> None:
    # CPython 3.12.x and 3.13.0's selector transports buffer in writelines()
    # without pausing the protocol; send_many then writes its last piece
    # with write(), which pauses. Read from the method's code.
    class NeverPauses:
        _loop: Any

        def writelines(self, data: list[bytes]) -> None:
            self._loop._add_writer(0, None)

    class Pauses(NeverPauses):
        def writelines(self, data: list[bytes]) -> None:
            self._loop._add_writer(0, None)
            self._maybe_pause_protocol()

        def _maybe_pause_protocol(self) -> None: ...

    class Joins:
        def write(self, data: bytes) -> None: ...

        def writelines(self, data: list[bytes]) -> None:
            self.write(b"".join(data))

    assert writelines_pauses(NeverPauses) is False
    assert writelines_pauses(Pauses) is True
    assert writelines_pauses(Joins) is True
    assert writelines_pauses(object) is True  # no writelines of its own code: uvloop's


def test_without_trio_the_trio_names_are_absent_and_say_what_to_install() -> None:
    # A fresh interpreter in which importing trio fails, as without the extra.
    script = """
import sys
sys.modules["trio"] = None
import hyper_util.rt as rt
from hyper_util.rt import *
assert "TrioSocketStream" not in rt.__all__ and "TrioStreamStatistics" not in rt.__all__
try:
    rt.TrioSocketStream
except AttributeError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert (
        done.stdout.strip()
        == "hyper_util.rt.TrioSocketStream needs trio: pip install 'hyper-util[trio]'"
    )
