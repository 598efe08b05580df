"""hyper_util.body.written_channel: acknowledgements that follow the socket.

Real loopback sockets, our HTTP/1.1 and HTTP/2 connections on both ends, in
both directions: a server answering with a written channel to a client that
reads (or stops reading, or leaves), and a client uploading a written
channel to a server that reads (or stops reading). Small socket buffers make
"not read" show up after a few hundred KiB.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from hyper_core.body import ChannelBody, Incoming, collect
from hyper_core.client.conn import http1 as client_h1
from hyper_core.client.conn import http2 as client_h2
from hyper_core.error import ClosedError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1 as server_h1
from hyper_core.server.conn import http2 as server_h2
from hyper_util import rt
from hyper_util.body import WriteAck, WrittenSender, written_channel

pytestmark = pytest.mark.anyio

CHUNK = 16384
CHUNKS = 256  # 4 MiB: far beyond the small buffers
SMALL = 65536
READ_AHEAD = 65536
PROTOCOLS = ["h1", "h2"]

Service = Callable[[Request[Incoming]], Awaitable[Response[Any]]]


def _small_buffers(stream: SocketStream) -> None:
    raw = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)


@asynccontextmanager
async def _pair(protocol: str, service: Service) -> AsyncIterator[Any]:
    """Our server and our client over one loopback connection; yield the client's sender."""
    # hyper-util's streams: on asyncio and uvloop they read ahead at most
    # READ_AHEAD bytes (anyio's asyncio streams read without bound, so a peer
    # that "does not read" would still take everything).
    listener = await rt.create_tcp_listener(
        "127.0.0.1", 0, read_high_water=READ_AHEAD, close_timeout=0.1
    )
    port = listener.extra(SocketAttribute.local_port)

    async def handle(stream: SocketStream) -> None:
        _small_buffers(stream)
        builder: Any = server_h2.Builder() if protocol == "h2" else server_h1.Builder()
        # The tests judge the acknowledgements, not how the server ended.
        async with stream:
            with suppress(Exception):
                await builder.serve_connection(stream, service)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        stream = await rt.connect_tcp(
            "127.0.0.1", port, read_high_water=READ_AHEAD, close_timeout=0.1
        )
        _small_buffers(stream)
        handshake: Any = client_h2.handshake if protocol == "h2" else client_h1.handshake
        sender, connection = await handshake(stream)

        async def drive() -> None:
            with suppress(Exception):
                await connection.serve()

        tg.start_soon(drive)
        try:
            yield sender, stream
        finally:
            tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):  # never replaces the test's own error
                await stream.aclose()


async def _produce(sender: WrittenSender, acks: list[WriteAck], count: int = CHUNKS) -> None:
    async with sender:
        for _ in range(count):
            ack = await sender.send_data(b"x" * CHUNK)
            acks.append(ack)


def _request(body: Any = None) -> Request[Any]:
    request = Request("GET" if body is None else "POST", "http://127.0.0.1/", body=body)
    request.headers["host"] = "127.0.0.1"  # HTTP/1.1 needs it; HTTP/2 ignores it
    return request


async def _stalled(acks: list[WriteAck]) -> int:
    """Wait until no chunk was queued for 0.2 s; return how many were."""
    with anyio.fail_after(5):
        while True:
            before = len(acks)
            await anyio.sleep(0.2)
            if before and len(acks) == before:
                return before


