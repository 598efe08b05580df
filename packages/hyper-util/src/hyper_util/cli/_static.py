r"""The static file service behind ``python -m hyper_util serve DIR``.

What belongs here: :class:`StaticFiles`, a service that answers ``GET`` and
``HEAD`` from one folder, and the pure helpers it uses (request path to file
path, ``Range`` parsing, conditional requests). Nothing here listens on a
socket; :mod:`hyper_util.cli._serve` does that.

Strategy, path safety first: the request path is split on ``/`` *before*
percent-decoding, so ``%2F`` can never create a separator; every decoded
segment is then checked (``..`` anywhere, even spelled ``%2e%2e``, gives
403; a NUL, a ``/`` or a ``\\`` inside a segment gives 404), and the joined
path is resolved with :func:`os.path.realpath` and must still lie inside the
folder (itself resolved once, at start), so a symlink pointing outside is
refused with 403 as well. The resolved path is the one opened.

Files are streamed: :class:`_FileBody` reads one chunk per pull, in a worker
thread (file I/O would otherwise block the event loop), so a large file
costs a chunk of memory, and the connection's backpressure reaches the disk.
Size and modification time come from ``fstat`` on the opened file, so the
headers describe the bytes that are sent.

Ranges: a single byte range gets ``206`` with ``Content-Range``; an
unsatisfiable one ``416`` with ``Content-Range: bytes */size``; several
ranges, a malformed header or another unit are ignored and the full body is
sent with ``200`` (RFC 9110 section 14.2 lets a server ignore ``Range``; it
spares us ``multipart/byteranges``). ``If-Range`` is honoured with the
strong ``ETag`` or the exact ``Last-Modified`` date.
"""

from __future__ import annotations

import email.utils
import html
import mimetypes
import os
import stat
import urllib.parse
from collections.abc import Iterable
from typing import IO, Final, final

import anyio
import anyio.to_thread

from hyper_core.body import Body, Empty, Frame, Full, Incoming, SizeHint
from hyper_core.http import Headers, Request, Response

__all__ = ["DEFAULT_CHUNK_SIZE", "StaticFiles", "parse_range", "resolve_path"]

#: Bytes read from a file per body frame (64 KiB: a typical socket buffer, so
#: one read fills about one send, and an HTTP/2 DATA window of hyper's 1 MiB
#: default holds sixteen of them).
DEFAULT_CHUNK_SIZE: Final = 65_536

_ALLOW: Final = "GET, HEAD"


class _Refused(Exception):
    """A request path that cannot name a file under the root; carries the status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def resolve_path(root: str, raw_path: str) -> str:
    r"""Map a request path (still percent-encoded) to a real path under ``root``.

    Args:
        root: The served folder, already resolved with :func:`os.path.realpath`.
        raw_path: The path of the request target, as received.

    Returns:
        The resolved file system path, inside ``root`` (it may not exist).

    Raises:
        _Refused: 403 for a ``..`` segment or a path that resolves outside
            ``root`` (a symlink escape); 404 for a segment no file can have
            (NUL, an encoded ``/`` or ``\\``, invalid UTF-8).
    """
    if not raw_path.startswith("/"):
        raise _Refused(404)
    parts: list[str] = []
    for raw_segment in raw_path.split("/"):
        try:
            segment = urllib.parse.unquote(raw_segment, errors="strict")
        except UnicodeDecodeError:
            raise _Refused(404) from None
        if segment == "..":
            raise _Refused(403)
        if segment in ("", "."):
            continue
        if "\x00" in segment or "/" in segment or "\\" in segment:
            raise _Refused(404)
        parts.append(segment)
    real = os.path.realpath(os.path.join(root, *parts))
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise _Refused(403)
    return real


def parse_range(value: str, size: int) -> tuple[int, int] | bool | None:
    """Interpret a ``Range`` header against a representation of ``size`` bytes.

    Returns:
        ``(first, last)`` (inclusive) for one satisfiable byte range;
        ``False`` when the header is well formed but no range is
        satisfiable (answer 416); ``None`` when the header is to be ignored
        (another unit, malformed, or several ranges: answer 200).
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    ranges = [r.strip() for r in spec.split(",") if r.strip()]
    if len(ranges) != 1:
        return None
    first_s, dash, last_s = ranges[0].partition("-")
    if not dash:
        return None
    first_s, last_s = first_s.strip(), last_s.strip()
    if not (first_s.isdigit() or first_s == "") or not (last_s.isdigit() or last_s == ""):
        return None
    if first_s == "":
        if last_s == "":
            return None
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            return False
        return (max(0, size - suffix), size - 1)
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None  # syntactically invalid (RFC 9110 section 14.1.1): ignore
    if first >= size:
        return False
    return (first, min(int(last_s), size - 1) if last_s else size - 1)


