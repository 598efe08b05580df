"""The ASGI ``websocket`` scope over HTTP/1.1 Upgrade and HTTP/2 and HTTP/3 extended CONNECT.

What belongs here: telling WebSocket requests apart, checking the handshake,
and :class:`WebSocketSession`: the app's ``receive``/``send`` for one
WebSocket, from ``websocket.connect`` to ``websocket.disconnect``.

Strategy: the handshake is HTTP and stays with hyper-core: the service
returns ``101`` (HTTP/1.1, RFC 6455) or ``200`` (HTTP/2, RFC 8441; HTTP/3,
RFC 9220) once the app accepted, and takes the raw stream through :func:`hyper_core.upgrade.on`.
Frames are then :class:`hyper_util.ws.WebSocketConnection`'s job (wsproto),
the same on both protocols. Before acceptance the app may refuse
(``websocket.close``: 403) or answer with any HTTP response
(``websocket.http.response`` extension).
"""

from __future__ import annotations

import binascii
import logging
from typing import Any, Final, NoReturn

import anyio

from hyper_core import ext, upgrade
from hyper_core.body import Full, Incoming
from hyper_core.error import CanceledError, HyperError, InvalidHeader
from hyper_core.http import Headers, Request, Response, Version
from hyper_core.server.conn.http2 import Protocol as H2Protocol
from hyper_util.ws import (
    Closed,
    WebSocketConnection,
    WebSocketOptions,
    accept_token,
    negotiate_deflate,
)

from ._runner import AppRunner
from ._scope import ConnectionInfo, websocket_scope
from ._types import ASGIApp, ClientDisconnected, Message, Scope

__all__ = ["WebSocketOptions", "WebSocketSession", "is_websocket_request", "serve_websocket"]

_log = logging.getLogger("hyper_util.asgi")

_EXTENSIONS: Final[dict[str, dict[str, Any]]] = {"websocket.http.response": {}}
_CONNECTING, _ACCEPTED, _CLOSED = "connecting", "accepted", "closed"
# An enum member read from its class is a metaclass lookup (60 ns, twice per
# request in is_websocket_request): module constants are a global read.
_HTTP_2: Final = Version.HTTP_2
_HTTP_3: Final = Version.HTTP_3


def _extended_connect(request: Request[Any]) -> bool:
    """HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220) open WebSockets with extended CONNECT."""
    version = request.version
    return version is _HTTP_2 or version is _HTTP_3


def is_websocket_request(request: Request[Any]) -> bool:
    """An HTTP/1.1 ``Upgrade: websocket``, or a CONNECT with ``:protocol websocket`` (HTTP/2, 3)."""
    version = request.version  # _extended_connect, inlined: once per request
    if version is _HTTP_2 or version is _HTTP_3:
        if request.method != "CONNECT":
            return False
        protocol = request.extensions.get(H2Protocol)
        return protocol is not None and protocol.as_str().lower() == "websocket"
    value = request.headers.get_raw(b"upgrade")
    return value is not None and value.strip().lower() == b"websocket"


def _bad_handshake(request: Request[Any]) -> Response[Full] | None:
    headers = request.headers
    if headers.get_raw(b"sec-websocket-version") != b"13":
        return Response(
            400 if _extended_connect(request) else 426,
            headers={"sec-websocket-version": "13", "content-length": "0"},
            body=Full(b""),
        )
    if _extended_connect(request):
        return None
    key = headers.get_raw(b"sec-websocket-key")
    connection = (headers.get_raw(b"connection") or b"").lower()
    valid_key = False
    if key is not None:
        try:
            valid_key = len(binascii.a2b_base64(key.strip())) == 16
        except binascii.Error:
            valid_key = False
    if request.method != "GET" or not valid_key or b"upgrade" not in connection:
        return Response(400, headers={"content-length": "0"}, body=Full(b""))
    return None


