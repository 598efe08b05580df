"""HTTP/3 client connections: :func:`handshake`, :class:`Builder`, :class:`SendRequest`.

What belongs here: the public face of the HTTP/3 client, the same shape as
:mod:`~hyper_core.client.conn.http2`: options, the :class:`SendRequest`
handle many tasks share, and the :class:`Connection` a task runs. The
protocol work is in ``hyper_core.proto.h3``.

Where HTTP/2 takes a byte stream, HTTP/3 takes a
:class:`hyper_core.rt.QuicConnection` (:func:`hyper_core.quic.connect`
opens one with aioquic; ``pip install 'hyper-core[http3]'``)::

    from hyper_core import quic
    from hyper_core.client.conn import http3

    async def main():
        connection = await quic.connect("example.com", 443)
        sender, driver = await http3.handshake(connection)
        async with anyio.create_task_group() as tg:
            tg.start_soon(driver.serve)
            response = await sender.send_request(Request("GET", "https://example.com/"))
            body = await collect(response.body)
            await sender.aclose()   # GOAWAY; serve() returns once streams are done

Strategy: requests are multiplexed, one QUIC stream each; the server's
stream limit (MAX_STREAMS) is the concurrency limit, and a request waits
for credit beyond it. As in hyper, this is a low-level connection: no pool,
no retries; the URI should be absolute.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final, Self, TypeVar, final

from hyper_core.body import Body, Incoming
from hyper_core.client.conn._errors import TrySendError
from hyper_core.error import ClosedError, HyperError
from hyper_core.http import Request, Response
from hyper_core.proto.h2._client_stream import RequestNotProcessedError
from hyper_core.proto.h2._common import H2Protocol
from hyper_core.proto.h3._client import ClientConfig as _ClientConfig
from hyper_core.proto.h3._client import H3ClientConnection as _H3ClientConnection
from hyper_core.proto.h3._frames import H3ErrorCode
from hyper_core.rt import Executor
from hyper_core.rt._quic import QuicConnection, QuicStream

__all__ = [
    "DEFAULT_MAX_FIELD_SECTION_SIZE",
    "Builder",
    "Connection",
    "ErrorCode",
    "Protocol",
    "RequestNotProcessedError",
    "SendRequest",
    "TrySendError",
    "handshake",
]

#: The ``:protocol`` of an extended CONNECT request (RFC 9220).
Protocol = H2Protocol
#: HTTP/3 error codes (RFC 9114 section 8.1), as carried by ``ProtocolError.error_code``.
ErrorCode = H3ErrorCode
#: Largest response header section accepted, in bytes (hyper's HTTP/2 default).
DEFAULT_MAX_FIELD_SECTION_SIZE: Final = 16_384

B = TypeVar("B", bound=Body)


@final
class Builder:
    """Options for HTTP/3 client connections; reusable for many connections.

    Args:
        max_field_section_size: Largest response header (or trailer)
            section accepted, in bytes (16 KiB); advertised to the server.
        executor: Accepted for parity with HTTP/2; request bodies are sent
            by tasks of the connection's own task group.

    Raises:
        ValueError: an option out of its range.
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        *,
        max_field_section_size: int = DEFAULT_MAX_FIELD_SECTION_SIZE,
        executor: Executor | None = None,
    ) -> None:
        if max_field_section_size < 1:
            raise ValueError("max_field_section_size must be at least 1 byte")
        self._config = _ClientConfig(
            max_field_section_size=max_field_section_size, executor=executor
        )

    async def handshake(self, quic: QuicConnection) -> tuple[SendRequest, Connection]:
        """Start HTTP/3 on an established QUIC connection (ALPN ``h3``).

        Opens the control stream and sends our SETTINGS.

        Returns:
            ``(sender, connection)``. Run ``connection.serve()`` in a task
            for as long as the sender is used.

        Raises:
            HyperError: the QUIC connection is already closed.
        """
        conn = _H3ClientConnection(quic, self._config)
        await conn.start()
        return SendRequest(conn), Connection(conn)


