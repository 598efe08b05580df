"""Protocol upgrades: getting the raw connection after a 101 or a CONNECT.

What belongs here: :func:`on`, the awaitable :class:`OnUpgrade` it returns,
:class:`Upgraded` (the raw IO that first replays the bytes read ahead) and
:class:`Parts`; plus the connection-side half (``_Pending``,
``_attach_pending``) that the HTTP/1 and HTTP/2 connections use to hand the
IO over. Nothing here reads or writes HTTP.

Strategy: as in hyper, the connection puts a pending slot into the
message's extensions when an upgrade is possible (a server request with
``Upgrade`` on HTTP/1.1 or method CONNECT; a client response to such a
request). :func:`on` takes the slot out of the extensions (so only one
caller gets the connection) and awaiting it waits until the connection
either fulfils it, once the 101 / 2xx response has been written or read and
the HTTP layer let go of the IO, or fails it (the response was not an
upgrade, the connection does not allow upgrades, or it closed first).

Usage (server)::

    async def service(request):
        if request.headers.get("upgrade") == "websocket":
            async def later():
                upgraded = await hyper_core.upgrade.on(request)
                ...
            task_group.start_soon(later)
            return Response(101, headers={"upgrade": "websocket", "connection": "upgrade"})
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Protocol, final

import anyio
import anyio.abc

from hyper_core.error import HyperError, UserError
from hyper_core.http import Extensions, Request, Response
from hyper_core.rt import IO, flush, send_all

__all__ = ["OnUpgrade", "Parts", "Upgraded", "on"]


@final
class Parts:
    """The pieces of an :class:`Upgraded` connection.

    Attributes:
        io: The underlying IO the HTTP connection ran over.
        read_buf: Bytes read from ``io`` and not yet consumed; read these
            before reading ``io`` again.
    """

    __slots__ = ("io", "read_buf")

    def __init__(self, io: IO, read_buf: bytes) -> None:
        self.io = io
        self.read_buf = read_buf

    def __repr__(self) -> str:
        return f"Parts(io={self.io!r}, read_buf=<{len(self.read_buf)} bytes>)"


@final
class Upgraded:
    """The raw connection after an upgrade; it is itself an :class:`~hyper_core.rt.IO`.

    ``receive`` first returns the bytes the HTTP connection had already
    read past the end of the upgrade message (a client may send its first
    bytes of the new protocol right after the request head), then reads
    the underlying IO.
    """

    __slots__ = ("_direct", "_io", "_read_buf")

    def __init__(self, io: IO, read_buf: bytes = b"") -> None:
        self._io = io
        self._read_buf = read_buf
        # anyio's streams raise EndOfStream rather than return b"" (their
        # contract): once the read-ahead is spent, their own receive will do.
        self._direct = isinstance(io, anyio.abc.ByteReceiveStream)

    @property
    def io(self) -> IO:
        """The underlying IO."""
        return self._io

    def receive(self, max_bytes: int = 65536, /) -> Coroutine[Any, Any, bytes]:
        """Return buffered read-ahead bytes first, then bytes from the IO.

        Once the read-ahead is spent, this is the IO's own ``receive`` when
        that already raises at the end (an anyio stream): no coroutine of
        ours waits with it (memory per idle connection, one call fewer).

        Raises:
            anyio.EndOfStream: The peer shut down its write side.
        """
        if self._direct and not self._read_buf:
            return self._io.receive(max_bytes)
        return self._receive(max_bytes)

    async def _receive(self, max_bytes: int) -> bytes:
        buf = self._read_buf
        if buf:
            if len(buf) <= max_bytes:
                self._read_buf = b""
                return buf
            self._read_buf = buf[max_bytes:]
            return buf[:max_bytes]
        data = await self._io.receive(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    def send(self, item: bytes, /) -> Coroutine[Any, Any, None]:
        """Write all of ``item`` to the IO (the IO's own ``send``)."""
        return self._io.send(item)

    async def send_many(self, items: list[bytes] | tuple[bytes, ...], /) -> None:
        """Write several chunks (vectored when the IO supports it)."""
        await send_all(self._io, items)

    async def flush(self) -> None:
        """Flush the IO if it buffers writes (the optional ``flush`` capability)."""
        await flush(self._io)

    async def send_eof(self) -> None:
        """Shut down the write side of the IO."""
        await self._io.send_eof()

    async def aclose(self) -> None:
        """Close the IO."""
        await self._io.aclose()

    async def __aenter__(self) -> Upgraded:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def into_parts(self) -> Parts:
        """Split into the IO and the read-ahead bytes not yet returned.

        The :class:`Upgraded` must not be used afterwards.
        """
        parts = Parts(self._io, self._read_buf)
        self._read_buf = b""
        return parts

    def __repr__(self) -> str:
        return f"Upgraded(io={self._io!r}, read_buf=<{len(self._read_buf)} bytes>)"


class _HasExtensions(Protocol):
    @property
    def extensions(self) -> Extensions: ...


@final
class _Pending:
    """The connection's side of an upgrade: fulfilled or failed exactly once."""

    __slots__ = ("_error", "_event", "_result")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._result: Upgraded | None = None
        self._error: HyperError | None = None

    @property
    def resolved(self) -> bool:
        """Whether :meth:`fulfil` or :meth:`fail` was called."""
        return self._event.is_set()

    def fulfil(self, io: IO, read_buf: bytes) -> None:
        """Hand over the IO; later calls are ignored."""
        if not self._event.is_set():
            self._result = Upgraded(io, read_buf)
            self._event.set()

    def fail(self, error: HyperError) -> None:
        """Resolve with an error (no upgrade happened); later calls are ignored."""
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> Upgraded:
        await self._event.wait()
        if self._result is not None:
            return self._result
        assert self._error is not None
        raise self._error


def _attach_pending(message: _HasExtensions) -> _Pending:
    """Connection side: make a message upgradeable and return the slot to resolve."""
    pending = _Pending()
    message.extensions.insert(pending)
    return pending


@final
class OnUpgrade:
    """Awaitable result of :func:`on`: gives the :class:`Upgraded` connection.

    Awaiting raises:
        UserError: "no upgrade available" (the message cannot upgrade, or
            another caller already took its upgrade), or the connection
            does not allow upgrades.
        CanceledError: the response was not an upgrade, or the connection
            closed before the upgrade completed.

    Cancellation while waiting leaves the upgrade in place; awaiting the
    same :class:`OnUpgrade` again continues to wait.
    """

    __slots__ = ("_pending",)

    def __init__(self, pending: _Pending | None) -> None:
        self._pending = pending

    async def _wait(self) -> Upgraded:
        if self._pending is None:
            raise UserError("no upgrade available")
        return await self._pending.wait()

    def __await__(self) -> Generator[Any, None, Upgraded]:
        return self._wait().__await__()


def on(message: Request[Any] | Response[Any]) -> OnUpgrade:
    """Take the pending upgrade of a request (server) or response (client).

    Call it before the upgrade response is sent (server: keep the request,
    or call this in the service and await the result after returning the
    101 response from another task). Only the first call gets the upgrade.
    """
    return OnUpgrade(message.extensions.remove(_Pending))
