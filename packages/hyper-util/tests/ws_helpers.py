"""Servers for the WebSocket client tests: the ``websockets`` library's, and raw ones.

What belongs here: :func:`websockets_server` (the ``websockets`` library's
threaded server, a peer no one here wrote, on 127.0.0.1 port 0, whatever
the test's event loop) and :func:`raw_server` (a TCP listener whose handler
the test writes, for answers no real server gives: a wrong accept token, a
server that never answers or stops reading), with :func:`read_head` and
:func:`answer_101` to do a handshake by hand; and :func:`silent_server`, a
plain blocking socket in a thread that accepts the handshake and then never
reads again (an event loop's stream may read ahead on its own: anyio's
asyncio stream was seen to take in hundreds of megabytes while its task
slept, so it cannot stand for a peer that stops reading).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import websockets.sync.server

Handler = Callable[[websockets.sync.server.ServerConnection], None]


@asynccontextmanager
async def websockets_server(handler: Handler, **options: Any) -> AsyncIterator[str]:
    """Serve ``handler`` (one thread per connection); yields ``ws://127.0.0.1:PORT``.

    Leaving the block shuts the server down (open connections get 1001) and
    waits for its threads, bounded.
    """
    server = websockets.sync.server.serve(handler, "127.0.0.1", 0, **options)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.shutdown)
            await anyio.to_thread.run_sync(thread.join, 10)


RawHandler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@asynccontextmanager
async def raw_server(handle: RawHandler) -> AsyncIterator[int]:
    """Accept TCP connections on 127.0.0.1 and run ``handle`` on each; yields the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve_one(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await handle(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve_one)
        try:
            yield port
        finally:
            tg.cancel_scope.cancel()


async def read_head(stream: anyio.abc.SocketStream) -> tuple[bytes, dict[bytes, bytes]]:
    """Read a request head; return its request line and fields (names lower-cased)."""
    data = b""
    with anyio.fail_after(10):
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def rfc_accept(key: bytes) -> bytes:
    """RFC 6455 section 4.2.2's accept value, computed here from the RFC's recipe."""
    digest = hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    return base64.b64encode(digest)


async def answer_101(stream: anyio.abc.SocketStream, *extra: bytes) -> dict[bytes, bytes]:
    """Read the handshake request and accept it; return the request's fields."""
    _, fields = await read_head(stream)
    accept = rfc_accept(fields[b"sec-websocket-key"])
    await stream.send(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: "
        + accept
        + b"\r\n"
        + b"".join(e + b"\r\n" for e in extra)
        + b"\r\n"
    )
    return fields


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accept one WebSocket handshake in a thread, then never read; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def run() -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        with sock:
            sock.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in data.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + rfc_accept(key) + b"\r\n\r\n"
            )
            stop.wait(60)  # never reads again

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        listener.close()
        await anyio.to_thread.run_sync(thread.join, 10)
