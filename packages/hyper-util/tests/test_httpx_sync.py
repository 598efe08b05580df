"""``HyperTransport`` (synchronous) under ``httpx.Client``, from plain threads.

The test server runs on its own event loop thread (``thread_server``); the
tests themselves are ordinary synchronous functions, as a requests-style
program is, and the transport runs its connections on a loop thread of its
own: asyncio, uvloop or trio (``backend``). Checked: httpx's API end to
end, HTTP/2 multiplexing of requests from many threads, each timeout and
error kind, closing streams early, and the transport's lifetime (close,
interpreter exit without close, fork).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import httpx
import pytest
from httpx_helpers import CREDENTIALS, Server, thread_server

from hyper_util.client.httpx import HyperTransport

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server() -> Iterator[Server]:
    with thread_server() as (running, _):
        yield running


@pytest.fixture
def make_client(
    backend: tuple[str, dict[str, Any]],
) -> Iterator[Any]:
    made: list[httpx.Client] = []

    def make(timeout: Any = 5.0, **options: Any) -> httpx.Client:
        name, backend_options = backend
        transport = HyperTransport(backend=name, backend_options=backend_options, **options)
        c = httpx.Client(transport=transport, timeout=timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def upload(count: int, size: int) -> Iterator[bytes]:
    for i in range(count):
        yield bytes([i % 256]) * size


def test_get_post_json_and_streams(server: Server, make_client: Any) -> None:
    with make_client() as c:
        r = c.get(f"{server.base}/echo/x?y=1")
        assert r.json()["target"] == "/echo/x?y=1"
        assert r.extensions["reason_phrase"] == b"OK"
        assert r.extensions["network_stream"].get_extra_info("server_addr")[0] == "127.0.0.1"
        r = c.post(f"{server.base}/echo", json={"a": 1})
        assert r.json()["method"] == "POST"
        r = c.post(f"{server.base}/echo", content=upload(64, 16384))
        expected = hashlib.sha256(b"".join(upload(64, 16384))).hexdigest()
        assert (r.json()["length"], r.json()["sha256"]) == (64 * 16384, expected)
        with c.stream("GET", f"{server.base}/stream?count=100&size=20000") as s:
            assert sum(len(chunk) for chunk in s.iter_raw()) == 2_000_000
        assert c.get(f"{server.base}/bytes/70000").content == b"x" * 70000
    assert server.accepted == 1


def test_redirects_cookies_auth_and_hooks(server: Server, make_client: Any) -> None:
    seen: list[int] = []
    with make_client() as c:
        c.event_hooks["response"] = [lambda response: seen.append(response.status_code)]
        r = c.get(f"{server.base}/redirect/2", follow_redirects=True)
        assert r.json() == {"redirected": True}
        c.get(f"{server.base}/cookies/set?k=v")
        assert c.get(f"{server.base}/cookies").json() == {"cookie": "k=v"}
        assert c.get(f"{server.base}/basic-auth", auth=CREDENTIALS).status_code == 200
    assert seen == [302, 302, 200, 200, 200, 200]


def test_closing_a_stream_early_and_reading_it_whole(server: Server, make_client: Any) -> None:
    with make_client() as c:
        with c.stream("GET", f"{server.base}/stream?count=500&size=10000") as s:
            for _ in s.iter_raw():
                break
        with c.stream("GET", f"{server.base}/stream?count=5&size=10") as s:
            assert s.read() == b"A" * 10 + b"B" * 10 + b"C" * 10 + b"D" * 10 + b"E" * 10
        c.get(f"{server.base}/bytes/1")
    # The stream closed early took its connection with it; the one read to
    # the end was reused.
    assert server.accepted == 2


def test_http2_multiplexes_requests_from_many_threads(server: Server, make_client: Any) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    with make_client(http1=False, http2=True) as c:

        def one() -> None:
            try:
                results.append(c.get(f"{server.base}/gather?n=16").http_version)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    assert not errors, errors
    assert results == ["HTTP/2"] * 16
    assert server.accepted == 1


def test_timeouts(server: Server, make_client: Any) -> None:
    with make_client(httpx.Timeout(5, read=1.0)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get(f"{server.base}/slow-head?delay=5")
        with (
            c.stream("GET", f"{server.base}/slow-body?delay=5") as s,
            pytest.raises(httpx.ReadTimeout),
        ):
            s.read()
    pooled = make_client(httpx.Timeout(5, pool=0.2), limits=httpx.Limits(max_connections=1))
    # The only connection is taken by the unread stream.
    with (
        pooled as c,
        c.stream("GET", f"{server.base}/stream?count=200&size=10000"),
        pytest.raises(httpx.PoolTimeout),
    ):
        c.get(f"{server.base}/bytes/1")


def test_errors(make_client: Any) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with make_client() as c:
        with pytest.raises(httpx.ConnectError):
            c.get(f"http://127.0.0.1:{port}/")
        with pytest.raises(httpx.UnsupportedProtocol):
            c.get("ftp://127.0.0.1/")


def test_request_stream_errors_come_out_unchanged(server: Server, make_client: Any) -> None:
    def failing() -> Generator[bytes]:
        yield b"some"
        raise LookupError("the user's own error")

    with make_client() as c:
        with pytest.raises(LookupError, match="the user's own error"):
            c.post(f"{server.base}/echo", content=failing())
        assert c.get(f"{server.base}/bytes/1").content == b"x"


def test_upgrade_network_stream(server: Server, make_client: Any) -> None:
    with make_client() as c:
        headers = {"upgrade": "toy", "connection": "upgrade"}
        with c.stream("GET", f"{server.base}/ws-upgrade", headers=headers) as r:
            assert r.status_code == 101
            stream = r.extensions["network_stream"]
            stream.write(b"sync")
            assert stream.read(100, timeout=5) == b"SYNC"
            stream.close()


def test_close_stops_the_loop_thread_and_refuses_later_requests(
    server: Server, backend: tuple[str, dict[str, Any]]
) -> None:
    before = threading.active_count()
    transport = HyperTransport(backend=backend[0], backend_options=backend[1])
    with httpx.Client(transport=transport) as c:
        c.get(f"{server.base}/bytes/1")
        assert threading.active_count() == before + 1
    assert threading.active_count() == before
    with pytest.raises(RuntimeError, match="closed"):
        transport.handle_request(httpx.Request("GET", f"{server.base}/bytes/1"))


def test_an_unclosed_transport_does_not_hold_up_interpreter_exit(server: Server) -> None:
    program = (
        "import httpx\n"
        "from hyper_util.client.httpx import HyperTransport\n"
        "client = httpx.Client(transport=HyperTransport())\n"
        f"print(client.get({server.base + '/bytes/3'!r}).text)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"xxx\n"
    assert time.monotonic() - started < 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_gets_its_own_loop_and_connections(server: Server) -> None:
    program = (
        "import os, httpx\n"
        "from hyper_util.client.httpx import HyperTransport\n"
        "client = httpx.Client(transport=HyperTransport())\n"
        f"url = {server.base + '/bytes/2'!r}\n"
        "assert client.get(url).text == 'xx'\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = client.get(url).text == 'xx'\n"
        "    client.close()\n"
        "    os._exit(0 if ok else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "assert client.get(url).text == 'xx'\n"
        "client.close()\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", program],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"0\n"
    # Parent: one connection kept; child: one of its own.
    assert server.accepted == 2