def _etag(st: os.stat_result) -> str:
    # Strong: it changes whenever size or modification time (ns) do, which is
    # what nginx's and Apache's default ETags also rely on.
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def _etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if weak and tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _http_date(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return int(parsed.timestamp())


def _not_modified(headers: Headers, etag: str, mtime: int) -> bool:
    # RFC 9110 section 13.2.2: If-None-Match, when present, decides alone.
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag, weak=True)
    since = _http_date(headers.get("if-modified-since"))
    return since is not None and mtime <= since


def _if_range_holds(value: str, etag: str, last_modified: str) -> bool:
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # strong comparison: a weak tag never matches
    return value == last_modified


@final
class _FileBody:
    """``length`` bytes of an open file from ``offset``, one chunk per frame.

    The file is closed at the end of the data or by :meth:`aclose` (which a
    connection calls when it drops the body early), whichever comes first.
    """

    __slots__ = ("_chunk", "_file", "_left")

    def __init__(self, file: IO[bytes], offset: int, length: int, chunk: int) -> None:
        self._file: IO[bytes] | None = file
        self._left = length
        self._chunk = chunk
        if offset:
            file.seek(offset)

    async def frame(self) -> Frame | None:
        file = self._file
        if file is None:
            return None
        if self._left <= 0:
            await self.aclose()
            return None
        data = await anyio.to_thread.run_sync(file.read, min(self._chunk, self._left))
        if not data:
            # The file shrank under us: end early; the connection reports the
            # short body (Content-Length promised more) rather than hanging.
            await self.aclose()
            return None
        self._left -= len(data)
        return Frame.data(data)

    def is_end_stream(self) -> bool:
        return self._file is None or self._left <= 0

    def size_hint(self) -> SizeHint:
        return SizeHint.with_exact(max(self._left, 0))

    async def aclose(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _plain(status: int, text: str, extra: Iterable[tuple[str, str]] = ()) -> Response[Body]:
    body = text.encode()
    headers = Headers([("content-type", "text/plain; charset=utf-8"), *extra])
    headers.append("content-length", str(len(body)))
    return Response(status, headers=headers, body=Full(body))


_REASONS: Final = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}


