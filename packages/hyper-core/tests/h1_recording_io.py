"""An IO wrapper that records how a connection writes: the HTTP/1 option suites share it.

What belongs here: :class:`RecordingIO` (plain ``send`` only) and
:class:`RecordingVectoredIO` (with ``send_many``), and :func:`io_pair`, a
connected pair over a loopback TCP socket or a memory pipe. The option tests
check the bytes on the wire *and* the calls that put them there (one write
or several, joined or vectored).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from hyper_core.rt import IO
from hyper_core.testing import memory_pipe

__all__ = ["RecordingIO", "RecordingVectoredIO", "io_pair"]


class RecordingIO:
    """Forwards to ``inner`` and records each write: ``("send", data)``."""

    def __init__(self, inner: IO) -> None:
        self.inner = inner
        self.calls: list[tuple[str, bytes | list[bytes]]] = []

    @property
    def sends(self) -> list[bytes]:
        """What each write call carried, joined."""
        return [data if isinstance(data, bytes) else b"".join(data) for _, data in self.calls]

    @property
    def written(self) -> bytes:
        """Every byte written, in order."""
        return b"".join(self.sends)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        self.calls.append(("send", bytes(item)))
        await self.inner.send(item)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


class RecordingVectoredIO(RecordingIO):
    """A :class:`RecordingIO` with a vectored write: ``("send_many", [pieces])``."""

    async def send_many(self, items: Sequence[bytes]) -> None:
        self.calls.append(("send_many", [bytes(item) for item in items]))
        await self.inner.send(b"".join(items))


@asynccontextmanager
async def io_pair(transport: str) -> AsyncIterator[tuple[IO, anyio.abc.ByteStream]]:
    """Two connected ends (ours, the peer's): ``"tcp"`` (loopback) or ``"memory"``."""
    if transport == "memory":
        ours, peer = memory_pipe()
        async with ours, peer:
            yield ours, peer
        return
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        inner = listener.listeners[0]
        assert isinstance(inner, anyio.abc.SocketListener)
        client = await anyio.connect_tcp("127.0.0.1", port)
        server = await inner.accept()
        async with server, client:
            yield server, client
