"""``HyperTransport``: httpx's synchronous transport interface, on an event loop thread.

What belongs here: the synchronous transport, its response stream, and the
loop thread's lifetime (start, close, interpreter exit, fork).

Strategy: the transport owns an :class:`AsyncHyperTransport` and a
background thread running an event loop with anyio's blocking portal
(asyncio by default; uvloop or trio through ``backend`` /
``backend_options``, as :func:`anyio.run` takes them). Each request is one
call into that loop, which sends it and, when the response body is small
and of known length (at most 64 KiB), reads it there too, so the usual
request costs one thread round trip; a larger or open-ended body is read
one chunk per round trip, as the caller iterates. A streamed request body
is pulled by the connection chunk by chunk, each taken from the caller's
iterator in a worker thread (it may block, reading a file), so the
response can arrive while the body is still being sent. Many threads may
share one transport: the portal serialises nothing but the hand-over.

Lifetime: the thread starts with the first request and stops in
:meth:`HyperTransport.close` (what leaving ``with httpx.Client(...)``
does), after the pooled client closed its connections. It is a daemon
thread, so a transport never closed cannot keep the interpreter from
exiting; an ``atexit`` hook still closes what is left, politely. A child
made by ``os.fork()`` has no such thread: the transport starts a new one
(and a new pool) on the child's first request.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from hyper_core.body import Incoming
from hyper_util.client.httpx._async import DEFAULT_LIMITS, AsyncHyperTransport
from hyper_util.client.httpx._connect import SocketOption
from hyper_util.client.httpx._convert import (
    SyncStreamBody,
    http_version,
    memory_body,
    reason_phrase,
)
from hyper_util.client.httpx._errors import to_httpx
from hyper_util.client.httpx._stream import SyncNetworkStream

if TYPE_CHECKING:
    import ssl

__all__ = ["HyperTransport", "SyncResponseStream"]

#: Response bodies of known length up to this size are read in the same
#: round trip as the head (bytes).
PREFETCH_LIMIT: Final = 65536
#: Seconds the exit hook gives each transport to close its connections.
_EXIT_GRACE: Final = 5.0

_LIVE: Final[weakref.WeakSet[HyperTransport]] = weakref.WeakSet()
#: A forked child's copies of its parent's portals (see ``_after_fork``).
_ABANDONED: Final[list[object]] = []


async def _next_chunk(body: Incoming) -> bytes | None:
    """The next non-empty chunk of ``body``, or ``None`` at its end (httpx errors)."""
    try:
        async for chunk in body:
            if chunk:
                return chunk
    except Exception as exc:
        mapped = to_httpx(exc, receiving=True)
        if mapped is None:
            raise
        raise mapped from exc
    return None


async def _read_all(body: Incoming) -> bytes:
    chunks = []
    while (chunk := await _next_chunk(body)) is not None:
        chunks.append(chunk)
    return b"".join(chunks)


class SyncResponseStream(httpx.SyncByteStream):
    """The body of a response, read from the transport's loop one chunk per call.

    Closing it before the end closes the HTTP/1 connection (or resets the
    HTTP/2 stream); read to the end, the connection goes back to the pool.
    """

    def __init__(self, body: Incoming, portal: BlockingPortal) -> None:
        self._body = body
        self._portal = portal

    def __iter__(self) -> Iterator[bytes]:
        call = self._portal.call
        body = self._body
        while (chunk := call(_next_chunk, body)) is not None:
            yield chunk

    def close(self) -> None:
        # RuntimeError: the transport was closed first, nothing is left to release.
        with contextlib.suppress(RuntimeError):
            self._portal.call(self._body.aclose)


class HyperTransport(httpx.BaseTransport):
    """An httpx transport on hyper-util's pooled client, for ``httpx.Client(transport=...)``.

    The arguments are those of ``httpx.HTTPTransport`` (see
    :class:`AsyncHyperTransport`), plus the event loop to run on::

        with httpx.Client(transport=HyperTransport(http2=True)) as client:
            print(client.get("https://example.com/").status_code)

    Safe to share between threads. Close it (or the ``httpx.Client``) when
    done: that closes the connections and stops the loop thread.

    Args:
        http3: Speak HTTP/3 where known (see :class:`AsyncHyperTransport`).
        http3_origins: Prior knowledge for ``http3``.
        backend: The event loop the connections run on: ``"asyncio"`` or
            ``"trio"`` (anyio's names).
        backend_options: Options of that backend, as :func:`anyio.run`
            takes them (``{"use_uvloop": True}`` for uvloop).
    """

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: httpx.Proxy | httpx.URL | str | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[SocketOption] | None = None,
        *,
        http3: bool = False,
        http3_origins: Iterable[str] = (),
        backend: str = "asyncio",
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._transport = AsyncHyperTransport(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            proxy=proxy,
            uds=uds,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            http3=http3,
            http3_origins=http3_origins,
        )
        self._backend = backend
        self._backend_options = dict(backend_options or {})
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._closed = False
        _LIVE.add(self)

    def _get_portal(self) -> BlockingPortal:
        portal = self._portal
        if portal is not None:
            return portal
        with self._lock:
            if self._closed:
                raise RuntimeError("the transport is closed")
            if self._portal is None:
                cm = start_blocking_portal(
                    self._backend, self._backend_options, name="hyper-util httpx transport"
                )
                self._portal = cm.__enter__()
                self._portal_cm = cm
            return self._portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on the loop thread; return once the head (and a small body) arrived.

        Raises:
            httpx.TransportError: The matching subclass, as the async transport.
            RuntimeError: The transport is closed.
        """
        portal = self._get_portal()
        future = portal.start_task_soon(self._send, request)
        try:
            status, headers, extensions, content = future.result()
        except BaseException:
            # Interrupted here (KeyboardInterrupt): stop the request too.
            future.cancel()
            raise
        stream: httpx.SyncByteStream
        if type(content) is bytes:
            stream = httpx.ByteStream(content)
        else:
            stream = SyncResponseStream(content, portal)
        extensions["network_stream"] = SyncNetworkStream(extensions["network_stream"], portal)
        return httpx.Response(status, headers=headers, stream=stream, extensions=extensions)

    async def _send(
        self, request: httpx.Request
    ) -> tuple[int, list[tuple[bytes, bytes]], dict[str, Any], bytes | Incoming]:
        """On the loop: send, and read the body at once when it is small and of known length."""
        body = memory_body(request)
        if body is None:
            stream = request.stream
            if not isinstance(stream, httpx.SyncByteStream):
                raise RuntimeError("Attempted to send an async request with a sync transport.")
            body = SyncStreamBody(stream)
        response, network_stream = await self._transport.send(request, body)
        extensions: dict[str, Any] = {
            "http_version": http_version(response.version),
            "network_stream": network_stream,
        }
        phrase = reason_phrase(response)
        if phrase is not None:
            extensions["reason_phrase"] = phrase
        incoming = response.body
        upper = incoming.size_hint().upper
        content: bytes | Incoming = incoming
        if upper is not None and upper <= PREFETCH_LIMIT:
            content = await _read_all(incoming)
        return int(response.status), response.headers.raw(), extensions, content

    def close(self) -> None:
        """Close every connection and stop the loop thread. Idempotent."""
        with self._lock:
            self._closed = True
            portal, cm = self._portal, self._portal_cm
            self._portal = self._portal_cm = None
        if portal is None or cm is None:
            self._transport.owner.close_from_thread()
            return
        try:
            portal.call(self._transport.aclose)
        finally:
            cm.__exit__(None, None, None)

    def _close_at_exit(self) -> None:
        portal = self._portal
        if portal is None:
            return
        future = portal.start_task_soon(self._transport.aclose)
        try:
            future.result(timeout=_EXIT_GRACE)
        except (concurrent.futures.TimeoutError, Exception):
            future.cancel()
        self.close()

    def _after_fork(self) -> None:
        # The loop thread did not come along: the next request starts another.
        # The parent's portal is kept, never closed: closing it would wait
        # for a loop that does not run here (and its generator would close
        # it if it were collected).
        if self._portal_cm is not None:
            _ABANDONED.append(self._portal_cm)
        self._lock = threading.Lock()
        self._portal = self._portal_cm = None


def _close_all_at_exit() -> None:
    for transport in list(_LIVE):
        with contextlib.suppress(Exception):  # exiting anyway
            transport._close_at_exit()


def _after_fork_in_child() -> None:
    for transport in list(_LIVE):
        transport._after_fork()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
