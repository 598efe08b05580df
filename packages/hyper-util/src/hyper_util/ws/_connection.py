"""A WebSocket connection over any hyper IO, for either role, with wsproto.

What belongs here: :class:`WebSocketConnection` (messages in and out over an
established WebSocket: after an HTTP/1.1 ``101`` or an HTTP/2 extended
CONNECT ``200``), :class:`WebSocketOptions`, :class:`Closed` and the
handshake helpers both roles share (:func:`accept_token`,
:func:`negotiate_deflate`). The ASGI server uses it as the server role; a
WebSocket client uses it as the client role after its own handshake.

Strategy:

* wsproto's frame-level ``Connection`` (no HTTP handshake: hyper-core did
  that) turns bytes into events and messages into bytes.
* One reader task reads the IO, feeds wsproto, answers pings, and queues
  whole messages (fragments joined, up to ``max_message_size``) in a
  bounded queue; when the application stops reading, the queue fills, the
  reader stops reading and TCP (or HTTP/2 flow control) holds the peer back:
  memory stays bounded both ways.
* Every write goes through one lock and is awaited: a send waits while the
  peer is slow to read (backpressure).
* Keep-alive: with ``ping_interval`` set, a ping is sent that often and the
  connection is closed with 1011 if no pong arrives within ``ping_timeout``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
from collections import deque
from typing import Final

import anyio
import anyio.abc
import wsproto.extensions
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from hyper_core.rt import IO

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "Closed",
    "WebSocketConnection",
    "WebSocketOptions",
    "accept_token",
    "negotiate_deflate",
]

#: Largest message accepted, in bytes (16 MiB: uvicorn's ``--ws-max-size``
#: default; larger messages close the connection with 1009).
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
#: Whole messages queued for an application that does not read (uvicorn's
#: ``ws_max_queue`` default of 32 messages; memory is at most this many times
#: the message size limit).
DEFAULT_MAX_QUEUE: Final = 32
#: Bytes asked of the IO per read.
READ_SIZE: Final = 65536
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def accept_token(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.strip() + _GUID).digest())


def negotiate_deflate(offers: str | None) -> tuple[PerMessageDeflate | None, str | None]:
    """Server side: accept a ``permessage-deflate`` offer, if any.

    Returns:
        The extension to run and the ``Sec-WebSocket-Extensions`` value to
        answer with, or ``(None, None)``.
    """
    if not offers:
        return None, None
    for offer in offers.split(","):
        if offer.strip().split(";")[0].strip() == "permessage-deflate":
            extension = PerMessageDeflate()
            accepted = extension.accept(offer.strip())
            if accepted is None:
                continue
            value = "permessage-deflate" if accepted is True else f"permessage-deflate; {accepted}"
            # ``accept`` may answer with only parameters; normalise to a full value.
            if isinstance(accepted, str) and accepted.startswith("permessage-deflate"):
                value = accepted
            return extension, value
    return None, None


class WebSocketOptions:
    """Limits and keep-alive of WebSocket connections.

    Args:
        max_message_size: Largest message accepted, in bytes (default 16 MiB);
            a larger one closes the connection with 1009 (message too big).
        max_queue: Whole received messages queued before reading stops
            (default 32).
        ping_interval: Seconds between keep-alive pings; ``None`` (default
            20 s as in uvicorn) disables them.
        ping_timeout: Seconds a ping may go unanswered before the
            connection is closed with 1011 (default 20 s).
        per_message_deflate: Accept ``permessage-deflate`` (RFC 7692) when
            the client offers it (default on).

    Raises:
        ValueError: an option is out of range.
    """

    __slots__ = (
        "max_message_size",
        "max_queue",
        "per_message_deflate",
        "ping_interval",
        "ping_timeout",
    )

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        per_message_deflate: bool = True,
    ) -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be at least 1 byte")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if ping_interval is not None and not ping_interval > 0:
            raise ValueError("ping_interval must be a positive number of seconds or None")
        if ping_timeout is not None and not ping_timeout > 0:
            raise ValueError("ping_timeout must be a positive number of seconds or None")
        self.max_message_size = max_message_size
        self.max_queue = max_queue
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.per_message_deflate = per_message_deflate


class Closed:
    """The connection closed: the peer's (or our) close code and reason."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Closed(code={self.code}, reason={self.reason!r})"


