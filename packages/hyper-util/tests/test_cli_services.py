"""The services of ``python -m hyper_util serve``, in process, over real loopback sockets.

Each test runs the ``serve`` command's server (the same code the command
runs, minus signal handling) in the test's task group on 127.0.0.1 port 0,
and talks to it with hyper_core client connections, over HTTP/1.1 and over
HTTP/2 prior knowledge on the same port, on asyncio and trio.
"""

from __future__ import annotations

import email.utils
import io
import os
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from hyper_core.body import Full, Incoming, StreamBody, collect
from hyper_core.client.conn import http1, http2
from hyper_core.http import Request, Response, Uri
from hyper_core.service import Service
from hyper_util.cli._echo import echo
from hyper_util.cli._serve import ServeOptions, run_serve
from hyper_util.cli._static import StaticFiles, parse_range, resolve_path

pytestmark = pytest.mark.anyio

BIG = bytes(range(256)) * 1200  # 300 KiB: several read chunks, several DATA frames


@pytest.fixture(params=["h1", "h2"])
def proto(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"Hello, files!\n")
    (root / "big.bin").write_bytes(BIG)
    (root / "page.html").write_text("<p>hi</p>")
    (root / "data.json").write_text("{}")
    docs = root / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("<h1>docs index</h1>")
    (root / "empty-dir").mkdir()
    (root / "a b&c.txt").write_text("spaced")
    (root / "logs.tar.gz").write_bytes(b"\x1f\x8b not really")
    os.mkfifo(root / "fifo")
    (tmp_path / "secret.txt").write_text("do not serve")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "escape-dir").symlink_to(tmp_path)
    (root / "inside").symlink_to(root / "hello.txt")
    return root


@asynccontextmanager
async def running(service: Service[Any]) -> AsyncIterator[str]:
    """Run the serve command's server; yield its ``http://127.0.0.1:PORT``."""
    async with anyio.create_task_group() as tg:
        out = io.StringIO()
        address = await tg.start(
            partial(run_serve, service, ServeOptions(port=0), out=out, signals=False)
        )
        assert out.getvalue() == f"listening on {address} (HTTP/1.1 and HTTP/2 (h2c))\n"
        yield address
        tg.cancel_scope.cancel()


async def fetch(
    base: str,
    proto: str,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> tuple[Response[Incoming], bytes]:
    """One request on a new connection; returns the response and its whole body."""
    uri = Uri(base + path)
    assert uri.host is not None
    assert uri.port is not None
    stream = await anyio.connect_tcp(uri.host, uri.port)
    request_body = Full(body) if body is not None else Full(b"")
    async with anyio.create_task_group() as tg:
        if proto == "h2":
            sender2, conn2 = await http2.handshake(stream)
            tg.start_soon(conn2.serve)
            async with sender2:
                req = Request(method, uri, headers=list(headers), body=request_body)
                response = await sender2.send_request(req)
                data = (await collect(response.body)).to_bytes()
        else:
            sender1, conn1 = await http1.handshake(stream)
            tg.start_soon(conn1.serve)
            async with sender1:
                all_headers = [("host", uri.authority or ""), *headers]
                req = Request(method, path, headers=all_headers, body=request_body)
                response = await sender1.send_request(req)
                data = (await collect(response.body)).to_bytes()
    return response, data


async def test_file_content_and_headers(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, data = await fetch(base, proto, "GET", "/hello.txt")
    assert response.status == 200
    assert data == b"Hello, files!\n"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-length"] == "14"
    assert response.headers["accept-ranges"] == "bytes"
    mtime = int((site / "hello.txt").stat().st_mtime)
    assert response.headers["last-modified"] == email.utils.formatdate(mtime, usegmt=True)
    assert response.headers["etag"].startswith('"')


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("page.html", "text/html"),
        ("data.json", "application/json"),
        ("big.bin", "application/octet-stream"),
        ("a%20b%26c.txt", "text/plain"),
        ("logs.tar.gz", "application/octet-stream"),
    ],
)
async def test_content_types(site: Path, proto: str, name: str, ctype: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, _ = await fetch(base, proto, "GET", "/" + name)
    assert response.status == 200
    assert response.headers["content-type"] == ctype
    assert "content-encoding" not in response.headers


async def test_large_file_streams_whole(site: Path, proto: str) -> None:
    async with running(StaticFiles(site, chunk_size=4096)) as base:
        response, data = await fetch(base, proto, "GET", "/big.bin")
    assert response.status == 200
    assert data == BIG


async def test_head_has_headers_and_no_body(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, data = await fetch(base, proto, "HEAD", "/big.bin")
    assert response.status == 200
    assert data == b""
    assert response.headers["content-length"] == str(len(BIG))


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, len(BIG) - 1),
        ("bytes=-5", len(BIG) - 5, len(BIG) - 1),
        ("bytes=307190-999999", 307190, len(BIG) - 1),
    ],
)
async def test_single_range_gives_206(
    site: Path, proto: str, value: str, first: int, last: int
) -> None:
    async with running(StaticFiles(site)) as base:
        response, data = await fetch(base, proto, "GET", "/big.bin", [("range", value)])
    assert response.status == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(BIG)}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert data == BIG[first : last + 1]


