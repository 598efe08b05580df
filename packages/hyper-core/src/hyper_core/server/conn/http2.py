"""HTTP/2 server connections: :class:`Builder` and :class:`Connection`.

What belongs here: the public face of the HTTP/2 server (hyper's
``hyper::server::conn::http2``): the options with their defaults and units,
and the connection object a caller awaits. The protocol work is in
:mod:`hyper_core.proto.h2` (h2 glue and the stream dispatcher).

Usage (h2c with prior knowledge; over TLS, after ALPN chose ``h2``)::

    from hyper_core.body import Full
    from hyper_core.http import Response
    from hyper_core.server.conn import http2

    async def hello(request):
        return Response(200, body=Full(b"Hello, World!"))

    async def handle(stream):          # e.g. from anyio's listener.serve()
        try:
            await http2.Builder().serve_connection(stream, hello)
        except HyperError:
            pass                       # a bad client: log it, keep serving others

Strategy: the :class:`Builder` checks options once; each :class:`Connection`
wraps one dispatcher and closes the IO when it ends. Each stream is served
by its own task (through ``executor``, by default a task group owned by the
connection), so a slow request never holds up the others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any, Final, final

import anyio

from hyper_core.body import Incoming
from hyper_core.error import UserError
from hyper_core.http import Request
from hyper_core.proto.h2._common import MAX_WINDOW_SIZE as _MAX_WINDOW_SIZE
from hyper_core.proto.h2._common import H2Protocol
from hyper_core.proto.h2._server import ServerConfig as _ServerConfig
from hyper_core.proto.h2._server import ServerConnection as _ServerConnection
from hyper_core.proto.h2._upgrade import settings_payload as _settings_payload
from hyper_core.proto.h2._upgrade import upgraded_request as _upgraded_request
from hyper_core.rt import IO, Executor, Timer, default_timer
from hyper_core.service import Service

__all__ = ["Builder", "Connection", "Protocol"]

#: The ``:protocol`` of an extended CONNECT request (RFC 8441), found in the
#: request's extensions when ``enable_connect_protocol`` is on.
Protocol = H2Protocol

#: hyper's server defaults (hyper 1.x ``server::conn::http2``), in bytes.
_DEFAULT_STREAM_WINDOW: Final = 1_048_576
_DEFAULT_CONNECTION_WINDOW: Final = 1_048_576
_DEFAULT_MAX_FRAME_SIZE: Final = 16_384
_DEFAULT_MAX_CONCURRENT_STREAMS: Final = 200
_DEFAULT_MAX_HEADER_LIST_SIZE: Final = 16_384
_DEFAULT_MAX_SEND_BUF_SIZE: Final = 409_600
#: Seconds to wait for a keep-alive PING acknowledgement (hyper: 20 s).
_DEFAULT_KEEP_ALIVE_TIMEOUT: Final = 20.0
#: Peer resets of streams still being served before GOAWAY (h2-rust's default).
_DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS: Final = 20
#: Resets sent because of the peer's errors before GOAWAY (hyper, RUSTSEC-2024-0003).
_DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS: Final = 1024
#: Seconds a response may wait without progress for the client's flow-control
#: window or for the socket (nginx's ``send_timeout`` default, 60 s).
_DEFAULT_SEND_STALL_TIMEOUT: Final = 60.0


@final
class Builder:
    """Options for HTTP/2 server connections; reusable for many connections.

    Args:
        initial_stream_window_size: Bytes each stream may receive before the
            service reads them (hyper: 1 MiB). The window is handed back only
            as the service consumes request data, so this is also the most a
            slow reader makes the server buffer per stream.
        initial_connection_window_size: The same for all streams together
            (hyper: 1 MiB).
        adaptive_window: Start both windows at 65,535 bytes and grow them
            to twice what the client sent within a PING round trip (up to
            16 MiB) whenever that filled most of the window at a new best
            bandwidth (bandwidth-delay product estimation, as hyper does);
            the two window options are then ignored. Off by default.
        max_frame_size: Largest frame payload the client may send, in bytes
            (16,384 to 16,777,215; hyper: 16 KiB).
        max_concurrent_streams: Streams the client may have open at once
            (hyper: 200); more are refused with RST_STREAM(REFUSED_STREAM).
            ``None``: no limit.
        max_header_list_size: Largest decoded header list, in bytes, as
            RFC 9113 counts it (hyper: 16 KiB); bounds HPACK bombs and
            CONTINUATION floods. Exceeding it ends the connection with
            GOAWAY(ENHANCE_YOUR_CALM).
        max_send_buf_size: Bytes of response data queued for the socket
            before a response body waits (hyper: 400 KiB).
        keep_alive_interval: Seconds of silence from the client after which
            a PING is sent, also while no stream is open; ``None`` (default)
            sends none.
        keep_alive_timeout: Seconds a PING may go unanswered before the
            connection is closed with :class:`~hyper_core.error.TimeoutError`
            (hyper: 20 s). Also bounds the wait for the PING of a graceful
            shutdown.
        max_pending_accept_reset_streams: Streams reset by the client while
            still being served, at once, before the connection is closed with
            GOAWAY(ENHANCE_YOUR_CALM) (rapid reset, CVE-2023-44487; h2's
            default 20). ``None``: no limit.
        max_local_error_reset_streams: Streams the server had to reset for
            the client's errors (refused, malformed) before GOAWAY(ENHANCE_YOUR_CALM)
            (hyper: 1024). ``None``: no limit.
        enable_connect_protocol: Advertise extended CONNECT (RFC 8441); such
            requests carry a :data:`Protocol` in their extensions.
        header_table_size: HPACK dynamic table size for decoding, in bytes
            (``None``: h2's 4,096).
        auto_date_header: Add a ``date`` field to responses that have none.
        send_stall_timeout: Seconds a response may wait for flow-control
            window (its stream is reset with CANCEL) or for the socket (the
            connection is closed) without progress; ``None`` waits forever.
            Not in hyper: it protects against a client that never opens its
            window.
        executor: Where per-stream tasks run (one task per stream);
            default: a task group owned by the connection, whose worker
            tasks are reused from one stream to the next (cheaper than a
            task each; a service sees the same fresh context either way).
        timer: The clock for keep-alive and stall timeouts; default
            :func:`hyper_core.rt.default_timer`.

    Raises:
        ValueError: an option is out of range.
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        *,
        initial_stream_window_size: int = _DEFAULT_STREAM_WINDOW,
        initial_connection_window_size: int = _DEFAULT_CONNECTION_WINDOW,
        adaptive_window: bool = False,
        max_frame_size: int = _DEFAULT_MAX_FRAME_SIZE,
        max_concurrent_streams: int | None = _DEFAULT_MAX_CONCURRENT_STREAMS,
        max_header_list_size: int = _DEFAULT_MAX_HEADER_LIST_SIZE,
        max_send_buf_size: int = _DEFAULT_MAX_SEND_BUF_SIZE,
        keep_alive_interval: float | None = None,
        keep_alive_timeout: float = _DEFAULT_KEEP_ALIVE_TIMEOUT,
        max_pending_accept_reset_streams: int | None = _DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS,
        max_local_error_reset_streams: int | None = _DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
        enable_connect_protocol: bool = False,
        header_table_size: int | None = None,
        auto_date_header: bool = True,
        send_stall_timeout: float | None = _DEFAULT_SEND_STALL_TIMEOUT,
        executor: Executor | None = None,
        timer: Timer | None = None,
    ) -> None:
        if not 0 <= initial_stream_window_size <= _MAX_WINDOW_SIZE:
            raise ValueError("initial_stream_window_size must be within 0..2**31-1 bytes")
        if not 65_535 <= initial_connection_window_size <= _MAX_WINDOW_SIZE:
            raise ValueError("initial_connection_window_size must be within 65,535..2**31-1 bytes")
        if not 16_384 <= max_frame_size <= 16_777_215:
            raise ValueError("max_frame_size must be within 16,384..16,777,215 bytes")
        if max_concurrent_streams is not None and max_concurrent_streams < 0:
            raise ValueError("max_concurrent_streams cannot be negative")
        if max_header_list_size < 1:
            raise ValueError("max_header_list_size must be at least 1 byte")
        if not 1 <= max_send_buf_size <= 2**32 - 1:
            raise ValueError("max_send_buf_size must be within 1..2**32-1 bytes")
        if keep_alive_interval is not None and not keep_alive_interval > 0:
            raise ValueError("keep_alive_interval must be a positive number of seconds or None")
        if not keep_alive_timeout > 0:
            raise ValueError("keep_alive_timeout must be a positive number of seconds")
        if send_stall_timeout is not None and not send_stall_timeout > 0:
            raise ValueError("send_stall_timeout must be a positive number of seconds or None")
        self._config = _ServerConfig(
            initial_stream_window_size=initial_stream_window_size,
            initial_connection_window_size=initial_connection_window_size,
            adaptive_window=adaptive_window,
            max_frame_size=max_frame_size,
            max_concurrent_streams=max_concurrent_streams,
            max_header_list_size=max_header_list_size,
            max_send_buf_size=max_send_buf_size,
            keep_alive_interval=keep_alive_interval,
            keep_alive_timeout=keep_alive_timeout,
            max_pending_accept_reset_streams=max_pending_accept_reset_streams,
            max_local_error_reset_streams=max_local_error_reset_streams,
            enable_connect_protocol=enable_connect_protocol,
            header_table_size=header_table_size,
            auto_date_header=auto_date_header,
            send_stall_timeout=send_stall_timeout,
            executor=executor,
            timer=timer if timer is not None else default_timer(),
        )

    def serve_connection(self, io: IO, service: Service[Any]) -> Connection:
        """Return a connection serving ``service`` over ``io``; await it to run it.

        Args:
            io: The byte stream, starting with the client's connection preface
                (h2c prior knowledge, or TLS after ALPN chose ``h2``).
            service: ``async def (Request[Incoming]) -> Response[Body]``,
                called concurrently, once per stream.
        """
        return Connection(io, service, self._config)

    def serve_upgraded_connection(
        self, io: IO, service: Service[Any], request: Request[Incoming]
    ) -> Connection:
        """Return a connection that began as an HTTP/1.1 ``Upgrade: h2c`` request.

        RFC 7540 section 3.2 (deprecated by RFC 9113, still sent by curl and
        others for ``http://`` URLs): the server answered ``request`` with
        ``101 Switching Protocols``; now HTTP/2 runs over the same bytes and
        ``request`` is served as stream 1. Deciding which requests to upgrade
        is the caller's (hyper-util's auto server does it, with
        ``h2c_upgrade=True``).

        Args:
            io: The connection after the ``101`` response, starting with the
                client's connection preface (for example the
                :class:`~hyper_core.upgrade.Upgraded` of the request).
            service: As for :meth:`serve_connection`.
            request: The HTTP/1.1 request that asked for the upgrade, with its
                whole body: the client sent it before the upgrade, so read
                it in full before answering ``101`` and give it here (for
                example as ``Incoming.from_channel`` of the bytes). Its
                single ``HTTP2-Settings`` field is applied as the client's
                first SETTINGS. The service sees it as an HTTP/2 request: an
                absolute ``http`` URI whose authority is the ``Host``, and
                no ``Connection``, ``Upgrade``, ``HTTP2-Settings``,
                ``Keep-Alive``, ``Proxy-Connection``, ``Transfer-Encoding``,
                ``TE`` or ``Host`` fields; extensions are kept.

        Raises:
            ValueError: ``HTTP2-Settings`` is missing, repeated or invalid
                (:class:`~hyper_core.error.InvalidUri` for a bad ``Host``).
                Nothing was sent; close ``io``.
        """
        settings = _settings_payload(request)
        stream_one = _upgraded_request(request)
        conn = Connection(io, service, self._config)
        conn._dispatcher.begin_upgraded(settings, stream_one)
        return conn

    def __repr__(self) -> str:
        c = self._config
        return (
            f"Builder(initial_stream_window_size={c.initial_stream_window_size}, "
            f"max_concurrent_streams={c.max_concurrent_streams}, "
            f"max_header_list_size={c.max_header_list_size})"
        )