class WebSocketConnection:
    """An established WebSocket over ``io``; run :meth:`run` in a task while it is used.

    Args:
        io: The byte stream after the handshake (``hyper_core.upgrade.Upgraded``
            or an HTTP/2 stream).
        client: True for the client role (it masks its frames).
        extensions: Negotiated extensions (e.g. from :func:`negotiate_deflate`).
        options: Limits and keep-alive.
    """

    def __init__(
        self,
        io: IO,
        *,
        client: bool = False,
        extensions: list[wsproto.extensions.Extension] | None = None,
        options: WebSocketOptions | None = None,
    ) -> None:
        self._io = io
        self._options = options if options is not None else WebSocketOptions()
        self._ws = Connection(
            ConnectionType.CLIENT if client else ConnectionType.SERVER, extensions=extensions
        )
        # A plain deque and two events instead of anyio's memory stream and
        # lock: those checkpoint on every call, a large share of a small
        # message's cost. Waits happen only when the queue is empty or full,
        # or a write is in progress.
        self._queue: deque[str | bytes] = deque()
        self._queue_wake: anyio.Event | None = None  # the app waits for a message
        self._room: anyio.Event | None = None  # the reader waits for room
        self._writing = False
        self._write_done: anyio.Event | None = None
        self._released = False
        self._closed: Closed | None = None
        self._pong = anyio.Event()
        self._finished = anyio.Event()

    @property
    def closed(self) -> Closed | None:
        """How the connection closed, once it has."""
        return self._closed

    async def run(self) -> None:
        """Read until the connection closes; answers pings and keeps the connection alive."""
        try:
            async with anyio.create_task_group() as tg:
                if self._options.ping_interval is not None:
                    tg.start_soon(self._keep_alive)
                await self._read_loop()
                tg.cancel_scope.cancel()
        finally:
            self._finish(Closed(1006, ""))
            self._finished.set()
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._io.aclose()

    async def receive(self) -> str | bytes | Closed:
        """The next whole message (``str`` text, ``bytes`` binary), or :class:`Closed`."""
        queue = self._queue
        while not queue:
            if self._closed is not None:
                return self._closed
            self._queue_wake = wake = anyio.Event()
            await wake.wait()
        message = queue.popleft()
        room = self._room
        if room is not None:
            self._room = None
            room.set()
        return message

    async def send(self, message: str | bytes) -> None:
        """Send one message, waiting while the peer is slow to read.

        Raises:
            anyio.ClosedResourceError: the connection is closed.
        """
        if self._closed is not None or self._ws.state is not ConnectionState.OPEN:
            raise anyio.ClosedResourceError
        event = (
            TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
        )
        await self._write(self._ws.send(event))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (or finish it, if the peer started it)."""
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            with contextlib.suppress(LocalProtocolError):
                data = self._ws.send(CloseConnection(code=code, reason=reason or None))
                with contextlib.suppress(*_IO_ERRORS):
                    await self._write(data)
        if self._closed is None:
            self._finish(Closed(code, reason))
        # The peer answers our close; the reader then ends. Do not wait forever.
        with anyio.move_on_after(5):
            await self._finished.wait()
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await self._io.aclose()

    def release(self) -> None:
        """The owner will read no more: drop what is queued (call once done with it)."""
        self._released = True
        self._queue.clear()
        self._wake_all()

    async def _write(self, data: bytes) -> None:
        # One write at a time (app sends, pongs, pings, closes); no
        # checkpoint when nobody else is writing.
        while self._writing:
            if self._write_done is None:
                self._write_done = anyio.Event()
            await self._write_done.wait()
        self._writing = True
        try:
            await self._io.send(data)
        finally:
            self._writing = False
            done = self._write_done
            if done is not None:
                self._write_done = None
                done.set()

    def _wake_all(self) -> None:
        for name in ("_queue_wake", "_room"):
            event = getattr(self, name)
            if event is not None:
                setattr(self, name, None)
                event.set()

    def _finish(self, closed: Closed) -> None:
        if self._closed is None:
            self._closed = closed
        self._wake_all()

    async def _enqueue(self, message: str | bytes) -> bool:
        """Queue a received message, waiting for room; False once released or closed."""
        queue = self._queue
        while len(queue) >= self._options.max_queue:
            if self._released or self._closed is not None:
                return False
            self._room = room = anyio.Event()
            await room.wait()
        if self._released:
            return False
        queue.append(message)
        wake = self._queue_wake
        if wake is not None:
            self._queue_wake = None
            wake.set()
        return True

    async def _read_loop(self) -> None:
        ws = self._ws
        limit = self._options.max_message_size
        parts: list[str | bytes] = []
        size = 0
        while True:
            try:
                data = await self._io.receive(READ_SIZE)
            except (anyio.EndOfStream, *_IO_ERRORS):
                data = b""
            if not data:
                self._finish(Closed(1006, ""))
                return
            try:
                ws.receive_data(data)
                events = list(ws.events())
            except RemoteProtocolError as exc:
                hint = exc.event_hint
                code = hint.code if isinstance(hint, CloseConnection) else 1002
                await self._fail(int(code), str(exc))
                return
            for event in events:
                if isinstance(event, Message):
                    chunk = event.data
                    size += len(chunk)
                    if size > limit:
                        await self._fail(int(CloseReason.MESSAGE_TOO_BIG), "message too big")
                        return
                    parts.append(chunk)
                    if event.message_finished:
                        message = parts[0] if len(parts) == 1 else parts[0][:0].join(parts)  # type: ignore[arg-type]
                        parts, size = [], 0
                        if not await self._enqueue(message):
                            return
                elif isinstance(event, Ping):
                    with contextlib.suppress(*_IO_ERRORS):
                        await self._write(ws.send(event.response()))
                elif isinstance(event, Pong):
                    self._pong.set()
                elif isinstance(event, CloseConnection):
                    closed = Closed(event.code, event.reason or "")
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        with contextlib.suppress(*_IO_ERRORS, LocalProtocolError):
                            await self._write(ws.send(event.response()))
                    self._finish(closed)
                    return

    async def _fail(self, code: int, reason: str) -> None:
        if self._ws.state is ConnectionState.OPEN:
            with contextlib.suppress(*_IO_ERRORS, LocalProtocolError):
                await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
        self._finish(Closed(code, reason))

    async def _keep_alive(self) -> None:
        interval = self._options.ping_interval
        timeout = self._options.ping_timeout
        assert interval is not None
        while True:
            await anyio.sleep(interval)
            if self._ws.state is not ConnectionState.OPEN:
                return
            self._pong = anyio.Event()
            with contextlib.suppress(*_IO_ERRORS):
                await self._write(self._ws.send(Ping(payload=b"hyper-ws")))
            with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                await self._pong.wait()
            if scope.cancelled_caught:
                await self._fail(1011, "keepalive ping timeout")
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._io.aclose()
                return