async def handshake(
    quic: QuicConnection,
    *,
    max_field_section_size: int = DEFAULT_MAX_FIELD_SECTION_SIZE,
    executor: Executor | None = None,
) -> tuple[SendRequest, Connection]:
    """``Builder(**options).handshake(quic)``: see :class:`Builder` for the options."""
    builder = Builder(max_field_section_size=max_field_section_size, executor=executor)
    return await builder.handshake(quic)


@final
class SendRequest:
    """Sends requests over one HTTP/3 connection; share it between tasks."""

    __slots__ = ("_conn",)

    def __init__(self, conn: _H3ClientConnection) -> None:
        self._conn = conn

    def is_ready(self) -> bool:
        """Whether the connection accepts requests."""
        return not self._conn.is_closed()

    def is_closed(self) -> bool:
        """Whether no request can ever be sent again (GOAWAY, failure, :meth:`aclose`)."""
        return self._conn.is_closed()

    async def ready(self) -> None:
        """Return at once unless the connection is closed (HTTP/3 multiplexes).

        Raises:
            ClosedError: the connection is closed; ``__cause__`` says why.
        """
        if self._conn.is_closed():
            raise ClosedError("connection closed") from self._conn.close_error

    @property
    def active_streams(self) -> int:
        """Requests in flight."""
        return self._conn.active_streams

    def is_extended_connect_protocol_enabled(self) -> bool:
        """Whether the server allows extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)."""
        return self._conn.connect_protocol_enabled

    async def send_request(self, request: Request[B]) -> Response[Incoming]:
        """Send ``request`` on a new stream; return the response once its head arrives.

        The header section follows the HTTP/2 rules (``:scheme`` and
        ``:authority`` from the URI, connection-specific fields dropped,
        ``content-length`` from an exact size hint). The body streams under
        QUIC flow control, with trailers if it has any. The response body is
        an :class:`~hyper_core.body.Incoming` pulled off the stream; close it
        early with ``aclose()`` (STOP_SENDING). A 2xx answer to CONNECT is a
        tunnel: ``await hyper_core.upgrade.on(response)``.

        Raises:
            CanceledError: the connection is closed; nothing was sent.
            RequestNotProcessedError: the server did not process the
                request (GOAWAY, or H3_REQUEST_REJECTED); retry it.
            ProtocolError: the server reset the stream (``error_code``) or
                broke the protocol.
            IncompleteMessageError: the connection closed before the response.
            TimeoutError: the QUIC connection timed out.
            UserError: the request cannot be sent.

        Cancel safety: cancelling resets this request's stream
        (H3_REQUEST_CANCELLED); the others go on.
        """
        return await self._conn.send(request)

    async def try_send_request(self, request: Request[B]) -> Response[Incoming]:
        """Like :meth:`send_request`, but give the request back when it can be resent.

        Raises:
            TrySendError: ``.error`` is what :meth:`send_request` would
                raise; ``.request`` is the request when nothing of it was
                processed and its body can be sent again, else ``None``.
        """
        started: list[QuicStream] = []
        try:
            return await self._conn.send(request, started)
        except HyperError as exc:
            resendable = not started or isinstance(exc, RequestNotProcessedError)
            raise TrySendError(exc, request if resendable else None) from exc

    async def aclose(self) -> None:
        """No new requests; the connection sends GOAWAY and ends once its streams are done."""
        self._conn.close_sender()

    def close(self) -> None:
        """:meth:`aclose`, for synchronous code."""
        self._conn.close_sender()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "ready"
        return f"<http3.SendRequest {state} streams={self.active_streams}>"


@final
class Connection:
    """The driver of an HTTP/3 client connection: run :meth:`serve` in a task.

    It ends when the sender is closed and no request is left, after a
    GOAWAY once the remaining requests are done, or when the QUIC connection
    closes. Errors go to the requests and bodies in flight, and
    ``SendRequest.ready()`` reports them; ``serve`` itself does not raise them.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: _H3ClientConnection) -> None:
        self._conn = conn

    async def serve(self) -> None:
        """Drive the connection until it ends; the QUIC connection is closed then.

        Raises:
            UserError: the connection is already being driven.
        """
        await self._conn.run()

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()

    def is_extended_connect_protocol_enabled(self) -> bool:
        """Whether the server allows extended CONNECT."""
        return self._conn.connect_protocol_enabled

    def __repr__(self) -> str:
        return f"<http3.Connection running={self._conn.running}>"
