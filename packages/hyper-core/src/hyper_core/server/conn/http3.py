"""HTTP/3 server connections: :class:`Builder` and :class:`Connection`.

What belongs here: the public face of the HTTP/3 server, the same shape as
:mod:`~hyper_core.server.conn.http1` and :mod:`~hyper_core.server.conn.http2`:
options with their defaults and units, and the connection object a caller
awaits. The protocol work is in ``hyper_core.proto.h3``.

Where HTTP/1 and HTTP/2 take a byte stream, HTTP/3 takes a
:class:`hyper_core.rt.QuicConnection`: an established QUIC connection whose
ALPN chose ``h3``. :mod:`hyper_core.quic` makes them from UDP datagrams with
aioquic (``pip install 'hyper-core[http3]'``)::

    from hyper_core import quic
    from hyper_core.server.conn import http3

    async with quic.listen("127.0.0.1", 4433, certfile="cert.pem") as endpoint:
        async for connection in endpoint:  # one task per connection, in practice
            await http3.Builder().serve_connection(connection, hello)

Strategy: each request stream is served by its own task (through
``executor``, by default the connection's task group); QUIC's per-stream
flow control is the backpressure, so no queue sits between the stream and
the request body.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final, final

from hyper_core.error import UserError
from hyper_core.proto.h2._common import H2Protocol
from hyper_core.proto.h3._frames import H3ErrorCode
from hyper_core.proto.h3._server import H3ServerConnection as _H3ServerConnection
from hyper_core.proto.h3._server import ServerConfig as _ServerConfig
from hyper_core.rt import Executor, Timer, default_timer
from hyper_core.rt._quic import QuicConnection
from hyper_core.service import Service

__all__ = [
    "DEFAULT_HEADER_READ_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONCURRENT_STREAMS",
    "DEFAULT_MAX_FIELD_SECTION_SIZE",
    "Builder",
    "Connection",
    "ErrorCode",
    "Protocol",
]

#: The ``:protocol`` of an extended CONNECT request (RFC 9220), found in the
#: request's extensions when ``enable_connect_protocol`` is on (the same type
#: as HTTP/2's).
Protocol = H2Protocol
#: HTTP/3 error codes (RFC 9114 section 8.1), as carried by ``ProtocolError.error_code``.
ErrorCode = H3ErrorCode

#: Requests served at once on one connection (HTTP/2's default here too).
DEFAULT_MAX_CONCURRENT_STREAMS: Final = 200
#: Largest request header section, in bytes as RFC 9114 section 4.2.2
#: counts it (HTTP/2's ``max_header_list_size`` default).
DEFAULT_MAX_FIELD_SECTION_SIZE: Final = 16_384
#: Seconds a connection may carry no request before it is closed with GOAWAY.
DEFAULT_IDLE_TIMEOUT: Final = 60.0
#: Seconds a new request stream may take to deliver its header section.
DEFAULT_HEADER_READ_TIMEOUT: Final = 30.0


@final
class Builder:
    """Options for HTTP/3 server connections; reusable for many connections.

    Args:
        max_concurrent_streams: Requests served at once (200); more are
            rejected with H3_REQUEST_REJECTED, which tells the client it may
            retry. Give the QUIC endpoint the same number as its stream
            limit (``hyper_core.quic.listen(max_streams=...)``) so clients
            wait for credit instead. ``None``: no limit here.
        max_field_section_size: Largest request header (and trailer)
            section, in bytes (16 KiB), advertised as
            SETTINGS_MAX_FIELD_SECTION_SIZE; a larger one is answered 431.
        idle_timeout: Seconds without any request in flight after which the
            connection is closed gracefully (GOAWAY, then H3_NO_ERROR);
            ``None``: only QUIC's own idle timeout applies.
        header_read_timeout: Seconds a request stream may take to deliver
            its header section before it is reset with H3_REQUEST_INCOMPLETE
            (30 s); ``None``: no limit.
        enable_connect_protocol: Advertise extended CONNECT (RFC 9220,
            SETTINGS_ENABLE_CONNECT_PROTOCOL); such requests carry a
            :data:`Protocol` in their extensions (WebSockets over HTTP/3).
        auto_date_header: Add a ``date`` field to responses that have none.
        executor: Where per-request tasks run (default: the connection's
            own task group).
        timer: The clock of the timeouts; default
            :func:`hyper_core.rt.default_timer`.

    Raises:
        ValueError: an option is out of range.
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        *,
        max_concurrent_streams: int | None = DEFAULT_MAX_CONCURRENT_STREAMS,
        max_field_section_size: int = DEFAULT_MAX_FIELD_SECTION_SIZE,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        header_read_timeout: float | None = DEFAULT_HEADER_READ_TIMEOUT,
        enable_connect_protocol: bool = False,
        auto_date_header: bool = True,
        executor: Executor | None = None,
        timer: Timer | None = None,
    ) -> None:
        if max_concurrent_streams is not None and max_concurrent_streams < 1:
            raise ValueError("max_concurrent_streams must be at least 1 (or None)")
        if max_field_section_size < 1:
            raise ValueError("max_field_section_size must be at least 1 byte")
        for name, value in (
            ("idle_timeout", idle_timeout),
            ("header_read_timeout", header_read_timeout),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds or None")
        self._config = _ServerConfig(
            max_concurrent_streams=max_concurrent_streams,
            max_field_section_size=max_field_section_size,
            idle_timeout=idle_timeout,
            header_read_timeout=header_read_timeout,
            enable_connect_protocol=enable_connect_protocol,
            auto_date_header=auto_date_header,
            executor=executor,
            timer=timer if timer is not None else default_timer(),
        )

    def serve_connection(self, quic: QuicConnection, service: Service[Any]) -> Connection:
        """Return a connection serving ``service`` over ``quic``; await it to run it.

        Args:
            quic: An established QUIC connection (ALPN ``h3``).
            service: ``async def (Request[Incoming]) -> Response[Body]``,
                called concurrently, once per request stream.
        """
        return Connection(quic, service, self._config)

    def __repr__(self) -> str:
        c = self._config
        return (
            f"Builder(max_concurrent_streams={c.max_concurrent_streams}, "
            f"max_field_section_size={c.max_field_section_size}, idle_timeout={c.idle_timeout})"
        )


@final
class Connection:
    """One HTTP/3 server connection; ``await conn`` serves it to the end.

    Awaiting (or :meth:`serve`) returns when the client closes the
    connection without error, the idle timeout closes it, or
    :meth:`graceful_shutdown` finishes. It raises a
    :class:`~hyper_core.error.HyperError` subclass when it ended abnormally:

    * :class:`~hyper_core.error.ProtocolError` (``error_code`` set, an
      :data:`ErrorCode`): the client broke HTTP/3 at the connection level
      and the connection was closed with that code, or the client closed it
      with an error code.
    * :class:`~hyper_core.error.TimeoutError`: QUIC's idle timeout passed
      (the client vanished).

    A malformed request only resets its own stream (H3_MESSAGE_ERROR). A
    service that raises before its response started gets the client a
    ``500``; after, the stream is reset with H3_INTERNAL_ERROR (or with the
    ``error_code`` of a :class:`~hyper_core.error.ProtocolError` it raised).
    Cancelling the await closes the connection and cancels every request.
    """

    __slots__ = ("_driver", "_started")

    def __init__(self, quic: QuicConnection, service: Service[Any], config: _ServerConfig) -> None:
        self._driver = _H3ServerConnection(quic, service, config)
        self._started = False

    def graceful_shutdown(self) -> None:
        """Send GOAWAY, finish the requests already accepted, then close.

        Requests the client sent after the GOAWAY's stream id are rejected
        with H3_REQUEST_REJECTED (safe to retry). Safe to call from another
        task, before or while the connection runs, and more than once.
        """
        self._driver.graceful_shutdown()

    def __await__(self) -> Generator[Any, None, None]:
        return self.serve().__await__()

    async def serve(self) -> None:
        """Serve the connection to its end (see the class doc).

        Raises:
            HyperError: the connection ended abnormally.
            UserError: the connection was already run.
        """
        if self._started:
            raise UserError("a connection can be run only once")
        self._started = True
        await self._driver.run()

    def __repr__(self) -> str:
        return "<http3.Connection>"
