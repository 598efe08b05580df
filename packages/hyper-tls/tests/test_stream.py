"""``TlsStream``'s read path over a real loopback socket.

What belongs here: what ``TlsStream.receive`` returns when records arrive
several to a TCP segment or larger than ``max_bytes`` (bytes already
buffered by the BIO or by OpenSSL come back without another transport read),
and how it ends (close_notify, or the transport closing without one).

Strategy: a raw anyio listener on 127.0.0.1 runs the server side of
``TlsStream`` with our server context; the client side wraps a plain anyio
TCP stream. The server writes several records with one ``send`` on the
socket (the records are encrypted first, then sent together) so they reach
the client in one segment.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import pytest
from tls_helpers import CertFiles, raw_server

from hyper_core.rt import IO
from hyper_tls import TlsStream

pytestmark = pytest.mark.anyio

Server = Callable[[TlsStream, IO], Awaitable[None]]


class CountingIO:
    """An IO that counts the writes it passes on."""

    def __init__(self, inner: IO) -> None:
        self.inner = inner
        self.writes = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        self.writes += 1
        await self.inner.send(item)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def tls_pair(
    certs: CertFiles, serve: Server, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
) -> AsyncIterator[tuple[TlsStream, CountingIO]]:
    """A TLS server on loopback running ``serve``; yield a client stream connected to it.

    Also yields the client's transport, which counts its writes.
    """
    server_context = certs.server_context(http2=False)
    server_context.maximum_version = version

    async def handler(io: IO) -> None:
        await serve(await TlsStream.wrap(io, server_context, server_side=True), io)

    async with raw_server(handler) as port:
        counting = CountingIO(await anyio.connect_tcp("127.0.0.1", port))
        client = await TlsStream.wrap(
            counting, certs.client_context(http2=False), server_side=False, hostname="localhost"
        )
        try:
            yield client, counting
        finally:
            await client.aclose()


def records(tls: TlsStream, *chunks: bytes) -> bytes:
    """Encrypt ``chunks`` as separate records without sending them; return the bytes."""
    for chunk in chunks:
        tls.ssl_object.write(chunk)
    return tls._out.read()  # the records, to send in one write


async def read_all(tls: TlsStream, max_bytes: int) -> bytes:
    data = b""
    with anyio.fail_after(10):
        while True:
            try:
                data += await tls.receive(max_bytes)
            except anyio.EndOfStream:
                return data


@pytest.mark.parametrize("max_bytes", [2, 65536])
@pytest.mark.parametrize("close_notify", [True, False])
async def test_records_in_one_segment_come_back_whole_then_eof(
    certs: CertFiles, max_bytes: int, close_notify: bool
) -> None:
    done = anyio.Event()
    received: list[bytes] = []

    async def serve(tls: TlsStream, io: IO) -> None:
        received.append(await tls.receive())
        await io.send(records(tls, b"aaa", b"bbbb", b"c" * 5000))
        if close_notify:
            await tls.send_eof()
        await io.aclose()
        done.set()

    async with tls_pair(certs, serve) as (client, _):
        await client.send(b"go")
        with anyio.fail_after(10):
            await done.wait()  # every record is on our side before we read
        assert await read_all(client, max_bytes) == b"aaabbbb" + b"c" * 5000
    assert received == [b"go"]


async def test_a_corrupt_record_is_a_broken_stream(certs: CertFiles) -> None:
    async def serve(tls: TlsStream, io: IO) -> None:
        await tls.receive()
        wire = bytearray(records(tls, b"hello"))
        wire[-1] ^= 0xFF  # the record's authentication tag no longer matches
        await io.send(bytes(wire))
        await anyio.sleep(5)

    async with tls_pair(certs, serve) as (client, _):
        await client.send(b"go")
        with anyio.fail_after(10), pytest.raises(anyio.BrokenResourceError, match="TLS"):
            await client.receive()


@pytest.mark.parametrize(
    ("version", "handshake_writes"),
    [(ssl.TLSVersion.TLSv1_3, 1), (ssl.TLSVersion.TLSv1_2, 2)],
    ids=["tls13", "tls12"],
)
async def test_the_clients_finished_travels_with_its_first_request(
    certs: CertFiles, version: ssl.TLSVersion, handshake_writes: int
) -> None:
    # TLS 1.3: ClientHello, then Finished + request together (two writes, not
    # three). A full TLS 1.2 handshake ends with the server's Finished, so
    # the client's last flight has already gone.
    got: list[bytes] = []

    async def serve(tls: TlsStream, io: IO) -> None:
        got.append(await tls.receive())
        await tls.send(b"pong")

    async with tls_pair(certs, serve, version) as (client, counting):
        assert counting.writes == handshake_writes
        await client.send(b"ping")
        assert counting.writes == handshake_writes + 1
        with anyio.fail_after(10):
            assert await client.receive() == b"pong"
    assert got == [b"ping"]


async def test_a_receive_first_sends_the_last_flight(certs: CertFiles) -> None:
    # A server that speaks first must still see the client's Finished.
    async def serve(tls: TlsStream, io: IO) -> None:
        await tls.send(b"hello")
        await anyio.sleep(5)

    async with tls_pair(certs, serve, ssl.TLSVersion.TLSv1_3) as (client, counting):
        with anyio.fail_after(10):
            assert await client.receive() == b"hello"
        assert counting.writes == 2


async def test_a_reader_and_a_writer_at_once_keep_the_records_in_order(certs: CertFiles) -> None:
    # The reader flushes the handshake's last flight before it waits while
    # the writer encrypts and flushes its record: the peer must get both, in
    # order (a swap is a bad record MAC there).
    async def serve(tls: TlsStream, io: IO) -> None:
        await tls.send(await tls.receive())

    async with tls_pair(certs, serve) as (client, counting):
        echoed: list[bytes] = []

        async def read() -> None:
            echoed.append(await client.receive())

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await anyio.lowlevel.checkpoint()  # the reader is flushing
                await client.send(b"ping")
        # The reader gave the writer one pass before sending the Finished,
        # so it went with the request: ClientHello, then Finished + ping.
        assert counting.writes == 2
    assert echoed == [b"ping"]