@final
class Connection:
    """One HTTP/2 server connection; ``await conn`` serves it to the end.

    Awaiting (or :meth:`serve`) returns when the client closes the
    connection, sends GOAWAY(NO_ERROR) and its streams are done, or
    :meth:`graceful_shutdown` finishes. It raises a
    :class:`~hyper_core.error.HyperError` subclass when the connection ended
    abnormally:

    * :class:`~hyper_core.error.ProtocolError` (``error_code`` set): the
      client broke the protocol at the connection level or a limit, and was
      sent GOAWAY with that code; or the client sent GOAWAY with an error
      code. (A malformed request only resets its own stream.)
    * :class:`~hyper_core.error.TimeoutError`: a keep-alive PING went
      unanswered, or the client stopped reading the socket for
      ``send_stall_timeout``.

    A service that raises before its response started gets the client a
    ``500``; after, the stream is reset with INTERNAL_ERROR (or with the
    ``error_code`` of a :class:`~hyper_core.error.ProtocolError` it raised).
    Neither ends the connection. Cancelling the await closes the connection
    and cancels every stream.
    """

    __slots__ = ("_dispatcher", "_io", "_started")

    def __init__(self, io: IO, service: Service[Any], config: _ServerConfig) -> None:
        self._io = io
        self._dispatcher = _ServerConnection(io, service, config)
        self._started = False

    def graceful_shutdown(self) -> None:
        """Stop accepting streams, finish the open ones, then close.

        Sends GOAWAY in two steps (RFC 9113 section 6.8): first a PING and
        GOAWAY with the highest stream id, then, once the PING is
        acknowledged (or after one second at most), GOAWAY with the last
        stream id actually accepted; streams above it are refused with
        REFUSED_STREAM. Safe to call from another
        task, before or while the connection runs, and more than once.
        """
        self._dispatcher.graceful_shutdown()

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()

    async def serve(self) -> None:
        """Serve the connection to its end, then close the IO (see the class doc).

        Raises:
            HyperError: the connection ended abnormally.
            UserError: the connection was already run.
        """
        if self._started:
            raise UserError("a connection can be run only once")
        self._started = True
        try:
            await self._dispatcher.run()
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._io.aclose()

    def __repr__(self) -> str:
        return f"<http2.Connection io={self._io!r}>"
