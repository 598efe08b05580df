"""The httpx transports against peers we did not write: nginx, hypercorn, and our CLI.

nginx (Debian's, HTTP/1.1 and h2c with prior knowledge on a second port)
serves static files: keep-alive reuse as nginx reports it (``$connection``),
redirects, gzip (decoded by httpx), HTTP/2 multiplexing, and a 1 GiB
download read in constant memory (the RSS of this process is sampled while
it runs) within a bounded time, on every async backend and from the
synchronous transport. hypercorn runs an ASGI app that digests uploads.
``python -m hyper_util serve`` (a separate process) echoes uploads back as
they arrive, so the request and the response stream at the same time.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from interop_peers import run_hypercorn, run_nginx, run_serve

from hyper_util.client.httpx import AsyncHyperTransport, HyperTransport

pytestmark = pytest.mark.anyio

GIB = 1 << 30
#: Most the process may grow while downloading 1 GiB (bytes).
MEMORY_BOUND = 64 << 20
#: Seconds the 1 GiB download may take on a loaded 2-core machine.
DOWNLOAD_BOUND = 120.0
LINES = b"".join(b"line %d\n" % i for i in range(5000))

DIGEST_APP = """
import hashlib


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    digest, size = hashlib.sha256(), 0
    while True:
        message = await receive()
        digest.update(message.get("body", b""))
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = ("%s %d %s" % (scope["http_version"], size, digest.hexdigest())).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

LOCATIONS = """
        location = /moved { return 301 /hello; }
        location /gz/ {
            alias %(www)s/;
            gzip on;
            gzip_types text/plain;
            gzip_min_length 0;
        }
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("nginx")
    www = tmp / "www"
    www.mkdir()
    (www / "hello").write_bytes(b"hello")
    (www / "lines.txt").write_bytes(LINES)
    with (www / "gib").open("wb") as sparse:
        sparse.truncate(GIB)  # 1 GiB of zeros that takes no disk space
    with run_nginx(tmp, LOCATIONS % {"www": www}) as (port, h2_port):
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{h2_port}"


@pytest.fixture(scope="module")
def hypercorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_hypercorn(tmp_path_factory.mktemp("hypercorn"), DIGEST_APP, "digest_app") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def serve_echo() -> Iterator[str]:
    with run_serve() as base:
        yield base


def rss() -> int:
    """This process's resident memory, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for i in range(count):
        yield bytes([i % 251]) * size


def sync_chunks(count: int, size: int) -> Iterator[bytes]:
    for i in range(count):
        yield bytes([i % 251]) * size


def digest_of(count: int, size: int) -> str:
    return hashlib.sha256(b"".join(sync_chunks(count, size))).hexdigest()


# -- nginx -------------------------------------------------------------------------------


async def test_nginx_keep_alive_redirects_and_gzip(nginx: tuple[str, str]) -> None:
    base, _ = nginx
    async with httpx.AsyncClient(transport=AsyncHyperTransport()) as c:
        connections = set()
        for _ in range(5):
            r = await c.get(f"{base}/hello")
            assert r.text == "hello"
            connections.add(r.headers["x-connection"])
        r = await c.get(f"{base}/moved", follow_redirects=True)
        assert (r.text, r.history[0].status_code) == ("hello", 301)
        r = await c.get(f"{base}/gz/lines.txt")
        assert r.headers["content-encoding"] == "gzip"
        assert r.content == LINES
        connections.add(r.headers["x-connection"])
    assert len(connections) == 1


async def test_nginx_http2_multiplexes_on_one_connection(nginx: tuple[str, str]) -> None:
    _, h2 = nginx
    async with httpx.AsyncClient(transport=AsyncHyperTransport(http1=False, http2=True)) as c:
        responses: list[httpx.Response] = []

        async def one() -> None:
            responses.append(await c.get(f"{h2}/gz/lines.txt"))

        async with anyio.create_task_group() as tg:
            for _ in range(25):
                tg.start_soon(one)
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert {r.content for r in responses} == {LINES}
    assert len({r.headers["x-connection"] for r in responses}) == 1