@final
class StaticFiles:
    """Serve the files under one folder (``GET`` and ``HEAD``).

    A directory is answered with its ``index.html`` when it has one, else
    with a simple HTML listing; a directory asked for without its trailing
    slash is redirected (301) to it, so relative links resolve. Content types
    come from :mod:`mimetypes` (``application/octet-stream`` when unknown).
    Responses carry ``Last-Modified``, a strong ``ETag`` and
    ``Accept-Ranges: bytes``; ``If-None-Match`` and ``If-Modified-Since``
    give 304, ``Range`` as described in the module docstring.

    Args:
        root: The folder to serve; resolved (symlinks too) once, here.
        chunk_size: Bytes per read while streaming a file.
        listing: Show an HTML listing for directories without an index.

    Raises:
        NotADirectoryError: ``root`` is not a directory.
    """

    __slots__ = ("_chunk", "_listing", "_root")

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        listing: bool = True,
    ) -> None:
        self._root = os.path.realpath(root)
        if not os.path.isdir(self._root):
            raise NotADirectoryError(f"not a directory: {os.fspath(root)}")
        self._chunk = chunk_size
        self._listing = listing

    @property
    def root(self) -> str:
        """The served folder, resolved."""
        return self._root

    async def __call__(self, request: Request[Incoming]) -> Response[Body]:
        """Answer one request (see the class docstring)."""
        # A body on a GET is meaningless here; the connection drains it.
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "405 Method Not Allowed\n", [("allow", _ALLOW)])
        path = request.uri.path
        try:
            real = resolve_path(self._root, path)
            return await anyio.to_thread.run_sync(self._answer, request, path, real)
        except _Refused as refused:
            return _plain(refused.status, f"{refused.status} {_REASONS[refused.status]}\n")

    def _answer(self, request: Request[Incoming], path: str, real: str) -> Response[Body]:
        # Runs in a worker thread: every call in here may touch the disk.
        try:
            # stat before open: opening a FIFO would block until a writer came.
            mode = os.stat(real).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise _Refused(404) from None
        except OSError:
            raise _Refused(403) from None
        if stat.S_ISDIR(mode):
            return self._directory(request, path, real)
        if not stat.S_ISREG(mode):
            raise _Refused(403)  # a FIFO, a socket or a device: never stream those
        try:
            file = open(real, "rb")  # noqa: SIM115 -- closed by _FileBody or below
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise _Refused(404) from None
        except OSError:
            raise _Refused(403) from None
        try:
            st = os.fstat(file.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise _Refused(404)  # replaced between stat and open
            response = self._file(request, real, file, st)
        except BaseException:
            file.close()
            raise
        if not isinstance(response.body, _FileBody):
            file.close()
        return response

    def _file(
        self, request: Request[Incoming], real: str, file: IO[bytes], st: os.stat_result
    ) -> Response[Body]:
        size = st.st_size
        etag = _etag(st)
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        ctype, encoding = mimetypes.guess_type(real)
        headers = Headers(
            [
                ("last-modified", last_modified),
                ("etag", etag),
                ("accept-ranges", "bytes"),
            ]
        )
        if _not_modified(request.headers, etag, int(st.st_mtime)):
            return Response(304, headers=headers, body=Empty())
        headers.append("content-type", ctype or "application/octet-stream")
        if encoding is not None:
            # foo.tar.gz is a gzip file; Content-Encoding would make a client
            # unpack it, which is not what downloading a .gz means.
            headers.insert("content-type", "application/octet-stream")
        first, length, status = 0, size, 200
        range_value = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if (
            range_value is not None
            and request.method == "GET"
            and (if_range is None or _if_range_holds(if_range, etag, last_modified))
        ):
            wanted = parse_range(range_value, size)
            if wanted is False:
                headers.append("content-range", f"bytes */{size}")
                headers.insert("content-type", "text/plain; charset=utf-8")
                text = b"416 Range Not Satisfiable\n"
                headers.append("content-length", str(len(text)))
                return Response(416, headers=headers, body=Full(text))
            if isinstance(wanted, tuple):
                first, last = wanted
                length, status = last - first + 1, 206
                headers.append("content-range", f"bytes {first}-{last}/{size}")
        headers.append("content-length", str(length))
        if request.method == "HEAD":
            return Response(status, headers=headers, body=Empty())
        return Response(status, headers=headers, body=_FileBody(file, first, length, self._chunk))

    def _directory(self, request: Request[Incoming], path: str, real: str) -> Response[Body]:
        if not path.endswith("/"):
            query = request.uri.query
            location = path + "/" + ("" if query is None else "?" + query)
            return _plain(301, f"301 Moved Permanently: {location}\n", [("location", location)])
        index = os.path.join(real, "index.html")
        if os.path.isfile(index):
            file = open(index, "rb")  # noqa: SIM115 -- closed by _FileBody or _answer
            try:
                st = os.fstat(file.fileno())
                response = self._file(request, index, file, st)
            except BaseException:
                file.close()
                raise
            if not isinstance(response.body, _FileBody):
                file.close()
            return response
        if not self._listing:
            raise _Refused(403)
        try:
            entries = sorted(os.scandir(real), key=lambda e: e.name)
        except PermissionError:
            raise _Refused(403) from None
        title = html.escape(urllib.parse.unquote(path))
        lines = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">',
            f"<title>Index of {title}</title></head>",
            f"<body><h1>Index of {title}</h1><ul>",
        ]
        if path != "/":
            lines.append('<li><a href="../">../</a></li>')
        for entry in entries:
            name = entry.name + ("/" if entry.is_dir() else "")
            href = urllib.parse.quote(name)
            lines.append(f'<li><a href="{href}">{html.escape(name)}</a></li>')
        lines.append("</ul></body></html>\n")
        body = "\n".join(lines).encode()
        headers = Headers(
            [("content-type", "text/html; charset=utf-8"), ("content-length", str(len(body)))]
        )
        if request.method == "HEAD":
            return Response(200, headers=headers, body=Empty())
        return Response(200, headers=headers, body=Full(body))

    def __repr__(self) -> str:
        return f"StaticFiles({self._root!r})"
