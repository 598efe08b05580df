"""httpx's requests as hyper requests, and hyper's responses as httpx's parts.

What belongs here: :class:`Converter` (URL, headers, body and timeouts of
an ``httpx.Request`` into a :class:`hyper_core.http.Request`), the request
body adapters for httpx's async and sync streams, and what a response's
``extensions`` hold.

Strategy: an httpx client sends the same few URLs and the same timeout
configuration over and over, so the parsed :class:`~hyper_core.http.Uri`
and the :class:`~hyper_util.client.legacy.Timeouts` are kept in bounded
tables keyed by their inputs; the pooled client then recognises the same
``Uri`` object and skips its own per-request parsing too. Headers are
validated by :class:`~hyper_core.http.Headers` like any others (httpx lets
some bytes through that no HTTP/1 peer should receive). A body httpx holds
in memory (``ByteStream``) becomes a ``Full`` (one write, with its
``Content-Length``); a streamed one is pulled chunk by chunk as the
connection writes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Final, final

import anyio.to_thread
import httpx

from hyper_core.body import Body, Empty, Frame, Full, SizeHint
from hyper_core.error import InvalidUri
from hyper_core.ext import ReasonPhrase
from hyper_core.http import Extensions, Headers, Method, Request, Response, Uri, Version
from hyper_util.client.legacy import Timeouts

__all__ = ["AsyncStreamBody", "Converter", "SyncStreamBody", "http_version", "reason_phrase"]

_VERSIONS: Final = {
    Version.HTTP_10: b"HTTP/1.0",
    Version.HTTP_11: b"HTTP/1.1",
    Version.HTTP_2: b"HTTP/2",
    Version.HTTP_3: b"HTTP/3",
}
_HTTP_11: Final = Version.HTTP_11
_HTTP_2: Final = Version.HTTP_2
_HTTP_3: Final = Version.HTTP_3
_UNKNOWN: Final = SizeHint()
#: Entries kept per table: a bound, not a cache policy (emptied when full).
_KEPT: Final = 256
#: What a timeout of zero or less becomes: httpcore then times out at once.
_IMMEDIATELY: Final = 1e-9
_NO_TIMEOUTS: Final = Timeouts()

_UriKey = tuple[bytes, bytes, int | None, bytes]
_TimeoutKey = tuple[Any, Any, Any, Any]


def http_version(version: Version) -> bytes:
    """``response.extensions["http_version"]`` for ``version`` (``b"HTTP/1.1"``...)."""
    return _VERSIONS[version]


def reason_phrase(response: Response[Any]) -> bytes | None:
    """The reason phrase of an HTTP/1 response, or ``None`` (HTTP/2 and 3 have none).

    hyper keeps the phrase only when it differs from the status code's
    canonical one; httpcore reports it on every HTTP/1 response.
    """
    if response.version is _HTTP_2 or response.version is _HTTP_3:
        return None
    phrase = response.extension(ReasonPhrase)
    if phrase is not None:
        return phrase.as_bytes()
    status = response.status
    canonical = _CANONICAL.get(status)
    if canonical is None:
        canonical = status.reason.encode("ascii")
        if len(_CANONICAL) < _KEPT:
            _CANONICAL[status] = canonical
    return canonical


#: Canonical reason phrases as bytes, by status (a handful in practice).
_CANONICAL: Final[dict[int, bytes]] = {}


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    return max(float(value), _IMMEDIATELY)


@final
class Converter:
    """Builds the hyper request for an httpx request (one per transport)."""

    __slots__ = ("_timeouts", "_uris")

    def __init__(self) -> None:
        self._uris: dict[_UriKey, Uri] = {}
        self._timeouts: dict[_TimeoutKey, Timeouts] = {}

    def uri(self, url: httpx.URL, target: bytes | None = None) -> Uri:
        """The absolute URI of ``url`` (with ``target`` as its path and query, if given).

        Raises:
            InvalidUri: The URL cannot be written on the wire, or the
                target is not origin-form.
        """
        path = url.raw_path if target is None else target
        key = (url.raw_scheme, url.raw_host, url.port, path)
        uri = self._uris.get(key)
        if uri is None:
            if path[:1] != b"/":
                raise InvalidUri(
                    f"invalid request target {path[:60]!r}: only origin-form targets "
                    "('/path?query') can be sent through the hyper transport"
                )
            host = url.raw_host
            if b":" in host:
                host = b"[" + host + b"]"
            port = url.port
            authority = host if port is None else b"%s:%d" % (host, port)
            uri = Uri(url.raw_scheme + b"://" + authority + path)
            uris = self._uris
            if len(uris) >= _KEPT:
                uris.clear()
            uris[key] = uri
        return uri

    def timeouts(self, value: Any) -> Timeouts:
        """The :class:`Timeouts` of httpx's ``request.extensions["timeout"]`` dict."""
        if not value:
            return _NO_TIMEOUTS
        get = value.get
        key = (get("connect"), get("read"), get("write"), get("pool"))
        timeouts = self._timeouts.get(key)
        if timeouts is None:
            timeouts = Timeouts(
                connect=_seconds(key[0]),
                read=_seconds(key[1]),
                write=_seconds(key[2]),
                pool=_seconds(key[3]),
            )
            table = self._timeouts
            if len(table) >= _KEPT:
                table.clear()
            table[key] = timeouts
        return timeouts

    def request(self, request: httpx.Request, body: Body) -> Request[Body]:
        """The hyper request for ``request``, sending ``body``.

        Raises:
            InvalidUri, InvalidHeader, InvalidMethod: The request cannot be
                written on the wire (httpx maps these to ``LocalProtocolError``).
        """
        extensions = request.extensions
        uri = self.uri(request.url, extensions.get("target"))
        timeout = extensions.get("timeout")
        hyper_extensions = None
        if timeout is not None:
            hyper_extensions = Extensions()
            hyper_extensions.insert(self.timeouts(timeout))
        # The parts are typed here; Headers still validates httpx's fields.
        return Request.from_parts(
            Method(request.method),  # interned: the standard methods are one lookup
            uri,
            _HTTP_11,
            Headers(request.headers.raw),
            body,
            hyper_extensions,
        )


