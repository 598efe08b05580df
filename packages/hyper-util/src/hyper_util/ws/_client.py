"""The WebSocket client's way in: :func:`connect`.

What belongs here: choosing the protocol and the connection, running the
opening handshake within ``open_timeout``, and closing when the ``async
with`` block ends. What the caller does with the open WebSocket is in
``_websocket``, the handshake's fields and checks in ``_handshake``, the
frames in ``_connection`` (the same :class:`WebSocketConnection` the ASGI
server runs as the other role).

Strategy:

* Which protocol, as browsers decide it: over HTTP/2 (RFC 8441 extended
  CONNECT, one stream of a shared connection) when a pooled ``Client`` is
  given and already holds an HTTP/2 connection to the origin whose server
  enabled ``SETTINGS_ENABLE_CONNECT_PROTOCOL``, or when ``http2=True``.
  Otherwise on a connection of its own (which the WebSocket then owns): the
  HTTP/1.1 ``Upgrade`` handshake, or HTTP/2 when TLS ALPN chose ``h2``
  (possible only with a caller's context or connector that offers it).
* Tasks: the ``async with`` block owns a task group holding the frame reader
  and, on a connection of its own, the HTTP connection's driver. The block's
  own exception never passes through that task group (the pooled Client
  does the same), so it comes out as raised, not wrapped in an
  ``ExceptionGroup``.
* Leaving the block closes the WebSocket: 1000 after a normal exit, 1011
  after an exception, 1001 when cancelled; the closing handshake is bounded
  by ``close_timeout``, and is shielded so a cancelled block still says
  goodbye.
"""

from __future__ import annotations

import contextlib
import math
import ssl
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final, final

import anyio
import anyio.abc

from hyper_core import upgrade
from hyper_core.body import Body
from hyper_core.client.conn import http1, http2
from hyper_core.error import UserError
from hyper_core.http import HeaderInit, Response, Uri
from hyper_core.rt import IO
from hyper_util.client.legacy import Client, ConnectError, InvalidRequestError
from hyper_util.client.legacy.connect import Connector, HttpConnector
from hyper_util.ws._connection import WebSocketConnection
from hyper_util.ws._errors import HandshakeError, HandshakeRefusedError, OpenTimeoutError
from hyper_util.ws._handshake import MAX_REFUSED_BODY_SIZE, Offer, Target, check_response
from hyper_util.ws._options import WebSocketOptions
from hyper_util.ws._websocket import WebSocket

__all__ = [
    "DEFAULT_CLIENT_MAX_MESSAGE_SIZE",
    "DEFAULT_CLIENT_MAX_QUEUE",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_OPEN_TIMEOUT",
    "connect",
]

#: Seconds to connect and finish the opening handshake (as ``websockets``).
DEFAULT_OPEN_TIMEOUT: Final = 10.0
#: Seconds the closing handshake may take before the connection is dropped.
DEFAULT_CLOSE_TIMEOUT: Final = 10.0
#: Largest message the client accepts, in bytes (1 MiB, as ``websockets``).
DEFAULT_CLIENT_MAX_MESSAGE_SIZE: Final = 1024 * 1024
#: Whole messages queued while the application does not read (as
#: ``websockets``): with the size limit, at most 16 MiB held.
DEFAULT_CLIENT_MAX_QUEUE: Final = 16