async def test_head_ignores_range(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, data = await fetch(base, proto, "HEAD", "/big.bin", [("range", "bytes=0-9")])
    assert (response.status, data) == (200, b"")
    assert response.headers["content-length"] == str(len(BIG))
    assert "content-range" not in response.headers


async def test_unsatisfiable_range_gives_416(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, _ = await fetch(base, proto, "GET", "/hello.txt", [("range", "bytes=14-20")])
    assert response.status == 416
    assert response.headers["content-range"] == "bytes */14"


async def test_multiple_ranges_give_full_200(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, data = await fetch(base, proto, "GET", "/hello.txt", [("range", "bytes=0-1,4-5")])
    assert response.status == 200
    assert data == b"Hello, files!\n"


async def test_if_range_mismatch_gives_full_body(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        first, _ = await fetch(base, proto, "GET", "/hello.txt")
        etag = first.headers["etag"]
        matched, part = await fetch(
            base, proto, "GET", "/hello.txt", [("range", "bytes=0-4"), ("if-range", etag)]
        )
        stale, whole = await fetch(
            base, proto, "GET", "/hello.txt", [("range", "bytes=0-4"), ("if-range", '"old"')]
        )
    assert (matched.status, part) == (206, b"Hello")
    assert (stale.status, whole) == (200, b"Hello, files!\n")


async def test_if_modified_since_gives_304(site: Path, proto: str) -> None:
    path = site / "hello.txt"
    old = time.time() - 3600
    os.utime(path, (old, old))
    async with running(StaticFiles(site)) as base:
        first, _ = await fetch(base, proto, "GET", "/hello.txt")
        last_modified = first.headers["last-modified"]
        cached, data = await fetch(
            base, proto, "GET", "/hello.txt", [("if-modified-since", last_modified)]
        )
        earlier = email.utils.formatdate(old - 60, usegmt=True)
        changed, body = await fetch(
            base, proto, "GET", "/hello.txt", [("if-modified-since", earlier)]
        )
        etag_hit, _ = await fetch(
            base, proto, "GET", "/hello.txt", [("if-none-match", first.headers["etag"])]
        )
    assert cached.status == 304
    assert data == b""
    assert cached.headers["last-modified"] == last_modified
    assert changed.status == 200
    assert body == b"Hello, files!\n"
    assert etag_hit.status == 304


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/%2e%2e/secret.txt", 403),
        ("/%2E%2E/secret.txt", 403),
        ("/docs/%2e%2e/%2e%2e/secret.txt", 403),
        ("/docs/../../secret.txt", 403),
        ("/..%2fsecret.txt", 404),
        ("/%2e%2e%2fsecret.txt", 404),
        ("/escape", 403),
        ("/escape-dir/secret.txt", 403),
        ("/nope.txt", 404),
        ("/hello.txt/more", 404),
        ("/%00", 404),
        ("/%ff", 404),
        ("/fifo", 403),
    ],
)
async def test_traversal_is_refused(site: Path, proto: str, path: str, status: int) -> None:
    async with running(StaticFiles(site)) as base:
        response, data = await fetch(base, proto, "GET", path)
    assert response.status == status
    assert b"do not serve" not in data


async def test_symlink_inside_root_is_served(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, data = await fetch(base, proto, "GET", "/inside")
    assert (response.status, data) == (200, b"Hello, files!\n")


async def test_directory_index_listing_and_redirect(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        index, index_body = await fetch(base, proto, "GET", "/docs/")
        redirect, _ = await fetch(base, proto, "GET", "/docs?x=1")
        listing, listing_body = await fetch(base, proto, "GET", "/")
        empty, _ = await fetch(base, proto, "GET", "/empty-dir/")
    assert (index.status, index_body) == (200, b"<h1>docs index</h1>")
    assert index.headers["content-type"] == "text/html"
    assert redirect.status == 301
    assert redirect.headers["location"] == "/docs/?x=1"
    assert listing.status == 200
    assert listing.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<a href="hello.txt">hello.txt</a>' in listing_body
    assert b'<a href="docs/">docs/</a>' in listing_body
    assert b'<a href="a%20b%26c.txt">a b&amp;c.txt</a>' in listing_body
    assert empty.status == 200


async def test_other_methods_get_405(site: Path, proto: str) -> None:
    async with running(StaticFiles(site)) as base:
        response, _ = await fetch(base, proto, "POST", "/hello.txt", body=b"x")
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_static_root_must_be_a_directory(site: Path) -> None:
    with pytest.raises(NotADirectoryError):
        StaticFiles(site / "hello.txt")


async def test_echo_service(proto: str) -> None:
    async with running(echo) as base:
        response, data = await fetch(
            base, proto, "POST", "/some/path?q=1", [("x-test", "yes")], body=b"the body"
        )
    assert response.status == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep
    assert body == b"the body"
    lines = head.decode().split("\r\n")
    version = "HTTP/2" if proto == "h2" else "HTTP/1.1"
    assert lines[0] == f"POST /some/path?q=1 {version}"
    assert f"host: {base.removeprefix('http://')}" in lines
    assert "x-test: yes" in lines
    assert response.headers.get("content-length") == str(len(data))


async def test_echo_streams_unknown_length_body(proto: str) -> None:
    """A chunked upload is echoed as it arrives, without a Content-Length."""
    got_first = anyio.Event()

    async def parts() -> AsyncIterator[bytes]:
        yield b"first "
        # The first part comes back before the second is sent: streaming.
        with anyio.fail_after(5):
            await got_first.wait()
        yield b"second"

    async with running(echo) as base:
        uri = Uri(base + "/stream")
        assert uri.host is not None
        assert uri.port is not None
        stream = await anyio.connect_tcp(uri.host, uri.port)
        async with anyio.create_task_group() as tg:
            sender: http1.SendRequest | http2.SendRequest
            if proto == "h2":
                sender, conn2 = await http2.handshake(stream)
                tg.start_soon(conn2.serve)
                req = Request("PUT", uri, body=StreamBody(parts()))
            else:
                sender, conn1 = await http1.handshake(stream)
                tg.start_soon(conn1.serve)
                req = Request("PUT", "/stream", headers={"host": "x"}, body=StreamBody(parts()))
            async with sender:
                response = await sender.send_request(req)
                assert "content-length" not in response.headers
                received = b""
                async for chunk in response.body:
                    received += chunk
                    if received.endswith(b"first "):
                        got_first.set()
    assert received.endswith(b"\r\n\r\nfirst second")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=-30", (0, 9)),
        ("bytes=2-100", (2, 9)),
        ("BYTES = 1-2", (1, 2)),
        ("bytes=10-", False),
        ("bytes=-0", False),
        ("bytes=0-1,3-4", None),
        ("bytes=5-2", None),
        ("bytes=x-2", None),
        ("items=0-1", None),
        ("bytes=", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(value: str, expected: object) -> None:
    assert parse_range(value, 10) == expected


def test_parse_range_empty_file() -> None:
    assert parse_range("bytes=0-", 0) is False
    assert parse_range("bytes=-5", 0) is False


def test_resolve_path_stays_inside(tmp_path: Path) -> None:
    root = os.path.realpath(tmp_path)
    assert resolve_path(root, "/") == root
    assert resolve_path(root, "/a/./b//c") == os.path.join(root, "a", "b", "c")
    assert resolve_path(root, "/a%20b") == os.path.join(root, "a b")


async def test_files_are_read_in_chunks_and_closed(site: Path) -> None:
    """The body pulls one chunk per frame; dropping it early closes the file."""
    service = StaticFiles(site, chunk_size=10_000)
    response = await service(Request("GET", "/big.bin", body=Incoming.empty()))
    sizes = []
    while (frame := await response.body.frame()) is not None:
        data = frame.data_ref
        assert data is not None
        sizes.append(len(data))
    assert sizes == [10_000] * 30 + [7_200]
    assert response.body.is_end_stream()

    dropped = await service(Request("GET", "/big.bin", body=Incoming.empty()))
    assert dropped.body.size_hint().exact == len(BIG)
    first = await dropped.body.frame()
    assert first is not None
    assert dropped.body.size_hint().exact == len(BIG) - 10_000
    await dropped.body.aclose()  # closes the file (else a ResourceWarning: an error here)
    assert await dropped.body.frame() is None