async def _quiet(ack: WriteAck, period: float = 0.2) -> bool:
    """Whether ``ack`` stays unresolved for ``period`` seconds."""
    with anyio.move_on_after(period):
        await ack.wait()
        return False
    return True


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_server_acks_arrive_in_order_and_the_end_after_the_last(protocol: str) -> None:
    acks: list[WriteAck] = []
    done: list[str] = []
    ended = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[ChannelBody]:
        sender, body = written_channel()
        response = Response(200, body=body)
        sender.observe(response)

        async def produce() -> None:
            await sender.head_written()  # the head goes out before any data is sent
            done.append("head")
            for piece in (b"one", b"two", b"three"):
                ack = await sender.send_data(piece)
                acks.append(ack)
                await ack
                done.append(piece.decode())
            await sender.finish()
            done.append("end")
            ended.set()

        tg.start_soon(produce)
        return response

    async with anyio.create_task_group() as tg, _pair(protocol, service) as (client, _):
        response = await client.send_request(_request())
        assert (await collect(response.body)).to_bytes() == b"onetwothree"
        with anyio.fail_after(5):
            await ended.wait()
    assert done == ["head", "one", "two", "three", "end"]
    assert [a.offset for a in acks] == [3, 6, 11]
    assert all(a.done for a in acks)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_server_ack_waits_for_a_client_that_does_not_read(protocol: str) -> None:
    acks: list[WriteAck] = []
    senders: list[WrittenSender] = []

    async def service(request: Request[Incoming]) -> Response[ChannelBody]:
        sender, body = written_channel()
        response = Response(200, body=body)
        sender.observe(response)
        senders.append(sender)
        tg.start_soon(_produce, sender, acks)
        return response

    async with anyio.create_task_group() as tg, _pair(protocol, service) as (client, _):
        response = await client.send_request(_request())
        # The client reads nothing: the producer stalls (the channel's buffer
        # full) with its last chunks sent but not written.
        queued = await _stalled(acks)
        assert queued < CHUNKS
        assert await _quiet(acks[-1])
        assert senders[0].written < queued * CHUNK
        received = 0
        async for chunk in _data(response.body):
            received += len(chunk)
        assert received == CHUNK * CHUNKS
        with anyio.fail_after(5):
            await acks[-1]
        assert senders[0].written == CHUNK * CHUNKS


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_server_pending_acks_raise_when_the_client_leaves(protocol: str) -> None:
    acks: list[WriteAck] = []

    async def service(request: Request[Incoming]) -> Response[ChannelBody]:
        sender, body = written_channel()
        response = Response(200, body=body)
        sender.observe(response)
        tg.start_soon(_produce_until_closed, sender, acks)
        return response

    async with anyio.create_task_group() as tg, _pair(protocol, service) as (client, stream):
        await client.send_request(_request())
        await _stalled(acks)
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await stream.aclose()
        with anyio.fail_after(5), pytest.raises(ClosedError):
            await acks[-1]
        assert acks[-1].failed


async def _produce_until_closed(sender: WrittenSender, acks: list[WriteAck]) -> None:
    # The connection drops the body when the client leaves: sending then fails.
    with suppress(ClosedError):
        await _produce(sender, acks)


async def _data(body: Incoming) -> AsyncIterator[bytes]:
    while True:
        frame = await body.frame()
        if frame is None:
            return
        if frame.data_ref is not None:
            yield frame.data_ref


# -- client role: a request body uploaded through a written channel -------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_client_upload_acks_follow_a_server_that_reads_late(protocol: str) -> None:
    reading = anyio.Event()
    got: list[int] = []

    async def service(request: Request[Incoming]) -> Response[Any]:
        await reading.wait()  # the body stays unread until the test says
        got.append(len((await collect(request.body)).to_bytes()))
        return Response(200)

    acks: list[WriteAck] = []
    sender, body = written_channel()
    request = _request(body)
    sender.observe(request)
    produced = anyio.Event()

    async def produce() -> None:
        await _produce(sender, acks)
        produced.set()

    async with anyio.create_task_group() as tg, _pair(protocol, service) as (client, _):
        tg.start_soon(produce)
        responses: list[Response[Incoming]] = []
        answered = anyio.Event()

        async def send() -> None:
            responses.append(await client.send_request(request))
            answered.set()

        tg.start_soon(send)
        queued = await _stalled(acks)
        assert queued < CHUNKS
        assert await _quiet(acks[-1])
        assert sender.written < queued * CHUNK
        reading.set()
        with anyio.fail_after(5):
            await produced.wait()
            await acks[-1]
            await sender.finish()  # the body ended with the producer: the whole request
            await answered.wait()
    assert got == [CHUNK * CHUNKS]
    assert sender.written == CHUNK * CHUNKS
    assert responses[0].status == 200


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_client_upload_acks_fail_when_the_server_leaves(protocol: str) -> None:
    arrived = anyio.Event()

    async def service(request: Request[Incoming]) -> Response[Any]:
        arrived.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    acks: list[WriteAck] = []
    sender, body = written_channel()
    request = _request(body)
    sender.observe(request)
    async with _pair(protocol, service) as (client, stream), anyio.create_task_group() as tg:
        tg.start_soon(_produce_until_closed, sender, acks)

        async def send() -> None:
            with suppress(Exception):
                await client.send_request(request)

        tg.start_soon(send)
        with anyio.fail_after(5):
            await arrived.wait()
        await _stalled(acks)
        await stream.aclose()  # the connection is gone: nothing more is written
        with anyio.fail_after(5), pytest.raises(ClosedError):
            await acks[-1]
        with anyio.fail_after(5), pytest.raises(ClosedError):
            await sender.finish()
        tg.cancel_scope.cancel()
