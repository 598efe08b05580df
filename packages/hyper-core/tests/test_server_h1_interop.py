"""The HTTP/1.1 server against real clients: curl and httpx.

What belongs here: exchanges between our server connection and clients we
did not write, over a real loopback socket. Wire-level edge cases are in
``test_server_h1_robustness.py``.

Strategy: the server runs in the test's task group (``conftest.serve_h1``)
with a small routing service that records each request; curl runs as a
subprocess through ``anyio.run_process``, so the server keeps running in the
same event loop while the test awaits curl. httpx runs in the same loop as
an ``AsyncClient``. Connection reuse is judged twice: by the client
(curl's ``%{num_connects}``) and by the server (how many connections it
accepted). curl is required: a missing curl fails the suite, it never
skips. Clients ignore proxy settings from the environment.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import httpx
import pytest

from hyper_core.body import Body, Full, Incoming, StreamBody, collect
from hyper_core.error import HyperError
from hyper_core.http import Request, Response, Version

if TYPE_CHECKING:
    from conftest import LoopbackServer, ServeH1

pytestmark = pytest.mark.anyio

CURL = "/usr/bin/curl"
# Seconds for one curl run or one httpx exchange; all are loopback-local.
CLIENT_TIMEOUT = 30.0
UPLOAD_SIZE = 1024 * 1024  # bytes: the 1 MiB upload the interop checklist asks for
STREAM_CHUNK = 64 * 1024  # bytes per chunk of the streamed /stream response
STREAM_CHUNKS = 64  # so /stream sends 4 MiB


@dataclass
class Seen:
    """A request as the service received it."""

    method: str
    path: str
    version: Version
    headers: dict[str, str]


class Routes:
    """The service: a few routes, each request recorded on arrival.

    ``/echo`` streams the request body back as the response body, so both
    directions stream at once; ``/collect`` reads it all, then answers it;
    ``/refuse`` answers 413 without reading the body; ``/stream`` sends 4 MiB
    of generated chunks; anything else answers ``hello <path>``.
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []

    async def service(self, request: Request[Incoming]) -> Response[Body]:
        path = request.uri.path
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.seen.append(Seen(str(request.method), path, request.version, headers))
        if path == "/echo":
            return Response(200, body=request.body)
        if path == "/collect":
            data = (await collect(request.body)).data
            return Response(200, headers=[("x-received", str(len(data)))], body=Full(data))
        if path == "/refuse":
            return Response(413, body=Full(b"too large\n"))
        if path == "/stream":
            return Response(200, body=StreamBody(_generated_chunks()))
        return Response(200, headers=[("content-type", "text/plain")], body=Full(hello(path)))


def hello(path: str) -> bytes:
    return f"hello {path}\n".encode()


async def _generated_chunks() -> AsyncIterator[bytes]:
    for n in range(STREAM_CHUNKS):
        yield bytes([n]) * STREAM_CHUNK


def stream_payload() -> bytes:
    return b"".join(bytes([n]) * STREAM_CHUNK for n in range(STREAM_CHUNKS))


