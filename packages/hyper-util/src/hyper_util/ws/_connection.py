"""A WebSocket connection over any hyper IO, for either role, with wsproto.

What belongs here: :class:`WebSocketConnection` (messages in and out over an
established WebSocket: after an HTTP/1.1 ``101`` or an HTTP/2 extended
CONNECT ``200``). The ASGI server uses it as the server role; a WebSocket
client uses it as the client role after its own handshake. Its options and
the :class:`~hyper_util.ws.Closed` record are in ``_options``; the
handshake helpers both roles share (:func:`~hyper_util.ws.accept_token`,
:func:`~hyper_util.ws.negotiate_deflate`) in ``_handshake``.

Strategy:

* wsproto's frame-level ``Connection`` (no HTTP handshake: hyper-core did
  that) turns bytes into events and messages into bytes.
* One reader task reads the IO, feeds wsproto, answers pings, and queues
  whole messages (fragments joined, up to ``max_message_size``) in a
  bounded queue; when the application stops reading, the queue fills, the
  reader stops reading and TCP (or HTTP/2 flow control) holds the peer back:
  memory stays bounded both ways.
* Every write goes through one lock and is awaited: a send waits while the
  peer is slow to read (backpressure). A second lock keeps the frames of one
  message together (:meth:`WebSocketConnection.send_fragments`); control
  frames may still go out between them, as RFC 6455 section 5.4 allows.
  Both are a flag and an event made only when someone waits: an anyio lock
  costs more than the rest of sending a small message.
* A server's whole messages without extensions are framed by
  :func:`hyper_util.ws._frames.server_frame` (wsproto's generic encoder
  costs about 4 us a message), and the client's simple frames (whole,
  small, text or binary) are read by :class:`~hyper_util.ws._frames.ClientFrames`
  (wsproto's decoder costs more than the rest of receiving a small
  message); everything else is wsproto's.
* A write cancelled midway may have left part of a frame on the wire: the
  connection is then closed (1006), never reused with a torn frame.
* Pings carry a payload and wait for the pong that echoes it (a pong also
  answers every ping sent before it). Keep-alive: with ``ping_interval`` set,
  a ping is sent that often and the connection is closed with 1011 if no
  pong arrives within ``ping_timeout``.
* With ``permessage-deflate`` a few compressed bytes can inflate a
  thousandfold (deflate's limit is 1032:1) before the size check sees them,
  so reads are then cut to ``max_message_size / 1032``: one read never
  inflates to much more than the message size limit.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterable, Iterable
from typing import Final

import anyio
import anyio.abc
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from hyper_core.rt import IO
from hyper_util.ws._frames import ClientFrames, Raw, server_frame
from hyper_util.ws._inbox import Inbox
from hyper_util.ws._options import Closed, WebSocketOptions

__all__ = ["WebSocketConnection"]

#: Bytes asked of the IO per read.
READ_SIZE: Final = 65536
#: Deflate's largest expansion (RFC 1951 blocks of 258-byte matches).
_DEFLATE_RATIO: Final = 1032
_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class _PendingPing:
    """A ping sent: ``event`` is set by its pong (``answered``) or by the close."""

    __slots__ = ("answered", "event")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.answered = False


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
        extensions: list[Extension] | None = None,
        options: WebSocketOptions | None = None,
    ) -> None:
        self._io = io
        self._options = options if options is not None else WebSocketOptions()
        self._ws = Connection(
            ConnectionType.CLIENT if client else ConnectionType.SERVER, extensions=extensions
        )
        # One write at a time, with no checkpoint when nobody else writes
        # (anyio's lock checkpoints on every acquire, a large share of a small
        # message's cost); the frames of a message held together likewise.
        self._writing = False
        self._write_done: anyio.Event | None = None
        self._sending_message = False
        self._message_done: anyio.Event | None = None
        # A server without extensions frames its whole messages itself.
        self._own_frames = not client and not extensions
        # A message wsproto delivers in parts, until its last part.
        self._parts: list[str | bytes] = []
        self._size = 0
        self._inbox = Inbox(self._options.max_queue)
        self._closed: Closed | None = None
        # Pings awaiting their pong, oldest first (dicts keep insertion order).
        self._pings: dict[bytes, _PendingPing] = {}
        self._finished = anyio.Event()
        self._torn = False  # a cancelled write may have left half a frame
        self._read_size = READ_SIZE
        if any(isinstance(extension, PerMessageDeflate) for extension in extensions or ()):
            bound = self._options.max_message_size // _DEFLATE_RATIO
            self._read_size = max(1024, min(READ_SIZE, bound))

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
        message = await self._inbox.get()
        if message is None:
            assert self._closed is not None
            return self._closed
        return message

    async def send(self, message: str | bytes) -> None:
        """Send one message, waiting while the peer is slow to read.

        Raises:
            anyio.ClosedResourceError: the connection is closed.

        Cancel safety: cancelled while its frame is being written, the
        connection is closed (1006): part of the frame may be on the wire.
        """
        await self._hold_message()
        try:
            if self._own_frames:
                if self._closed is not None or self._ws.state is not ConnectionState.OPEN:
                    raise anyio.ClosedResourceError
                await self._write(server_frame(message))
            else:
                await self._send_frame(message, True)
        finally:
            self._release_message()

    async def _hold_message(self) -> None:
        # The frames of one message go out together (no anyio lock: see the
        # module docstring).
        while self._sending_message:
            if self._message_done is None:
                self._message_done = anyio.Event()
            await self._message_done.wait()
        self._sending_message = True

    def _release_message(self) -> None:
        self._sending_message = False
        done = self._message_done
        if done is not None:
            self._message_done = None
            done.set()

    async def send_fragments(
        self, fragments: Iterable[str | bytes] | AsyncIterable[str | bytes]
    ) -> None:
        """Send one message in several frames, one per fragment (all ``str`` or all ``bytes``).

        Other messages wait until the last fragment went out; pings and pongs
        may go out between the fragments. Nothing is sent for no fragments.

        Raises:
            anyio.ClosedResourceError: the connection is closed.
            TypeError: the fragments mix ``str`` and ``bytes``; the connection
                is closed with 1011 (the message cannot be finished).

        If ``fragments`` raises, the connection is closed with 1011 and the
        error propagates.
        """
        await self._hold_message()
        try:
            await self._send_fragments(fragments)
        finally:
            self._release_message()

    async def _send_fragments(
        self, fragments: Iterable[str | bytes] | AsyncIterable[str | bytes]
    ) -> None:
        previous: str | bytes | None = None
        started = False  # a frame is out: the message must be finished or failed
        try:
            if isinstance(fragments, AsyncIterable):
                async for fragment in fragments:
                    if previous is not None:
                        await self._send_held(previous, fragment)
                        started = True
                    previous = fragment
            else:
                for fragment in fragments:
                    if previous is not None:
                        await self._send_held(previous, fragment)
                        started = True
                    previous = fragment
        except Exception:
            if started:
                await self._fail(1011, "a fragmented message could not be finished")
            raise
        if previous is not None:
            await self._send_frame(previous, True)

    async def _send_held(self, held: str | bytes, following: str | bytes) -> None:
        """Send a fragment held back until the next one showed it was not the last."""
        if isinstance(following, str) is not isinstance(held, str):
            raise TypeError("the fragments of a message must be all str or all bytes")
        await self._send_frame(held, False)

    async def _send_frame(self, data: str | bytes, finished: bool) -> None:
        if self._closed is not None or self._ws.state is not ConnectionState.OPEN:
            raise anyio.ClosedResourceError
        event = (
            TextMessage(data=data, message_finished=finished)
            if isinstance(data, str)
            else BytesMessage(data=data, message_finished=finished)
        )
        await self._write(self._ws.send(event))

    async def ping(self, payload: bytes | None = None) -> bool:
        """Send a ping and wait for its pong.

        Args:
            payload: Up to 125 bytes the pong echoes (default: 4 random bytes).

        Returns:
            True once the pong came; False if the connection closed first.

        Raises:
            anyio.ClosedResourceError: the connection is closed.
            ValueError: the payload is longer than 125 bytes, or a ping with
                the same payload still waits for its pong.
        """
        pending = await self._send_ping(payload)
        await pending.event.wait()
        return pending.answered

    async def _send_ping(self, payload: bytes | None) -> _PendingPing:
        if payload is None:
            payload = os.urandom(4)
            while payload in self._pings:  # pragma: no cover (a 4-byte collision)
                payload = os.urandom(4)
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        if self._closed is not None or self._ws.state is not ConnectionState.OPEN:
            raise anyio.ClosedResourceError
        pending = _PendingPing()
        self._pings[payload] = pending
        try:
            await self._write(self._ws.send(Ping(payload=payload)))
        except BaseException:
            self._pings.pop(payload, None)
            raise
        return pending

    async def pong(self, payload: bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat; RFC 6455 section 5.5.3).

        Raises:
            anyio.ClosedResourceError: the connection is closed.
        """
        if self._closed is not None or self._ws.state is not ConnectionState.OPEN:
            raise anyio.ClosedResourceError
        await self._write(self._ws.send(Pong(payload=payload)))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (or finish it, if the peer started it)."""
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            with contextlib.suppress(LocalProtocolError):
                data = self._ws.send(CloseConnection(code=code, reason=reason or None))
                # Decided before the write: the peer's answer may come during it.
                self._finish(Closed(code, reason))
                with contextlib.suppress(*_IO_ERRORS):
                    await self._write(data)
        if self._closed is None:
            self._finish(Closed(code, reason))
        # The peer answers our close; the reader then ends. Do not wait forever.
        timeout = self._options.close_timeout
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            await self._finished.wait()
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await self._io.aclose()

    def release(self) -> None:
        """The owner will read no more: drop what is queued (call once done with it)."""
        self._inbox.release()

    async def _write(self, data: bytes) -> None:
        # One write at a time (messages, pongs, pings, closes).
        while self._writing:
            if self._write_done is None:
                self._write_done = anyio.Event()
            await self._write_done.wait()
        if self._torn:
            raise anyio.ClosedResourceError
        self._writing = True
        try:
            await self._io.send(data)
        except anyio.get_cancelled_exc_class():
            # Part of the frame may be on the wire: no frame may follow it.
            self._torn = True
            self._finish(Closed(1006, "a write was cancelled midway"))
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._io.aclose()
            raise
        finally:
            self._writing = False
            done = self._write_done
            if done is not None:
                self._write_done = None
                done.set()

    def _finish(self, closed: Closed) -> None:
        if self._closed is None:
            self._closed = closed
        self._inbox.close()
        pings, self._pings = self._pings, {}
        for pending in pings.values():
            pending.event.set()

    def _on_pong(self, payload: bytes) -> None:
        if payload not in self._pings:
            return  # unsolicited: a heartbeat, nothing waits for it
        # A pong answers its ping and every ping sent before it.
        while self._pings:
            key = next(iter(self._pings))
            pending = self._pings.pop(key)
            pending.answered = True
            pending.event.set()
            if key == payload:
                return

    async def _read_loop(self) -> None:
        frames = ClientFrames(self._options.max_message_size) if self._own_frames else None
        while True:
            try:
                data = await self._io.receive(self._read_size)
            except (anyio.EndOfStream, *_IO_ERRORS):
                data = b""
            if not data:
                self._finish(Closed(1006, ""))
                return
            if frames is None:
                if await self._feed(data):
                    return
                continue
            for item in frames.split(data):
                if type(item) is Raw:
                    if await self._feed(item.data):
                        return
                else:
                    await self._deliver(item)  # type: ignore[arg-type]

    async def _feed(self, data: bytes) -> bool:
        """Give wsproto ``data`` and act on its events; True when reading ends."""
        ws = self._ws
        try:
            ws.receive_data(data)
        except RemoteProtocolError as exc:  # pragma: no cover (wsproto reports by event)
            await self._fail(1002, str(exc))
            return True
        # Lazily: the state right after each event tells a close frame
        # from the peer apart from wsproto's report of a broken frame.
        for event in ws.events():
            if isinstance(event, Message):
                chunk = event.data
                self._size += len(chunk)
                if self._size > self._options.max_message_size:
                    await self._fail(int(CloseReason.MESSAGE_TOO_BIG), "message too big")
                    return True
                parts = self._parts
                parts.append(chunk)
                if event.message_finished:
                    message = parts[0] if len(parts) == 1 else parts[0][:0].join(parts)  # type: ignore[arg-type]
                    self._parts, self._size = [], 0
                    await self._deliver(message)
            elif isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:  # no pong once closing
                    with contextlib.suppress(*_IO_ERRORS):
                        await self._write(ws.send(event.response()))
            elif isinstance(event, Pong):
                self._on_pong(bytes(event.payload))
            elif isinstance(event, CloseConnection):
                await self._on_close(event)
                return True
        return False

    async def _deliver(self, message: str | bytes) -> None:
        # Closing (or the owner left), the inbox drops it: read on to the
        # peer's close frame.
        await self._inbox.put(message)

    async def _on_close(self, event: CloseConnection) -> None:
        ws = self._ws
        if ws.state is ConnectionState.REMOTE_CLOSING:
            # The peer's close frame: answer it (RFC 6455 section 5.5.1).
            self._finish(Closed(event.code, event.reason or "", by_peer=True))
            with contextlib.suppress(*_IO_ERRORS, LocalProtocolError):
                await self._write(ws.send(event.response()))
        elif ws.state is ConnectionState.CLOSED:
            self._finish(
                Closed(event.code, event.reason or "", by_peer=True)
            )  # our close, answered
        else:
            # Still OPEN (or LOCAL_CLOSING): wsproto found a broken frame and
            # says so with the code to fail the connection with (1002, 1007).
            await self._fail(int(event.code), event.reason or "")

    async def _fail(self, code: int, reason: str) -> None:
        self._finish(Closed(code, reason))
        if self._ws.state is ConnectionState.OPEN:
            with contextlib.suppress(*_IO_ERRORS, LocalProtocolError):
                await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))

    async def _keep_alive(self) -> None:
        interval = self._options.ping_interval
        timeout = self._options.ping_timeout
        assert interval is not None
        while True:
            await anyio.sleep(interval)
            if self._ws.state is not ConnectionState.OPEN:
                return
            try:
                pending = await self._send_ping(None)
            except (*_IO_ERRORS, LocalProtocolError):
                return  # closing or gone: the reader ends the connection
            with anyio.move_on_after(math.inf if timeout is None else timeout):
                await pending.event.wait()
            if not pending.answered:
                if self._closed is not None:
                    return
                await self._fail(1011, "keepalive ping timeout")
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._io.aclose()
                return