async def serve_websocket(
    app: ASGIApp,
    runner: AppRunner,
    request: Request[Incoming],
    info: ConnectionInfo,
    options: WebSocketOptions,
) -> Response[Any]:
    """The service side of a WebSocket request: run the app until it accepts or refuses."""
    refused = _bad_handshake(request)
    if refused is not None:
        return refused
    session = WebSocketSession(request, options, runner)
    ext.on_client_gone(request, session.client_gone)
    extensions: dict[str, Any] = dict(_EXTENSIONS)
    if info.tls is not None:
        extensions["tls"] = info.tls
    scope = websocket_scope(request, info, session.subprotocols, extensions)
    runner.spawn(session.run_app, app, scope)
    try:
        await session.decided.wait()
    except BaseException:
        session.client_gone()
        raise
    if session.response is None:
        raise CanceledError("the client went away during the WebSocket handshake")
    return session.response


class WebSocketSession:
    """One WebSocket as the ASGI app sees it (see the module docstring)."""

    def __init__(
        self, request: Request[Incoming], options: WebSocketOptions, runner: AppRunner
    ) -> None:
        self.request = request
        self._options = options
        self._runner = runner
        self._on_upgrade = upgrade.on(request)
        self.subprotocols = [
            part.strip()
            for value in request.headers.get_all("sec-websocket-protocol")
            for part in value.split(",")
            if part.strip()
        ]
        self.state = _CONNECTING
        self.decided = anyio.Event()
        self.response: Response[Any] | None = None
        self._connect_sent = False
        self._gone = False
        self._conn: WebSocketConnection | None = None
        self._denial: tuple[int, Headers] | None = None
        self._denial_body: list[bytes] = []
        self._close_code = 1006

    def client_gone(self) -> None:
        """The client left before the handshake finished."""
        self._gone = True
        self.decided.set()

    def _respond(self, response: Response[Any]) -> None:
        if self.response is None:
            self.response = response
        self.decided.set()

    async def run_app(self, app: ASGIApp, scope: Scope) -> None:
        """The app's task: run it, then settle what it left behind."""
        try:
            await app(scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception as exc:
            if not isinstance(exc, _InvalidMessage):
                _log.error("exception in the ASGI application", exc_info=exc)
            await self._abort()
        except BaseException:
            await self._abort()
            raise
        else:
            if self.state == _CONNECTING and self.response is None:
                _log.error(
                    "the ASGI application returned without accepting or closing the WebSocket"
                )
                self._respond(Response(500, headers={"content-length": "0"}, body=Full(b"")))
            elif self._conn is not None and self._conn.closed is None:
                with anyio.CancelScope(shield=True):
                    await self._conn.close(1000)
        finally:
            self.state = _CLOSED
            self.decided.set()
            if self._conn is not None:
                self._conn.release()

    async def _abort(self) -> None:
        if self.state == _CONNECTING and self.response is None:
            self._respond(Response(500, headers={"content-length": "0"}, body=Full(b"")))
        elif self._conn is not None:
            with anyio.CancelScope(shield=True):
                await self._conn.close(1011, "server error")

    # -- receive ------------------------------------------------------------------

    async def receive(self) -> Message:
        """``websocket.connect`` first, then messages, then ``websocket.disconnect``."""
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        conn = self._conn
        if conn is None:
            if self.state == _CONNECTING and not self._gone:
                # The app reads before accepting: nothing comes until it decides.
                await self.decided.wait()
                conn = self._conn
            if conn is None:
                return {"type": "websocket.disconnect", "code": self._close_code, "reason": ""}
        message = await conn.receive()
        if isinstance(message, Closed):
            self.state = _CLOSED
            return {"type": "websocket.disconnect", "code": message.code, "reason": message.reason}
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    # -- send ---------------------------------------------------------------------

    def _invalid(self, why: str) -> NoReturn:
        _log.error("ASGI application sent an invalid WebSocket message: %s", why)
        raise _InvalidMessage(why)

    async def send(self, message: Message) -> None:
        """Accept, refuse, send messages or close, as the state allows."""
        if self._gone:
            raise ClientDisconnected("the client disconnected")
        kind = message.get("type") if isinstance(message, dict) else None
        if self.state == _CONNECTING:
            if kind == "websocket.accept":
                await self._accept(message)
            elif kind == "websocket.close":
                self.state = _CLOSED
                self._close_code = 1000
                self._respond(Response(403, headers={"content-length": "0"}, body=Full(b"")))
            elif kind == "websocket.http.response.start":
                self._deny_start(message)
            elif kind == "websocket.http.response.body" and self._denial is not None:
                self._deny_body(message)
            else:
                self._invalid(f"{kind!r} before the WebSocket was accepted")
            return
        conn = self._conn
        if self.state == _CLOSED or conn is None:
            if kind == "websocket.close":
                return  # closing twice is harmless
            raise ClientDisconnected("the WebSocket is closed")
        if kind == "websocket.send":
            data = message.get("bytes")
            text = message.get("text")
            if (data is None) == (text is None):
                self._invalid("websocket.send needs exactly one of 'bytes' and 'text'")
            payload: str | bytes = text if text is not None else bytes(data or b"")
            try:
                await conn.send(payload)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                raise ClientDisconnected("the WebSocket is closed") from None
        elif kind == "websocket.close":
            self.state = _CLOSED
            await conn.close(int(message.get("code", 1000)), message.get("reason") or "")
        else:
            self._invalid(f"unexpected message {kind!r} on an open WebSocket")

    async def _accept(self, message: Message) -> None:
        request = self.request
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            self._invalid("websocket.accept 'subprotocol' must be a string")
        extension = None
        fields: list[tuple[str | bytes, str | bytes]] = []
        h2 = _extended_connect(request)
        if not h2:
            key = request.headers.get_raw(b"sec-websocket-key") or b""
            fields += [
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("sec-websocket-accept", accept_token(key)),
            ]
        if self._options.per_message_deflate:
            extension, answer = negotiate_deflate(request.headers.get("sec-websocket-extensions"))
            if answer is not None:
                fields.append(("sec-websocket-extensions", answer))
        if subprotocol is not None:
            fields.append(("sec-websocket-protocol", subprotocol))
        for item in message.get("headers", ()):
            name, value = item
            if bytes(name).lower().startswith(b"sec-websocket-"):
                continue  # the server owns the handshake fields
            fields.append((bytes(name), bytes(value)))
        try:
            headers = Headers(fields)
        except InvalidHeader as exc:
            self._invalid(f"websocket.accept: {exc}")
        self.state = _ACCEPTED
        self._respond(Response(200 if h2 else 101, headers=headers))
        try:
            io = await self._on_upgrade
        except HyperError as exc:
            self.state = _CLOSED
            raise ClientDisconnected("the connection closed during the handshake") from exc
        conn = WebSocketConnection(
            io, extensions=[extension] if extension is not None else None, options=self._options
        )
        self._conn = conn
        self._runner.spawn(conn.run)

    def _deny_start(self, message: Message) -> None:
        status = message.get("status")
        if type(status) is not int or not 100 <= status <= 599 or status in (101, 200):
            self._invalid(f"invalid status {status!r} in websocket.http.response.start")
        try:
            headers = Headers([(bytes(n), bytes(v)) for n, v in message.get("headers", ())])
        except (InvalidHeader, TypeError, ValueError) as exc:
            self._invalid(f"websocket.http.response.start: {exc}")
        self._denial = (status, headers)

    def _deny_body(self, message: Message) -> None:
        self._denial_body.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            assert self._denial is not None
            status, headers = self._denial
            self.state = _CLOSED
            self._close_code = 1000
            self._respond(Response(status, headers=headers, body=Full(b"".join(self._denial_body))))


class _InvalidMessage(RuntimeError):
    """The application sent a WebSocket message the spec or the state does not allow."""