async def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run curl with ``args``; fail (never skip) if it is missing or fails."""
    assert os.access(CURL, os.X_OK), (
        f"curl is required by the interop suite and was not found at {CURL}: "
        "install the Debian package 'curl' (.ci/run does)"
    )
    command = [CURL, "--silent", "--show-error", "--noproxy", "*", "--max-time", "20", *args]
    with anyio.fail_after(CLIENT_TIMEOUT):
        result = await anyio.run_process(command, check=False)
    assert result.returncode == 0, (
        f"curl exited with {result.returncode}: {result.stderr.decode(errors='replace')}"
    )
    return result


async def wait_all_closed(server: LoopbackServer) -> None:
    """Wait for every accepted connection to finish, and check none failed oddly."""
    with anyio.fail_after(CLIENT_TIMEOUT):
        while len(server.outcomes) < server.accepted:
            await server.next_outcome()
    assert server.foreign_errors() == []


@pytest.fixture
def upload(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(UPLOAD_SIZE)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    return path, data


# -- curl --------------------------------------------------------------------


async def test_curl_keep_alive_two_urls_one_connection(serve_h1: ServeH1) -> None:
    routes = Routes()
    async with serve_h1(routes.service) as server:
        result = await curl(
            "-o", "/dev/null", "-o", "/dev/null",
            "-w", "%{http_code} %{num_connects}\n",
            f"{server.url}/a", f"{server.url}/b",
        )  # fmt: skip
        accepted = server.accepted
    # num_connects counts the new connections each transfer made.
    assert result.stdout.decode().splitlines() == ["200 1", "200 0"]
    assert accepted == 1
    assert [s.path for s in routes.seen] == ["/a", "/b"]


async def test_curl_bodies_of_two_keep_alive_responses(serve_h1: ServeH1) -> None:
    routes = Routes()
    async with serve_h1(routes.service) as server:
        result = await curl(f"{server.url}/first", f"{server.url}/second")
    assert result.stdout == hello("/first") + hello("/second")


@pytest.mark.parametrize("route", ["/echo", "/collect"])
async def test_curl_chunked_upload_echoed_byte_exact(
    serve_h1: ServeH1, upload: tuple[Path, bytes], tmp_path: Path, route: str
) -> None:
    path, data = upload
    out = tmp_path / "out.bin"
    routes = Routes()
    async with serve_h1(routes.service) as server:
        result = await curl(
            "--data-binary", f"@{path}", "-H", "Transfer-Encoding: chunked",
            "-o", str(out), "-w", "%{http_code}", f"{server.url}{route}",
        )  # fmt: skip
        await wait_all_closed(server)
    assert result.stdout == b"200"
    assert out.read_bytes() == data
    (seen,) = routes.seen
    assert seen.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in seen.headers


async def test_curl_expect_100_continue_upload(
    serve_h1: ServeH1, upload: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, data = upload
    out = tmp_path / "out.bin"
    routes = Routes()
    async with serve_h1(routes.service) as server:
        started = anyio.current_time()
        # curl waits up to --expect100-timeout for the 100 before sending the
        # body anyway; 10 s makes a missing 100 both visible and slow.
        result = await curl(
            "-v", "--expect100-timeout", "10", "-H", "Expect: 100-continue",
            "--data-binary", f"@{path}", "-o", str(out), f"{server.url}/collect",
        )  # fmt: skip
        elapsed = anyio.current_time() - started
    log = result.stderr.decode(errors="replace")
    assert "> Expect: 100-continue" in log
    assert "< HTTP/1.1 100 Continue" in log, log
    assert "< HTTP/1.1 200 OK" in log
    assert out.read_bytes() == data
    assert elapsed < 5.0, f"the 100 came late or not at all ({elapsed:.1f}s):\n{log}"
    assert routes.seen[0].headers.get("expect") == "100-continue"


async def test_curl_expect_100_not_sent_when_service_answers_without_reading(
    serve_h1: ServeH1, upload: tuple[Path, bytes]
) -> None:
    path, _ = upload
    async with serve_h1(Routes().service) as server:
        started = anyio.current_time()
        result = await curl(
            "-v", "--expect100-timeout", "10", "-H", "Expect: 100-continue",
            "--data-binary", f"@{path}", "-o", "/dev/null", "-w", "%{http_code}",
            f"{server.url}/refuse",
        )  # fmt: skip
        elapsed = anyio.current_time() - started
        await wait_all_closed(server)
    log = result.stderr.decode(errors="replace")
    assert result.stdout == b"413"
    # 100 is written only when the service reads the body; this one never does.
    assert "100 Continue" not in log, log
    assert elapsed < 5.0, f"the final response waited for the body ({elapsed:.1f}s)"


async def test_curl_http10(serve_h1: ServeH1) -> None:
    routes = Routes()
    async with serve_h1(routes.service) as server:
        result = await curl("--http1.0", "-v", f"{server.url}/old")
        # HTTP/1.0 without keep-alive: the server ends the connection itself.
        with anyio.fail_after(CLIENT_TIMEOUT):
            outcome = await server.next_outcome()
    log = result.stderr.decode(errors="replace")
    assert result.stdout == hello("/old")
    assert "> GET /old HTTP/1.0" in log
    assert outcome is None or isinstance(outcome, HyperError), repr(outcome)
    (seen,) = routes.seen
    assert seen.version == Version.HTTP_10


async def test_curl_http10_keep_alive(serve_h1: ServeH1) -> None:
    # hyper: an HTTP/1.0 request with "Connection: keep-alive" gets
    # "connection: keep-alive" back and the connection stays open.
    routes = Routes()
    async with serve_h1(routes.service) as server:
        result = await curl(
            "--http1.0", "-H", "Connection: keep-alive",
            "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
            f"{server.url}/a", f"{server.url}/b",
        )  # fmt: skip
        accepted = server.accepted
    assert result.stdout.decode().splitlines() == ["200 1", "200 0"]
    assert accepted == 1


async def test_curl_head_then_get_on_same_connection(serve_h1: ServeH1) -> None:
    routes = Routes()
    async with serve_h1(routes.service) as server:
        result = await curl(
            "-I", f"{server.url}/a",
            "--next", "--silent", "--noproxy", "*", "-w", "|%{http_code} %{num_connects}",
            f"{server.url}/b",
        )  # fmt: skip
    head, _, rest = result.stdout.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
    # hyper sends the Content-Length a GET would have had (RFC 9110 §9.3.2 SHOULD).
    assert fields[b"content-length"] == str(len(hello("/a"))).encode()
    # No body after the HEAD response: the GET that follows reuses the
    # connection and reads its own body (stray bytes would make curl close).
    assert rest == hello("/b") + b"|200 0"
    assert [(s.method, s.path) for s in routes.seen] == [("HEAD", "/a"), ("GET", "/b")]


async def test_curl_large_streamed_response(serve_h1: ServeH1, tmp_path: Path) -> None:
    out = tmp_path / "stream.bin"
    async with serve_h1(Routes().service) as server:
        result = await curl("-D", "-", "-o", str(out), f"{server.url}/stream")
    assert b"transfer-encoding: chunked" in result.stdout.lower()
    assert out.read_bytes() == stream_payload()


async def test_curl_http10_gets_unknown_length_body_close_delimited(
    serve_h1: ServeH1, tmp_path: Path
) -> None:
    # RFC 9112 §6.1: chunked is HTTP/1.1; an HTTP/1.0 client gets a body of
    # unknown length delimited by the close.
    out = tmp_path / "stream.bin"
    async with serve_h1(Routes().service) as server:
        result = await curl("--http1.0", "-D", "-", "-o", str(out), f"{server.url}/stream")
    head = result.stdout.lower()
    assert head.startswith((b"http/1.0 200", b"http/1.1 200"))
    assert b"transfer-encoding" not in head
    assert b"content-length" not in head
    assert out.read_bytes() == stream_payload()


async def test_curl_head_of_streamed_body_then_get_on_same_connection(serve_h1: ServeH1) -> None:
    routes = Routes()
    async with serve_h1(routes.service) as server:
        result = await curl(
            "-I", f"{server.url}/stream",
            "--next", "--silent", "--noproxy", "*", "-w", "|%{http_code} %{num_connects}",
            f"{server.url}/b",
        )  # fmt: skip
    head, _, rest = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    # Not one byte of the 4 MiB body (nor a chunked terminator) follows the
    # HEAD response, so the GET reuses the connection cleanly.
    assert rest == hello("/b") + b"|200 0"


# -- httpx -------------------------------------------------------------------


def httpx_client(server: LoopbackServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=CLIENT_TIMEOUT)


async def test_httpx_get(serve_h1: ServeH1) -> None:
    async with serve_h1(Routes().service) as server, httpx_client(server) as client:
        response = await client.get("/hello")
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.content == hello("/hello")
    assert response.headers["content-length"] == str(len(hello("/hello")))
    # RFC 9110 §6.6.1: an origin server with a clock sends Date.
    assert "date" in response.headers


async def test_httpx_post_streaming_body_echoed(serve_h1: ServeH1) -> None:
    parts = [os.urandom(16 * 1024) for _ in range(64)]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
            await anyio.lowlevel.checkpoint()

    routes = Routes()
    async with serve_h1(routes.service) as server, httpx_client(server) as client:
        response = await client.post("/echo", content=body())
    assert response.status_code == 200
    assert response.content == b"".join(parts)
    assert routes.seen[0].headers.get("transfer-encoding") == "chunked"


async def test_httpx_streams_large_response(serve_h1: ServeH1) -> None:
    received = bytearray()
    async with (
        serve_h1(Routes().service) as server,
        httpx_client(server) as client,
        client.stream("GET", "/stream") as response,
    ):
        async for chunk in response.aiter_bytes():
            received += chunk
    assert response.headers.get("transfer-encoding") == "chunked"
    assert bytes(received) == stream_payload()


async def test_httpx_many_keep_alive_requests_on_one_connection(serve_h1: ServeH1) -> None:
    routes = Routes()
    count = 200
    async with serve_h1(routes.service) as server, httpx_client(server) as client:
        for n in range(count):
            if n % 2:
                payload = f"payload {n}".encode()
                response = await client.post("/collect", content=payload)
                assert (response.status_code, response.content) == (200, payload)
            else:
                response = await client.get(f"/get/{n}")
                assert (response.status_code, response.content) == (200, hello(f"/get/{n}"))
        accepted = server.accepted
    assert accepted == 1
    assert len(routes.seen) == count


async def test_httpx_concurrent_clients(serve_h1: ServeH1) -> None:
    results: dict[int, bytes] = {}
    async with serve_h1(Routes().service) as server, httpx_client(server) as client:

        async def fetch(n: int) -> None:
            response = await client.post("/echo", content=b"%d" % n * 1000)
            results[n] = response.content

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(fetch, n)
        accepted = server.accepted
    assert results == {n: b"%d" % n * 1000 for n in range(20)}
    assert accepted >= 1
