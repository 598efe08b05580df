"""HTTP/3 beside TCP in :func:`hyper_util.server.serve`: the UDP side and Alt-Svc.

What belongs here: :class:`Http3Side`, which listens for QUIC on the same
port number as the TCP listener and serves each connection with
:mod:`hyper_core.server.conn.http3` under the server's own
:class:`~hyper_util.server.graceful.GracefulShutdown`, and
:class:`AltSvc`, the service wrapper that advertises it on TCP responses
(RFC 7838) so browsers and pooled clients find it.

Strategy: the service is the same object on both sides, so anything behind
``serve()`` (the ASGI adapter included) gets HTTP/3 requests exactly as it
gets HTTP/1.1 and HTTP/2 ones, with ``request.version`` telling them apart.
Shutdown is the server's: stop accepting, signal every connection (an
HTTP/3 connection sends GOAWAY and finishes its streams), wait, then close
the UDP endpoint.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any, Final

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from hyper_core.error import HyperError
from hyper_core.http import Request, Response
from hyper_core.server.conn import http3
from hyper_core.service import Service
from hyper_util.server._access_log import AccessLogged, format_address
from hyper_util.server.graceful import GracefulShutdown

__all__ = ["ALT_SVC_MAX_AGE", "AltSvc", "Http3Side", "alt_svc_value"]

#: Seconds clients may remember the HTTP/3 alternative (a day, as Google's
#: and Cloudflare's servers advertise).
ALT_SVC_MAX_AGE: Final = 86_400

_log = logging.getLogger("hyper_util.server")


def alt_svc_value(port: int, max_age: int = ALT_SVC_MAX_AGE) -> bytes:
    """The ``Alt-Svc`` field value advertising HTTP/3 on ``port`` of this host."""
    return f'h3=":{port}"; ma={max_age}'.encode("ascii")


class AltSvc:
    """Wraps a service: responses get ``Alt-Svc`` unless they carry one already."""

    __slots__ = ("_service", "_value")

    def __init__(self, service: Service[Any], value: bytes) -> None:
        self._service = service
        self._value = value

    async def __call__(self, request: Request[Any]) -> Response[Any]:
        response = await self._service(request)
        headers = response.headers
        if headers.get_raw(b"alt-svc") is None:
            headers.append(b"alt-svc", self._value)
        return response


class Http3Side:
    """The UDP listener of ``serve(http3=True)`` and its accept loop."""

    def __init__(
        self,
        service: Service[Any],
        *,
        host: str,
        port: int,
        certfile: str | os.PathLike[str],
        keyfile: str | os.PathLike[str] | None,
        builder: http3.Builder,
        access_log: bool,
        max_connections: int,
        sock: socket.socket | None = None,
    ) -> None:
        self._service = service
        self._sock = sock
        self._host = host
        self._port = port
        self._certfile = certfile
        self._keyfile = keyfile
        self._builder = builder
        self._graceful = GracefulShutdown()
        self._access_log = access_log
        self._max_connections = max_connections
        self._accepting = True
        # Per connection, as serve()'s make_service: called with the QUIC
        # connection (``extra()`` gives its addresses) for the service to use.
        self.make_service: Callable[[Any], Service[Any]] | None = None
        self._alt_svc = alt_svc_value(port)

    def advertise(
        self, service: Service[Any], make_service: Callable[[Any], Service[Any]] | None
    ) -> tuple[Service[Any], Callable[[Any], Service[Any]] | None]:
        """The TCP side's service (and per-connection factory), adding ``Alt-Svc``."""
        value = self._alt_svc
        if make_service is None:
            return AltSvc(service, value), None
        factory = make_service
        return AltSvc(service, value), lambda io: AltSvc(factory(io), value)

    def attach(self, graceful: GracefulShutdown) -> None:
        """Watch HTTP/3 connections with the server's own graceful shutdown."""
        self._graceful = graceful

    def stop_accepting(self) -> None:
        """New QUIC connections are refused from now on (existing ones continue)."""
        self._accepting = False

    async def run(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; report the bound UDP port.

        Raises:
            OSError: the UDP port could not be bound.
            ImportError: aioquic is not installed (the ``http3`` extra).
        """
        from hyper_core import quic

        async with (
            quic.listen(
                self._host,
                self._port,
                certfile=self._certfile,
                keyfile=self._keyfile,
                max_connections=self._max_connections,
                sock=self._sock,
            ) as listener,
            anyio.create_task_group() as tg,
        ):
            port = listener.local_address[1]
            _log.info("HTTP/3 on UDP port %d", port)
            task_status.started(port)
            async for connection in listener:
                if not self._accepting:
                    connection.close(0x100, "shutting down")  # H3_NO_ERROR
                    continue
                tg.start_soon(self._handle, connection)

    async def _handle(self, connection: Any) -> None:
        remote = connection.remote_address
        service = self._service if self.make_service is None else self.make_service(connection)
        if self._access_log:
            service = AccessLogged(service, format_address(remote))
        conn = self._builder.serve_connection(connection, service)
        try:
            await self._graceful.watch(conn)
        except HyperError as exc:
            # A client's fault (reset, timeout, protocol error): not the server's.
            _log.debug("HTTP/3 connection from %s ended: %s", format_address(remote), exc)
        except Exception:
            _log.exception("HTTP/3 connection from %s failed", format_address(remote))