def memory_body(request: httpx.Request) -> Body | None:
    """``Full`` (or ``Empty``) for a body httpx holds in memory, else ``None``."""
    if not isinstance(request.stream, httpx.ByteStream):
        return None
    try:
        content = request.content
    except httpx.RequestNotRead:  # a ByteStream given as ``stream=``, not read yet
        return None
    return Full(content) if content else Empty()


@final
class AsyncStreamBody:
    """A request body pulled from an httpx ``AsyncByteStream``.

    Remembers an exception the stream itself raised (:attr:`error`), so the
    transport raises the user's own error rather than the connection's
    account of it, as httpx's default transport does.
    """

    __slots__ = ("_done", "_iterator", "error")

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._iterator: AsyncIterator[bytes] = aiter(stream)
        self._done = False
        self.error: Exception | None = None

    async def frame(self) -> Frame | None:
        """The next chunk of the stream as a data frame, or ``None`` at its end."""
        if self._done:
            return None
        try:
            chunk = await anext(self._iterator)
        except StopAsyncIteration:
            self._done = True
            return None
        except Exception as exc:
            self._done = True
            self.error = exc
            raise
        return Frame.data(chunk if type(chunk) is bytes else bytes(chunk))

    def is_end_stream(self) -> bool:
        """Whether the stream is exhausted."""
        return self._done

    def size_hint(self) -> SizeHint:
        """Unknown: httpx's headers (``Content-Length`` or chunked) say it."""
        return _UNKNOWN

    async def aclose(self) -> None:
        """Stop pulling; an async generator behind the stream is closed."""
        self._done = True
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


_END: Final = object()


@final
class SyncStreamBody:
    """A request body pulled from an httpx ``SyncByteStream`` in a worker thread.

    The synchronous transport runs the connection on its event loop thread;
    the stream's iterator may block (a file being read), so each chunk is
    taken in a worker thread, one at a time, as the connection asks.
    """

    __slots__ = ("_done", "_iterator", "error")

    def __init__(self, stream: httpx.SyncByteStream) -> None:
        self._iterator: Iterator[bytes] = iter(stream)
        self._done = False
        self.error: Exception | None = None

    async def frame(self) -> Frame | None:
        """The next chunk of the stream as a data frame, or ``None`` at its end."""
        if self._done:
            return None
        try:
            chunk = await anyio.to_thread.run_sync(next, self._iterator, _END)
        except Exception as exc:
            self._done = True
            self.error = exc
            raise
        if chunk is _END:
            self._done = True
            return None
        assert isinstance(chunk, bytes | bytearray | memoryview)
        return Frame.data(chunk if type(chunk) is bytes else bytes(chunk))

    def is_end_stream(self) -> bool:
        """Whether the stream is exhausted."""
        return self._done

    def size_hint(self) -> SizeHint:
        """Unknown: httpx's headers (``Content-Length`` or chunked) say it."""
        return _UNKNOWN

    async def aclose(self) -> None:
        """Stop pulling; a generator behind the stream is closed (in a worker thread)."""
        if self._done:
            return
        self._done = True
        close = getattr(self._iterator, "close", None)
        if close is not None:
            await anyio.to_thread.run_sync(close)
