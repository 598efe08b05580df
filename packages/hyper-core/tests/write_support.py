"""Helpers for the write-observability tests: real sockets with small buffers.

What belongs here: a loopback server of ours (HTTP/1 or HTTP/2) whose
accepted sockets have a small send buffer, a raw non-blocking client
socket with a small receive buffer (a peer that can stop reading), and an
event recorder for ``ext.on_write``. With both buffers small, a peer that
does not read stops the server's writes after a few hundred KiB at most
(the kernel buffers plus the event loop's transport buffer), so the tests
can tell "written" from "queued" without large transfers.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import h2.settings
from anyio.abc import SocketAttribute, SocketStream

from hyper_core.body import Incoming
from hyper_core.ext import WriteEvent, WriteStage
from hyper_core.http import Request, Response
from hyper_core.server.conn import http1, http2

Service = Callable[[Request[Incoming]], Awaitable[Response[Any]]]
SMALL_BUFFER = 8192


class Recorder:
    """Collects the ``WriteEvent`` objects of one message; wakes waiters on each."""

    def __init__(self) -> None:
        self.events: list[WriteEvent] = []
        self._changed = anyio.Event()

    def __call__(self, event: WriteEvent) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def stages(self) -> list[WriteStage]:
        return [e.stage for e in self.events]

    @property
    def body_bytes(self) -> int:
        return self.events[-1].body_bytes if self.events else 0

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1].stage in (
            WriteStage.FINISHED,
            WriteStage.FAILED,
        )

    async def wait_for(self, check: Callable[[], bool], timeout: float = 5) -> None:
        with anyio.fail_after(timeout):
            while not check():
                await self._changed.wait()

    async def settles(self, quiet: float = 0.3) -> int:
        """Wait until no event came for ``quiet`` seconds; return the body bytes then."""
        while True:
            with anyio.move_on_after(quiet) as scope:
                await self._changed.wait()
            if scope.cancel_called:
                return self.body_bytes


@asynccontextmanager
async def serve(service: Service, protocol: str, **options: Any) -> AsyncIterator[int]:
    """Serve on 127.0.0.1 with small send buffers; yield the port."""
    builder: Any = http2.Builder(**options) if protocol == "h2" else http1.Builder(**options)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def handle(stream: SocketStream) -> None:
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        # The tests judge the write reports, not how the connection ended.
        async with stream:
            with contextlib.suppress(Exception):
                await builder.serve_connection(stream, service)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle, tg)
        yield listener.extra(SocketAttribute.local_port)
        tg.cancel_scope.cancel()


class RawClient:
    """A non-blocking client socket with a small receive buffer."""

    def __init__(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        sock.connect(("127.0.0.1", port))  # loopback: completes in the backlog
        sock.setblocking(False)
        self.sock = sock
        self.received = bytearray()

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            await anyio.wait_writable(self.sock)
            sent = self.sock.send(view)
            view = view[sent:]

    async def receive(self) -> bytes:
        await anyio.wait_readable(self.sock)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        self.received += data
        return data

    async def read_until(self, check: Callable[[bytes], bool], timeout: float = 5) -> None:
        with anyio.fail_after(timeout):
            while not check(bytes(self.received)):
                if not await self.receive():
                    raise EOFError("the server closed")

    def reset(self) -> None:
        """Close with a reset (SO_LINGER 0): the server's next write fails at once."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


class H2Client(RawClient):
    """python-h2 over a :class:`RawClient` socket; keeps every event it saw."""

    def __init__(self, port: int, *, window: int = 65535) -> None:
        super().__init__(port)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.h2.initiate_connection()
        self.events: list[h2.events.Event] = []

    async def flush(self) -> None:
        await self.send(self.h2.data_to_send())

    async def request(self) -> int:
        sid = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
        self.h2.send_headers(sid, headers, end_stream=True)
        await self.flush()
        return sid

    async def pump_until(self, check: Callable[[], bool], timeout: float = 5) -> None:
        """Read and answer frames (no automatic window updates) until ``check()``."""
        with anyio.fail_after(timeout):
            while not check():
                data = await self.receive()
                if not data:
                    raise EOFError("the server closed")
                self.events.extend(self.h2.receive_data(data))
                await self.flush()

    def data_received(self, sid: int) -> int:
        return sum(
            len(e.data or b"")
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
        )

    def ended(self, sid: int) -> bool:
        return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in self.events)

    def head_frame_bytes(self, sid: int) -> int:
        """Bytes of the HEADERS and CONTINUATION frames the server sent on ``sid``."""
        data = bytes(self.received)[0:]
        offset = total = 0
        while offset + 9 <= len(data):
            length = int.from_bytes(data[offset : offset + 3], "big")
            kind = data[offset + 3]
            stream = int.from_bytes(data[offset + 5 : offset + 9], "big") & 0x7FFFFFFF
            if stream == sid and kind in (0x1, 0x9):
                total += 9 + length
            offset += 9 + length
        return total