def connect(
    url: str | Uri,
    *,
    subprotocols: Sequence[str] = (),
    headers: HeaderInit | None = None,
    client: Client | None = None,
    http2: bool | None = None,
    connector: Connector | None = None,
    ssl_context: ssl.SSLContext | None = None,
    per_message_deflate: bool = True,
    max_message_size: int = DEFAULT_CLIENT_MAX_MESSAGE_SIZE,
    max_queue: int = DEFAULT_CLIENT_MAX_QUEUE,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
    close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
) -> contextlib.AbstractAsyncContextManager[WebSocket]:
    """Open a WebSocket to ``url``; use the result with ``async with``.

    Args:
        url: ``ws://host[:port]/path?query`` or ``wss://...`` (``http`` and
            ``https`` mean the same).
        subprotocols: Subprotocols to offer, most wanted first; the one the
            server chose is :attr:`WebSocket.subprotocol`.
        headers: Extra request fields (``Origin``, ``Authorization``,
            cookies, ``User-Agent``...). Not the fields the handshake owns.
        client: A pooled :class:`~hyper_util.client.legacy.Client` whose
            HTTP/2 connections may carry the WebSocket (RFC 8441): used when
            it already holds one to this origin that allows it, or when
            ``http2`` is true.
        http2: ``None`` (default): HTTP/2 when the pooled ``client`` has a
            connection for it (see above), else HTTP/1.1 on a connection of
            its own. ``True``: HTTP/2 only (through ``client`` if given;
            otherwise ``h2c`` prior knowledge for ``ws://``, ALPN ``h2`` for
            ``wss://``). ``False``: HTTP/1.1 only.
        connector: Opens a connection of its own (default: TCP for
            ``ws://``; for ``wss://``, hyper-tls's ``HttpsConnector``).
        ssl_context: For ``wss://`` with the default connector: trust,
            client certificate. Used as it is (its ALPN list is not changed):
            one that offers ``h2`` lets the server pick HTTP/2. Default:
            ``hyper_tls.client_ssl_context`` offering only ``http/1.1`` (or
            ``h2`` with ``http2=True``).
        per_message_deflate: Offer compression (RFC 7692).
        max_message_size: Largest message accepted, in bytes (1 MiB); a
            larger one closes the WebSocket with 1009.
        max_queue: Messages received and not yet read before reading stops
            (16); the server is then held back by TCP or HTTP/2 flow control.
        ping_interval: Seconds between keep-alive pings (``None``: none).
        ping_timeout: Seconds a keep-alive ping may go unanswered before the
            WebSocket is closed with 1011 (``None``: no limit).
        open_timeout: Seconds to connect and finish the handshake
            (``None``: no limit).
        close_timeout: Seconds the closing handshake may take (``None``: no
            limit).

    Returns:
        An async context manager: entering it connects and gives the
        :class:`WebSocket`; leaving it closes it (1000; 1011 after an
        exception; 1001 when cancelled).

    Raises:
        hyper_core.error.InvalidUri: ``url`` is not a WebSocket URL (raised
            by the call itself, as are the next two).
        UserError: invalid subprotocol names, or ``headers`` holding
            handshake fields.
        ValueError: an option out of range.
        HandshakeRefusedError: (on entering, as are the rest) the server
            answered with an HTTP response: its status, headers and the
            start of its body.
        HandshakeError: the answer does not open a WebSocket correctly.
        OpenTimeoutError: ``open_timeout`` passed.
        hyper_util.client.legacy.ConnectError: connecting failed (also when
            ``wss://`` needs hyper-tls, which is not installed), or a TLS
            error from hyper-tls.
        hyper_core.error.HyperError: the HTTP exchange failed.
    """
    for name, value in (("open_timeout", open_timeout), ("close_timeout", close_timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds or None")
    if connector is not None and ssl_context is not None:
        raise UserError("give ssl_context or connector, not both")
    options = WebSocketOptions(
        max_message_size=max_message_size,
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        per_message_deflate=per_message_deflate,
        close_timeout=close_timeout,
    )
    offer = Offer(
        subprotocols=subprotocols, headers=headers, per_message_deflate=per_message_deflate
    )
    return _Connecting(
        Target(url), offer, options, client, http2, connector, ssl_context, open_timeout
    )


@final
class _Connecting:
    """What :func:`connect` returns: enter to open, leave to close."""

    def __init__(
        self,
        target: Target,
        offer: Offer,
        options: WebSocketOptions,
        client: Client | None,
        http2_: bool | None,
        connector: Connector | None,
        ssl_context: ssl.SSLContext | None,
        open_timeout: float | None,
    ) -> None:
        self._target = target
        self._offer = offer
        self._options = options
        self._client = client
        self._http2 = http2_
        self._connector = connector
        self._ssl_context = ssl_context
        self._open_timeout = open_timeout
        self._tg: anyio.abc.TaskGroup | None = None
        self._ws: WebSocket | None = None
        self._entered = False
        # The tasks' own scopes, shielded: a cancelled block must still be
        # able to say goodbye, so they stop only when __aexit__ stops them.
        self._scopes: list[anyio.CancelScope] = []

    async def __aenter__(self) -> WebSocket:
        if self._entered:
            raise UserError("a connect() context can be entered only once")
        self._entered = True
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            timeout = self._open_timeout
            with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                ws = await self._open(tg)
            if scope.cancelled_caught:
                raise OpenTimeoutError(
                    f"opening the WebSocket to {self._target.ws_url} took more than {timeout} s"
                )
        except BaseException:
            self._stop(tg)
            await tg.__aexit__(None, None, None)
            raise
        self._spawn(tg, ws._conn.run, f"hyper_util WebSocket {self._target.ws_url}")
        self._tg, self._ws = tg, ws
        return ws

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tg, ws = self._tg, self._ws
        assert tg is not None
        assert ws is not None
        if exc_type is None:
            code = 1000
        elif issubclass(exc_type, anyio.get_cancelled_exc_class()):
            code = 1001
        else:
            code = 1011
        try:
            with anyio.CancelScope(shield=True):
                await ws._shutdown(code)
        finally:
            self._stop(tg)
            await tg.__aexit__(None, None, None)

    def _spawn(
        self, tg: anyio.abc.TaskGroup, run: Callable[[], Awaitable[None]], name: str
    ) -> None:
        scope = anyio.CancelScope(shield=True)
        self._scopes.append(scope)

        async def shielded() -> None:
            with scope:
                await run()

        tg.start_soon(shielded, name=name)

    def _stop(self, tg: anyio.abc.TaskGroup) -> None:
        for scope in self._scopes:
            scope.cancel()
        # The task group's own scope must be the innermost one when it exits.
        tg.cancel_scope.cancel()

    # -------------------------------------------------------------- opening

    async def _open(self, tg: anyio.abc.TaskGroup) -> WebSocket:
        client, want = self._client, self._http2
        if client is not None and (
            want or (want is None and client.is_extended_connect_protocol_enabled(self._target.uri))
        ):
            return await self._over_pool(client)
        return await self._over_own_connection(tg)

    async def _over_pool(self, client: Client) -> WebSocket:
        target = self._target
        try:
            response = await client.request(self._offer.http2_request(target))
        except InvalidRequestError as exc:
            raise HandshakeError(
                f"HTTP/2 was asked for, but the client speaks HTTP/1.1 to {target.host_header}"
            ) from exc
        except UserError as exc:
            raise _no_rfc8441(target) from exc
        return await self._accept(response, None, http2_=True)

    async def _over_own_connection(self, tg: anyio.abc.TaskGroup) -> WebSocket:
        target = self._target
        io, alpn_h2 = await self._connect()
        try:
            want = self._http2
            h2 = alpn_h2 or (want is True and not target.secure)
            if want is True and not h2:
                raise HandshakeError(
                    f"HTTP/2 was asked for, but {target.host_header} chose HTTP/1.1 by ALPN"
                )
            if want is False and h2:
                raise HandshakeError(
                    f"{target.host_header} chose HTTP/2 by ALPN but http2=False: "
                    "offer only http/1.1 in the ssl_context"
                )
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await io.aclose()
            raise
        if h2:
            sender2, connection2 = await http2.handshake(io)
            self._spawn(tg, connection2.serve, f"hyper_util WebSocket h2 {target.ws_url}")
            try:
                response = await sender2.send_request(self._offer.http2_request(target))
                return await self._accept(response, sender2, http2_=True)
            except UserError as exc:
                await sender2.aclose()
                raise _no_rfc8441(target) from exc
            except BaseException:
                await sender2.aclose()
                raise
        sender1, connection1 = await http1.handshake(io)
        self._spawn(tg, connection1.with_upgrades().serve, f"hyper_util {target.ws_url}")
        try:
            response = await sender1.send_request(self._offer.http1_request(target))
            return await self._accept(response, None, http2_=False)
        finally:
            # After a 101 the connection has handed its IO over and ended;
            # otherwise this ends it (and closes the IO).
            await sender1.aclose()

    async def _connect(self) -> tuple[IO, bool]:
        """Open a connection of our own; return it and whether ALPN chose ``h2``."""
        target = self._target
        connector = self._connector
        if connector is None:
            connector = _default_connector(target, self._ssl_context, self._http2)
        io, connected = await connector.connect(target.uri)
        return io, connected.alpn_h2

    async def _accept(
        self, response: Response[Any], h2: http2.SendRequest | None, *, http2_: bool
    ) -> WebSocket:
        status = response.status
        if not (200 <= status < 300 if http2_ else status == 101):
            body = await _read_start(response.body, MAX_REFUSED_BODY_SIZE)
            raise HandshakeRefusedError(status, response.headers, body, response.version)
        io = await upgrade.on(response)
        try:
            subprotocol, extensions = check_response(self._offer, response.headers, http2_=http2_)
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await io.aclose()
            raise
        conn = WebSocketConnection(io, client=True, extensions=extensions, options=self._options)
        compression = "permessage-deflate" if extensions else None
        return WebSocket(conn, response, subprotocol, compression, self._target, h2)


def _no_rfc8441(target: Target) -> HandshakeError:
    return HandshakeError(
        f"{target.host_header} speaks HTTP/2 but does not allow WebSockets over it (RFC 8441)"
    )


def _default_connector(
    target: Target, ssl_context: ssl.SSLContext | None, http2_: bool | None
) -> Connector:
    if not target.secure:
        return HttpConnector()
    try:
        from hyper_tls import HttpsConnector
    except ImportError as exc:
        raise ConnectError(
            "wss:// needs hyper-tls, which is not installed (pip install hyper-tls)"
        ) from exc
    if ssl_context is None:
        # Our own context: offer h2 only when HTTP/2 was asked for.
        return HttpsConnector(http2=http2_ is True)
    return HttpsConnector(ssl_context=ssl_context, http2=None)


async def _read_start(body: Body, limit: int) -> bytes:
    """Up to ``limit`` bytes of a refused handshake's body; the rest is not read."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            frame = await body.frame()
            if frame is None:
                break
            data = frame.data_ref
            if data:
                chunks.append(data[: limit - size])
                size += len(chunks[-1])
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await body.aclose()
    return b"".join(chunks)