def test_nginx_from_the_sync_transport(nginx: tuple[str, str]) -> None:
    base, h2 = nginx
    with httpx.Client(transport=HyperTransport()) as c:
        assert [c.get(f"{base}/hello").text for _ in range(3)] == ["hello"] * 3
        assert c.get(f"{base}/moved", follow_redirects=True).text == "hello"
        assert c.get(f"{base}/gz/lines.txt").content == LINES
    with httpx.Client(transport=HyperTransport(http1=False, http2=True)) as c:
        r = c.get(f"{h2}/hello")
        assert (r.http_version, r.text) == ("HTTP/2", "hello")


async def test_nginx_1_gib_download_in_constant_memory(nginx: tuple[str, str]) -> None:
    base, _ = nginx
    async with httpx.AsyncClient(transport=AsyncHyperTransport()) as c:
        before = peak = rss()
        started = time.monotonic()
        size = 0
        async with c.stream("GET", f"{base}/gib") as r:
            assert r.headers["content-length"] == str(GIB)
            async for chunk in r.aiter_raw():
                size += len(chunk)
                if size % (64 << 20) < len(chunk):
                    peak = max(peak, rss())
        elapsed = time.monotonic() - started
    assert size == GIB
    assert peak - before < MEMORY_BOUND, f"grew {(peak - before) >> 20} MiB"
    assert elapsed < DOWNLOAD_BOUND


def test_nginx_1_gib_download_in_constant_memory_sync(nginx: tuple[str, str]) -> None:
    base, _ = nginx
    with httpx.Client(transport=HyperTransport()) as c:
        before = peak = rss()
        started = time.monotonic()
        size = 0
        with c.stream("GET", f"{base}/gib") as r:
            for chunk in r.iter_raw():
                size += len(chunk)
                if size % (64 << 20) < len(chunk):
                    peak = max(peak, rss())
        elapsed = time.monotonic() - started
    assert size == GIB
    assert peak - before < MEMORY_BOUND, f"grew {(peak - before) >> 20} MiB"
    assert elapsed < DOWNLOAD_BOUND


# -- hypercorn ---------------------------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_hypercorn_streamed_uploads(hypercorn: str, http2: bool) -> None:
    transport = AsyncHyperTransport(http1=not http2, http2=http2)
    async with httpx.AsyncClient(transport=transport) as c:
        for _ in range(2):
            r = await c.post(f"{hypercorn}/up", content=chunks(64, 16384))
            version, size, digest = r.text.split()
            assert version == ("2" if http2 else "1.1")
            assert (int(size), digest) == (64 * 16384, digest_of(64, 16384))
        r = await c.post(f"{hypercorn}/form", data={"a": "b"})
        assert r.text.split()[1] == "3"


def test_hypercorn_sync_upload_from_a_generator(hypercorn: str) -> None:
    with httpx.Client(transport=HyperTransport()) as c:
        r = c.post(f"{hypercorn}/up", content=sync_chunks(32, 10000))
        _, size, digest = r.text.split()
        assert (int(size), digest) == (320_000, digest_of(32, 10000))


# -- python -m hyper_util serve ----------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_serve_echoes_while_the_upload_streams(serve_echo: str, http2: bool) -> None:
    transport = AsyncHyperTransport(http1=not http2, http2=http2)
    sent = b"".join(sync_chunks(256, 16384))  # 4 MiB
    async with (
        httpx.AsyncClient(transport=transport) as c,
        c.stream("POST", f"{serve_echo}/up?x=1", content=chunks(256, 16384)) as r,
    ):
        # The head arrives before the upload is over (the echo streams
        # it back): reading the response is what lets the upload go on.
        received = b"".join([chunk async for chunk in r.aiter_raw()])
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /up?x=1 HTTP/" + (b"2" if http2 else b"1.1"))
    assert body == sent


def test_serve_echo_from_the_sync_transport(serve_echo: str) -> None:
    with httpx.Client(transport=HyperTransport()) as c:
        r = c.post(f"{serve_echo}/sync", content=b"payload", headers={"X-Test": "1"})
        head, _, body = r.content.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /sync HTTP/1.1")
        assert b"X-Test: 1" in head.split(b"\r\n")
        assert body == b"payload"
