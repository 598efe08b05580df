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

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from tls_helpers import CertFiles, raw_server

from hyper_core.rt import IO
from hyper_tls import TlsStream

pytestmark = pytest.mark.anyio

Server = Callable[[TlsStream, IO], Awaitable[None]]


@asynccontextmanager
async def tls_pair(certs: CertFiles, serve: Server) -> AsyncIterator[TlsStream]:
    """A TLS server on loopback running ``serve``; yield a client stream connected to it."""
    server_context = certs.server_context(http2=False)

    async def handler(io: IO) -> None:
        await serve(await TlsStream.wrap(io, server_context, server_side=True), io)

    async with raw_server(handler) as port:
        raw = await anyio.connect_tcp("127.0.0.1", port)
        client = await TlsStream.wrap(
            raw, certs.client_context(http2=False), server_side=False, hostname="localhost"
        )
        try:
            yield client
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

    async with tls_pair(certs, serve) as client:
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

    async with tls_pair(certs, serve) as client:
        await client.send(b"go")
        with anyio.fail_after(10), pytest.raises(anyio.BrokenResourceError, match="TLS"):
            await client.receive()
