"""The :class:`WebSocket` that :func:`hyper_util.ws.connect` opens.

What belongs here: what the caller does with an open WebSocket (messages,
fragments, pings, close, iteration) and how the frame connection's states
become the client's exceptions. Opening and the ``async with`` block are in
``_client``; the frames in ``_connection``.

Strategy: a thin face on :class:`~hyper_util.ws.WebSocketConnection`: it adds
no buffering and no task of its own. Its errors say how the WebSocket closed
(``ConnectionClosed.of`` picks the kind from the close code and who sent
it); a connection lost without a closing handshake is 1006.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Final, final

import anyio

from hyper_core.client.conn import http2
from hyper_core.error import UserError
from hyper_core.http import Response, Version
from hyper_util.ws._connection import WebSocketConnection
from hyper_util.ws._errors import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from hyper_util.ws._handshake import Target
from hyper_util.ws._options import Closed

__all__ = ["WebSocket"]

_IO_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
# Close codes an endpoint may send (RFC 6455 section 7.4; 1004-1006 and 1015
# are reserved, 1016-2999 unassigned).
_SENDABLE: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)})


@final
class WebSocket:
    """An open WebSocket, from :func:`~hyper_util.ws.connect`, used inside its ``async with`` block.

    Receiving and sending may run in different tasks at once. Sends are
    whole messages (or a fragmented one, :meth:`send_fragments`) and wait
    while the server is slow to read.

    Attributes:
        subprotocol: The subprotocol the server chose, or ``None``.
        response: The server's handshake response (``101`` on HTTP/1.1,
            ``200`` on HTTP/2): its status and header fields.
        compression: ``"permessage-deflate"`` when messages are compressed,
            else ``None``.
    """

    __slots__ = ("_conn", "_h2", "_target", "compression", "response", "subprotocol")

    def __init__(
        self,
        conn: WebSocketConnection,
        response: Response[Any],
        subprotocol: str | None,
        compression: str | None,
        target: Target,
        h2: http2.SendRequest | None,
    ) -> None:
        self._conn = conn
        self.response = response
        self.subprotocol = subprotocol
        self.compression = compression
        self._target = target
        self._h2 = h2

    @property
    def url(self) -> str:
        """The URL the WebSocket was opened to."""
        return self._target.ws_url

    @property
    def http_version(self) -> Version:
        """``HTTP/1.1`` (Upgrade) or ``HTTP/2`` (extended CONNECT)."""
        return self.response.version

    @property
    def close_code(self) -> int | None:
        """The close code once the WebSocket is closed, else ``None``."""
        closed = self._conn.closed
        return None if closed is None else closed.code

    @property
    def close_reason(self) -> str | None:
        """The close reason once the WebSocket is closed, else ``None``."""
        closed = self._conn.closed
        return None if closed is None else closed.reason

    def _error(self, cause: BaseException | None = None) -> ConnectionClosed:
        closed = self._conn.closed
        if closed is None:
            return ConnectionClosedError(1006, str(cause) if cause is not None else "")
        return ConnectionClosed.of(closed.code, closed.reason, by_peer=closed.by_peer)

    async def receive(self) -> str | bytes:
        """The next message: ``str`` (text) or ``bytes`` (binary), fragments joined.

        Messages that arrived before the close are still returned first.

        Raises:
            ConnectionClosedOK: the WebSocket closed normally.
            ConnectionClosedError: it closed with an error code or was lost
                (``WebSocketProtocolError`` when the server broke the
                protocol or sent a message over ``max_message_size``).

        Cancel safety: no message is lost if cancelled while waiting.
        """
        message = await self._conn.receive()
        if isinstance(message, Closed):
            raise self._error()
        return message

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        """The next message; the iteration ends when the WebSocket closes normally.

        Raises:
            ConnectionClosedError: it closed with an error code or was lost.
        """
        try:
            return await self.receive()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        Waits while the server is slow to read: memory does not grow.

        Raises:
            ConnectionClosed: the WebSocket is closed (the kind says how).

        Cancel safety: cancelled while its frame is being written, the
        connection is dropped (close code 1006): part of a frame may be out.
        """
        try:
            await self._conn.send(message)
        except _IO_ERRORS as exc:
            raise self._error(exc) from None

    async def send_fragments(
        self, fragments: Iterable[str | bytes] | AsyncIterable[str | bytes]
    ) -> None:
        """Send one message in several frames, one per fragment (all ``str`` or all ``bytes``).

        For a message produced piece by piece: each fragment goes out as it
        comes. Other messages wait for the last fragment; pings may go
        between them.

        Raises:
            ConnectionClosed: the WebSocket is closed.
            TypeError: the fragments mix ``str`` and ``bytes`` (the WebSocket
                is then closed with 1011, as when ``fragments`` raises).
        """
        try:
            await self._conn.send_fragments(fragments)
        except _IO_ERRORS as exc:
            raise self._error(exc) from None

    async def ping(self, payload: bytes | None = None) -> float:
        """Send a ping and wait for its pong.

        Args:
            payload: Up to 125 bytes (default: 4 random bytes).

        Returns:
            The round trip, in seconds.

        Raises:
            ConnectionClosed: the WebSocket closed before the pong came.
            ValueError: the payload is over 125 bytes or already waits for
                its pong.
        """
        started = anyio.current_time()
        try:
            answered = await self._conn.ping(payload)
        except _IO_ERRORS as exc:
            raise self._error(exc) from None
        if not answered:
            raise self._error()
        return anyio.current_time() - started

    async def pong(self, payload: bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat).

        Raises:
            ConnectionClosed: the WebSocket is closed.
        """
        try:
            await self._conn.pong(payload)
        except _IO_ERRORS as exc:
            raise self._error(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket: send a close frame, wait (``close_timeout``) for the answer.

        Idempotent; after it, :meth:`receive` raises and iteration ends.

        Raises:
            UserError: ``code`` is not one an endpoint may send (1000-1003,
                1007-1014, 3000-4999), or ``reason`` is over 123 bytes of
                UTF-8.
        """
        if code not in _SENDABLE:
            raise UserError(f"close code {code} cannot be sent (RFC 6455 section 7.4)")
        if len(reason.encode("utf-8")) > 123:
            raise UserError("a close reason is at most 123 bytes of UTF-8")
        await self._conn.close(code, reason)

    async def _shutdown(self, code: int) -> None:
        """Leaving the block: close, then let a connection of our own end."""
        try:
            await self._conn.close(code)
        finally:
            self._conn.release()
            if self._h2 is not None:
                await self._h2.aclose()

    def __repr__(self) -> str:
        closed = self._conn.closed
        state = "open" if closed is None else f"closed {closed.code}"
        return f"<WebSocket {self.url} {self.http_version} {state}>"
