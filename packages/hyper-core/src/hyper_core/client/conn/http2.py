"""HTTP/2 client connections: :func:`handshake`, :class:`Builder`, :class:`SendRequest`.

What belongs here: the public face of the HTTP/2 client (hyper's
``hyper::client::conn::http2``): the options with their defaults and units,
the :class:`SendRequest` handle that many tasks share to send requests, and
the :class:`Connection` a task runs to drive the connection. The protocol
work is in :mod:`hyper_core.proto.h2._client` (and the modules it names).

Usage::

    import anyio
    from hyper_core.body import collect
    from hyper_core.client.conn import http2
    from hyper_core.http import Request

    async def main():
        stream = await anyio.connect_tcp("127.0.0.1", 8080)
        sender, connection = await http2.handshake(stream)   # h2c, prior knowledge
        async with anyio.create_task_group() as tg:
            tg.start_soon(connection.serve)
            response = await sender.send_request(Request("GET", "http://127.0.0.1:8080/"))
            body = await collect(response.body)
            await sender.aclose()   # the connection then ends, and serve() returns

Strategy: :class:`SendRequest` and :class:`Connection` are thin handles on
one ``ClientConnection``; the connection owns the IO and closes it when it
ends. Requests are multiplexed: each ``send_request`` gets its own stream,
up to the server's SETTINGS_MAX_CONCURRENT_STREAMS, and waits for a free
slot beyond it. As in hyper this is a low-level connection: no pool, no
retries; the URI should be absolute (``:scheme`` and ``:authority`` come
from it; ``http`` and the ``Host`` header are the fallbacks).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final, Self, TypeVar, final

from hyper_core.body import Body, Incoming
from hyper_core.client.conn._errors import TrySendError
from hyper_core.error import ClosedError, HyperError
from hyper_core.http import Request, Response
from hyper_core.proto.h2 import _client
from hyper_core.proto.h2 import _client_resets as _resets
from hyper_core.proto.h2._client_stream import RequestNotProcessedError
from hyper_core.proto.h2._client_stream import Stream as _Stream
from hyper_core.proto.h2._common import H2Protocol
from hyper_core.rt import IO, Executor, Timer

__all__ = [
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_INITIAL_MAX_SEND_STREAMS",
    "DEFAULT_KEEP_ALIVE_TIMEOUT",
    "DEFAULT_MAX_CONCURRENT_RESET_STREAMS",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADER_LIST_SIZE",
    "DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS",
    "DEFAULT_MAX_SEND_BUF_SIZE",
    "DEFAULT_RESET_STREAM_DURATION",
    "DEFAULT_STREAM_WINDOW",
    "Builder",
    "Connection",
    "Protocol",
    "RequestNotProcessedError",
    "SendRequest",
    "TrySendError",
    "handshake",
]

#: The ``:protocol`` extension of an extended CONNECT request (RFC 8441):
#: ``request.extensions.insert(Protocol("websocket"))``.
Protocol = H2Protocol

#: hyper's client default stream window: 2 MiB (bytes).
DEFAULT_STREAM_WINDOW: Final = 2 * 1024 * 1024
#: hyper's client default connection window: 5 MiB (bytes).
DEFAULT_CONNECTION_WINDOW: Final = 5 * 1024 * 1024
#: Streams we may open before the server's SETTINGS arrive (hyper: 100).
DEFAULT_INITIAL_MAX_SEND_STREAMS: Final = 100
#: Largest frame we accept, in bytes (RFC 9113 default, hyper's too).
DEFAULT_MAX_FRAME_SIZE: Final = 16_384
#: Largest response header list we accept, in bytes (hyper: 16 KiB).
DEFAULT_MAX_HEADER_LIST_SIZE: Final = 16_384
#: Request bytes queued for writing before senders wait: 1 MiB (hyper).
DEFAULT_MAX_SEND_BUF_SIZE: Final = 1024 * 1024
#: Seconds to wait for a keep-alive PING's ACK (hyper: 20 s).
DEFAULT_KEEP_ALIVE_TIMEOUT: Final = 20.0

#: Locally reset streams remembered at once (h2's default).
DEFAULT_MAX_CONCURRENT_RESET_STREAMS: Final = _resets.DEFAULT_MAX_CONCURRENT_RESET_STREAMS
#: Seconds a locally reset stream is remembered (h2's default).
DEFAULT_RESET_STREAM_DURATION: Final = _resets.DEFAULT_RESET_STREAM_DURATION
#: RST_STREAM frames the server may make us send before GOAWAY (hyper: 1024).
DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS: Final = _resets.DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS

_MAX_WINDOW: Final = 2**31 - 1
_MAX_U32: Final = 2**32 - 1

B = TypeVar("B", bound=Body)


@final
class Builder:
    """Options for HTTP/2 client connections; reusable for many connections.

    Args:
        initial_stream_window_size: Receive window of each stream, in bytes
            (hyper: 2 MiB). The server may send this much of a response body
            before the application reads it; reading returns the window.
        initial_connection_window_size: Receive window of the whole
            connection, in bytes (hyper: 5 MiB).
        initial_max_send_streams: How many streams may be opened before the
            server's SETTINGS say its limit (hyper: 100).
        max_frame_size: Largest frame the server may send, in bytes
            (16,384..16,777,215; hyper: 16 KiB).
        max_header_list_size: Largest response header list accepted, in
            bytes of HPACK-decoded size (hyper: 16 KiB).
        header_table_size: Size of our HPACK decoding table, in bytes
            (``None``: h2's 4,096).
        max_send_buf_size: Request body bytes queued for writing before the
            senders wait for the socket, in bytes (hyper: 1 MiB).
        keep_alive_interval: Seconds of silence from the server after which
            a PING is sent (``None``: no keep-alive pings, as in hyper).
        keep_alive_timeout: Seconds to wait for the PING's answer before the
            connection is closed and its requests fail with
            :class:`~hyper_core.error.TimeoutError` (hyper: 20 s).
        keep_alive_while_idle: Ping also while no stream is open (hyper: off).
        adaptive_window: Start from the RFC's 64 KiB windows and grow them
            with the measured bandwidth-delay product (up to 16 MiB),
            overriding the two window sizes (hyper: off).
        max_concurrent_streams: Our SETTINGS_MAX_CONCURRENT_STREAMS: how many
            streams the server may open (``None``, hyper's default: the
            setting is not sent, so no limit). Push is disabled, so a server
            opens none; the value is announced and reported by
            :meth:`SendRequest.current_max_recv_streams`.
        max_concurrent_reset_streams: How many streams we reset (cancelled
            requests, bodies closed early) are remembered at once, so that
            the DATA and HEADERS the server had already sent on them are
            ignored (RFC 9113 section 5.1) instead of answered with
            RST_STREAM(STREAM_CLOSED) (h2's default: 50). A stream reset
            while this many are remembered is not remembered.
        reset_stream_duration: Seconds a reset stream is remembered (h2's
            default: 1 s, about a round trip); afterwards a frame on it is
            answered with RST_STREAM(STREAM_CLOSED), which counts against
            ``max_local_error_reset_streams``.
        max_local_error_reset_streams: How many RST_STREAM frames the server
            may make us send (answers to frames on closed streams); one
            more ends the connection with GOAWAY(ENHANCE_YOUR_CALM) and
            :class:`~hyper_core.error.ProtocolError` (``error_code`` 11)
            for its requests (hyper: 1024; ``None``: no limit, not
            advised).
        executor: Spawns the tasks that stream request bodies (default: the
            connection's own task group).
        timer: The clock for keep-alive (default: the anyio timer).

    Raises:
        ValueError: an option out of its range.
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        *,
        initial_stream_window_size: int = DEFAULT_STREAM_WINDOW,
        initial_connection_window_size: int = DEFAULT_CONNECTION_WINDOW,
        initial_max_send_streams: int = DEFAULT_INITIAL_MAX_SEND_STREAMS,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE,
        header_table_size: int | None = None,
        max_send_buf_size: int = DEFAULT_MAX_SEND_BUF_SIZE,
        keep_alive_interval: float | None = None,
        keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
        keep_alive_while_idle: bool = False,
        adaptive_window: bool = False,
        max_concurrent_streams: int | None = None,
        max_concurrent_reset_streams: int = DEFAULT_MAX_CONCURRENT_RESET_STREAMS,
        reset_stream_duration: float = DEFAULT_RESET_STREAM_DURATION,
        max_local_error_reset_streams: int | None = DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
        executor: Executor | None = None,
        timer: Timer | None = None,
    ) -> None:
        if not 0 < initial_stream_window_size <= _MAX_WINDOW:
            raise ValueError("initial_stream_window_size must be within 1..2**31-1 bytes")
        if not 65_535 <= initial_connection_window_size <= _MAX_WINDOW:
            raise ValueError("initial_connection_window_size must be within 65,535..2**31-1 bytes")
        if initial_max_send_streams < 1:
            raise ValueError("initial_max_send_streams must be at least 1")
        if not 16_384 <= max_frame_size <= 16_777_215:
            raise ValueError("max_frame_size must be within 16,384..16,777,215 bytes")
        if max_header_list_size < 1 or max_send_buf_size < 1:
            raise ValueError("max_header_list_size and max_send_buf_size must be positive")
        if header_table_size is not None and header_table_size < 0:
            raise ValueError("header_table_size cannot be negative")
        if keep_alive_interval is not None and keep_alive_interval <= 0:
            raise ValueError("keep_alive_interval must be positive seconds")
        if keep_alive_timeout <= 0:
            raise ValueError("keep_alive_timeout must be positive seconds")
        if max_concurrent_streams is not None and not 0 <= max_concurrent_streams <= _MAX_U32:
            raise ValueError("max_concurrent_streams must be within 0..2**32-1 (or None)")
        if max_concurrent_reset_streams < 0:
            raise ValueError("max_concurrent_reset_streams cannot be negative")
        if reset_stream_duration < 0:
            raise ValueError("reset_stream_duration cannot be negative seconds")
        if max_local_error_reset_streams is not None and max_local_error_reset_streams < 0:
            raise ValueError("max_local_error_reset_streams cannot be negative (None: no limit)")
        self._config = _client.ClientConfig(
            initial_stream_window_size=initial_stream_window_size,
            initial_connection_window_size=initial_connection_window_size,
            initial_max_send_streams=initial_max_send_streams,
            max_frame_size=max_frame_size,
            max_header_list_size=max_header_list_size,
            header_table_size=header_table_size,
            max_send_buf_size=max_send_buf_size,
            keep_alive_interval=keep_alive_interval,
            keep_alive_timeout=keep_alive_timeout,
            keep_alive_while_idle=keep_alive_while_idle,
            adaptive_window=adaptive_window,
            max_concurrent_reset_streams=max_concurrent_reset_streams,
            executor=executor,
            timer=timer,
            max_concurrent_streams=max_concurrent_streams,
            max_local_error_reset_streams=max_local_error_reset_streams,
            reset_stream_duration=reset_stream_duration,
        )

    async def handshake(self, io: IO) -> tuple[SendRequest, Connection]:
        """Start an HTTP/2 client connection over ``io`` (h2c prior knowledge, or after ALPN).

        Writes the connection preface and our SETTINGS.

        Returns:
            ``(sender, connection)``. Run ``connection.serve()`` in a task for
            as long as the sender is used.

        Raises:
            anyio.BrokenResourceError: writing the preface failed (whatever
                ``io.send`` raises).
        """
        conn = _client.ClientConnection(io, self._config)
        await conn.start()
        return SendRequest(conn), Connection(conn)


async def handshake(
    io: IO,
    *,
    initial_stream_window_size: int = DEFAULT_STREAM_WINDOW,
    initial_connection_window_size: int = DEFAULT_CONNECTION_WINDOW,
    initial_max_send_streams: int = DEFAULT_INITIAL_MAX_SEND_STREAMS,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE,
    header_table_size: int | None = None,
    max_send_buf_size: int = DEFAULT_MAX_SEND_BUF_SIZE,
    keep_alive_interval: float | None = None,
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT,
    keep_alive_while_idle: bool = False,
    adaptive_window: bool = False,
    max_concurrent_streams: int | None = None,
    max_concurrent_reset_streams: int = DEFAULT_MAX_CONCURRENT_RESET_STREAMS,
    reset_stream_duration: float = DEFAULT_RESET_STREAM_DURATION,
    max_local_error_reset_streams: int | None = DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
    executor: Executor | None = None,
    timer: Timer | None = None,
) -> tuple[SendRequest, Connection]:
    """``Builder(**options).handshake(io)``: see :class:`Builder` for the options."""
    builder = Builder(
        initial_stream_window_size=initial_stream_window_size,
        initial_connection_window_size=initial_connection_window_size,
        initial_max_send_streams=initial_max_send_streams,
        max_frame_size=max_frame_size,
        max_header_list_size=max_header_list_size,
        header_table_size=header_table_size,
        max_send_buf_size=max_send_buf_size,
        keep_alive_interval=keep_alive_interval,
        keep_alive_timeout=keep_alive_timeout,
        keep_alive_while_idle=keep_alive_while_idle,
        adaptive_window=adaptive_window,
        max_concurrent_streams=max_concurrent_streams,
        max_concurrent_reset_streams=max_concurrent_reset_streams,
        reset_stream_duration=reset_stream_duration,
        max_local_error_reset_streams=max_local_error_reset_streams,
        executor=executor,
        timer=timer,
    )
    return await builder.handshake(io)


@final
class SendRequest:
    """Sends requests over one HTTP/2 connection; share it between tasks.

    Any number of tasks may call :meth:`send_request` at once: each request
    gets its own stream, up to the server's limit on concurrent streams
    (:attr:`current_max_send_streams`), and waits for a free slot beyond it,
    first come, first served. Use it as an async context manager to close it.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: _client.ClientConnection) -> None:
        self._conn = conn

    def is_ready(self) -> bool:
        """Whether the connection accepts requests (hyper: ready unless closed)."""
        return not self._conn.is_closed()

    def is_closed(self) -> bool:
        """Whether the connection can never send another request.

        True after a GOAWAY from the server, a failure (including a
        keep-alive timeout), or :meth:`aclose`.
        """
        return self._conn.is_closed()

    async def ready(self) -> None:
        """Return at once unless the connection is closed (HTTP/2 multiplexes).

        Raises:
            ClosedError: the connection is closed; ``__cause__`` says why
                (``None`` after a normal close).
        """
        if self._conn.is_closed():
            raise ClosedError("connection closed") from self._conn.close_error

    @property
    def current_max_send_streams(self) -> int:
        """How many streams the server lets us open at once (its latest SETTINGS)."""
        return self._conn.max_send_streams

    @property
    def current_max_recv_streams(self) -> int:
        """Our own limit on streams the server may open (push is disabled)."""
        return self._conn.max_recv_streams

    @property
    def active_streams(self) -> int:
        """Requests in flight: streams open, plus none waiting (those wait for a slot)."""
        return self._conn.active_streams

    def is_extended_connect_protocol_enabled(self) -> bool:
        """Whether the server allows extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)."""
        return self._conn.connect_protocol_enabled

    async def send_request(self, request: Request[B]) -> Response[Incoming]:
        """Send ``request`` on a new stream; return the response once its head arrives.

        The headers become an HTTP/2 header list: ``:scheme`` and
        ``:authority`` from the URI (``http`` and the ``Host`` header as
        fallbacks), connection-specific fields dropped (``Connection`` and
        the fields it names, ``Keep-Alive``, ``Proxy-Connection``,
        ``Transfer-Encoding``, ``Upgrade``; ``TE`` unless ``trailers``),
        ``content-length`` added from an exact size hint as hyper does (not
        for an empty GET, HEAD, DELETE or CONNECT). The body is sent under
        the server's flow control, with trailers if it has any; the request
        body may still be streaming when the response returns.

        The response body is an :class:`~hyper_core.body.Incoming` whose
        receive window is returned as it is read; its trailers are in
        ``response.body.trailers`` once read. Close it (``aclose()``) to stop
        early: the stream is reset with CANCEL. A 2xx answer to CONNECT (or
        extended CONNECT, with a :data:`Protocol` extension) is a tunnel:
        ``await hyper_core.upgrade.on(response)``. An extended CONNECT sent
        before the server's first SETTINGS arrived waits for them (they
        say whether the server allows it), so it may follow the handshake
        at once.

        Raises:
            CanceledError: the connection is closed; nothing was sent.
            RequestNotProcessedError: the server did not process the request
                (GOAWAY with a lower last stream id, REFUSED_STREAM, or the
                connection closed while it waited for a slot); retry it.
            ProtocolError: the server reset the stream (``error_code``) or
                broke the protocol.
            IncompleteMessageError: the connection closed before the response.
            TimeoutError: the keep-alive PING went unanswered.
            UserError: the request cannot be sent (CONNECT with a body or no
                authority, extended CONNECT the server did not enable), or
                its body failed (``__cause__``).

        Cancel safety: cancelling resets this request's stream with CANCEL;
        the other streams and the connection go on.
        """
        return await self._conn.send(request)

    async def try_send_request(self, request: Request[B]) -> Response[Incoming]:
        """Like :meth:`send_request`, but give the request back when it can be resent.

        Raises:
            TrySendError: the send failed; ``.error`` is what
                :meth:`send_request` would raise, and ``.request`` is the
                request when nothing of it reached the server, or when the
                server did not process it and its body was never read
                (``Empty``/``Full``); else ``None``.
        """
        started: list[_Stream] = []
        try:
            return await self._conn.send(request, started)
        except HyperError as exc:
            stream = started[0] if started else None
            resendable = stream is None or (
                isinstance(exc, RequestNotProcessedError) and not stream.body_read
            )
            raise TrySendError(exc, request if resendable else None) from exc

    async def aclose(self) -> None:
        """Close the sender: no new requests; the connection ends once its streams are done.

        Idempotent; does not wait. Then the connection sends GOAWAY and
        ``serve()`` returns.
        """
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
        return f"<http2.SendRequest {state} streams={self.active_streams}>"


@final
class Connection:
    """The driver of an HTTP/2 client connection: run :meth:`serve` in a task.

    It ends (returns ``None``) when the sender is closed and no stream is
    left, after a GOAWAY once the remaining streams are done, or when the
    connection fails (the server closed, broke the protocol, or stopped
    answering keep-alive PINGs). Errors go to the requests and bodies that
    were waiting, and ``SendRequest.ready()`` reports them, so this never
    raises them. It closes the IO when it ends, including when cancelled.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: _client.ClientConnection) -> None:
        self._conn = conn

    async def serve(self) -> None:
        """Drive the connection until it ends (see the class docstring).

        Raises:
            UserError: the connection is already being driven.

        Cancel safety: cancelling closes the IO; waiting requests fail with
        ``CanceledError`` and bodies being read with it too.
        """
        await self._conn.run()

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()

    def is_extended_connect_protocol_enabled(self) -> bool:
        """Whether the server allows extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)."""
        return self._conn.connect_protocol_enabled

    def current_max_send_streams(self) -> int:
        """How many streams the server lets us open at once."""
        return self._conn.max_send_streams

    def current_max_recv_streams(self) -> int:
        """Our own limit on streams the server may open."""
        return self._conn.max_recv_streams

    def __repr__(self) -> str:
        return f"<http2.Connection running={self._conn.running}>"
