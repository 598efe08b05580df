"""Serve ASGI 3 applications (Starlette, FastAPI, Django, Litestar, Quart...) on hyper.

What belongs here: the public re-exports of ``hyper_util.asgi``:

* :func:`serve`: run an app on the auto HTTP/1.1 + HTTP/2 server, with
  lifespan, WebSockets (HTTP/1.1 Upgrade and HTTP/2 extended CONNECT), TLS
  and graceful shutdown; usable from ``anyio.run``.
* :class:`ASGIService`: an app as a hyper-core ``Service`` for people who
  compose their own server, with :class:`AppRunner` (where app calls run)
  and :class:`ConnectionInfo`.
* :class:`ProxyHeadersMiddleware` (``--proxy-headers``): the client's
  address, scheme and host from a trusted reverse proxy's headers.
* :class:`Lifespan`, :class:`WebSocketOptions`, :class:`ClientDisconnected`
  and the ASGI type aliases.

The command line is ``python -m hyper_util run module:app``
(``hyper_util.cli``); the gunicorn worker is
:class:`hyper_util.asgi.gunicorn.HyperWorker`. The guide is ``docs/guides/asgi.md``.
"""

from __future__ import annotations

from hyper_util.asgi._lifespan import Lifespan, LifespanFailure, LifespanMode
from hyper_util.asgi._proxy_headers import (
    DEFAULT_FORWARDED_ALLOW_IPS,
    ProxyHeadersMiddleware,
    TrustedHosts,
)
from hyper_util.asgi._runner import AppRunner
from hyper_util.asgi._scope import ConnectionInfo
from hyper_util.asgi._serve import DEFAULT_TIMEOUT_KEEP_ALIVE, HttpMode, build_builder, serve
from hyper_util.asgi._service import ASGIService
from hyper_util.asgi._types import (
    ASGI_VERSION,
    SPEC_VERSION,
    ASGIApp,
    ClientDisconnected,
    InvalidMessage,
    Message,
    Receive,
    Scope,
    Send,
)
from hyper_util.ws import WebSocketOptions

__all__ = [
    "ASGI_VERSION",
    "DEFAULT_FORWARDED_ALLOW_IPS",
    "DEFAULT_TIMEOUT_KEEP_ALIVE",
    "SPEC_VERSION",
    "ASGIApp",
    "ASGIService",
    "AppRunner",
    "ClientDisconnected",
    "ConnectionInfo",
    "HttpMode",
    "InvalidMessage",
    "Lifespan",
    "LifespanFailure",
    "LifespanMode",
    "Message",
    "ProxyHeadersMiddleware",
    "Receive",
    "Scope",
    "Send",
    "TrustedHosts",
    "WebSocketOptions",
    "build_builder",
    "serve",
]
