"""``response.extensions["network_stream"]``: httpcore's stream interface over our IO.

What belongs here: :class:`AsyncNetworkStream` and its synchronous twin
:class:`SyncNetworkStream`, the objects the transports put in every
response's extensions.

Strategy: httpcore gives every response the connection's stream, and code
built on httpx uses it two ways: to read facts about the connection
(``get_extra_info("server_addr")``, ``"client_addr"``, ``"ssl_object"``,
``"socket"``, ``"is_readable"``), and, after ``101 Switching Protocols`` or
a 2xx answer to CONNECT, to speak the new protocol over it (httpx-ws and
similar read and write it). Both are offered: the facts on every response,
from the pooled client's ``Connected`` info and the stream the connector
opened; reading and writing only after an upgrade, on the connection the
pooled client handed over (a pooled connection still carries other
exchanges, so its bytes are not the caller's to read). The interface and
its errors are httpcore's (``httpcore.ReadTimeout``, ``ReadError``,
``WriteTimeout``, ``WriteError``), since that is what the code using it
catches. The synchronous twin runs each call on the transport's event loop.
"""

from __future__ import annotations

import select
import socket
import ssl
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import httpcore
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute

from hyper_core.rt import IO
from hyper_util.client.httpx._connect import StreamInfo
from hyper_util.client.legacy.connect import Connected

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

__all__ = ["AsyncNetworkStream", "SyncNetworkStream"]

_NOT_UPGRADED: Final = (
    "this response's connection is pooled: network_stream can read and write "
    "only after an upgrade (101 Switching Protocols, or a 2xx answer to CONNECT)"
)
_READ_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def _extra(io: IO | None, attribute: Any) -> Any:
    extra = getattr(io, "extra", None)
    return None if extra is None else extra(attribute, None)


@final
class AsyncNetworkStream(httpcore.AsyncNetworkStream):
    """The connection behind a response, as httpcore's ``AsyncNetworkStream``.

    Args:
        connected: What the connector learned about the connection.
        upgraded: The connection handed over after an upgrade, or ``None``
            for a pooled connection (facts only).
    """

    def __init__(self, connected: Connected | None, upgraded: IO | None = None) -> None:
        self._connected = connected
        self._io = upgraded
        info = None if connected is None else connected.extra.get(StreamInfo)
        self._opened: IO | None = None if info is None else info.io

    def _upgraded(self) -> IO:
        if self._io is None:
            raise RuntimeError(_NOT_UPGRADED)
        return self._io

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read up to ``max_bytes``; ``b""`` once the peer finished sending.

        Raises:
            httpcore.ReadTimeout: Nothing arrived within ``timeout`` seconds.
            httpcore.ReadError: The connection failed.
            RuntimeError: The response was not an upgrade.
        """
        io = self._upgraded()
        try:
            with anyio.fail_after(timeout):
                return await io.receive(max_bytes)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "read timed out") from exc
        except _READ_ERRORS as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write all of ``buffer``.

        Raises:
            httpcore.WriteTimeout: The peer did not take it within ``timeout`` seconds.
            httpcore.WriteError: The connection failed.
            RuntimeError: The response was not an upgrade.
        """
        io = self._upgraded()
        if not buffer:
            return
        try:
            with anyio.fail_after(timeout):
                await io.send(buffer)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "write timed out") from exc
        except _READ_ERRORS as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Close an upgraded connection (a pooled one stays with the pool)."""
        if self._io is not None:
            with anyio.CancelScope(shield=True):
                await self._io.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        """Run TLS over an upgraded connection (a CONNECT tunnel); needs hyper-tls.

        Raises:
            httpcore.ConnectTimeout: The handshake took longer than ``timeout``.
            httpcore.ConnectError: The handshake failed.
        """
        from hyper_tls import TlsStream

        io = self._upgraded()
        try:
            with anyio.fail_after(timeout):
                tls = await TlsStream.wrap(
                    io, ssl_context, server_side=False, hostname=server_hostname
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (ssl.SSLError, anyio.EndOfStream, *_READ_ERRORS) as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        stream = AsyncNetworkStream(self._connected, tls)
        stream._opened = tls
        return stream

    def get_extra_info(self, info: str) -> Any:
        """``"server_addr"``, ``"client_addr"``, ``"ssl_object"``, ``"socket"``, ``"is_readable"``.

        Anything else is ``None``, as in httpcore.
        """
        connected = self._connected
        if info == "server_addr":
            return None if connected is None else connected.remote_addr
        if info == "client_addr":
            return None if connected is None else connected.local_addr
        if info == "ssl_object":
            return _extra(self._opened, TLSAttribute.ssl_object)
        if info == "socket":
            return _extra(self._opened, SocketAttribute.raw_socket)
        if info == "is_readable":
            sock = _extra(self._opened, SocketAttribute.raw_socket)
            return _is_readable(sock)
        return None


def _is_readable(sock: socket.socket | None) -> bool:
    """Whether a read would not block: data, EOF or an error waits (httpcore's rule)."""
    if sock is None or sock.fileno() < 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


@final
class SyncNetworkStream(httpcore.NetworkStream):
    """:class:`AsyncNetworkStream` for the synchronous transport: each call runs on its loop."""

    def __init__(self, stream: AsyncNetworkStream, portal: BlockingPortal) -> None:
        self._stream = stream
        self._portal = portal

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """As :meth:`AsyncNetworkStream.read`."""
        return self._portal.call(self._stream.read, max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """As :meth:`AsyncNetworkStream.write`."""
        self._portal.call(self._stream.write, buffer, timeout)

    def close(self) -> None:
        """As :meth:`AsyncNetworkStream.aclose`."""
        self._portal.call(self._stream.aclose)

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> SyncNetworkStream:
        """As :meth:`AsyncNetworkStream.start_tls`."""
        stream = self._portal.call(self._stream.start_tls, ssl_context, server_hostname, timeout)
        return SyncNetworkStream(stream, self._portal)

    def get_extra_info(self, info: str) -> Any:
        """As :meth:`AsyncNetworkStream.get_extra_info` (no loop involved)."""
        return self._stream.get_extra_info(info)
