"""``AsyncHyperTransport`` under httpx's public API, against our own server.

Every test drives ``httpx.AsyncClient(transport=AsyncHyperTransport(...))``
the way httpx users do (``get``, ``post``, ``stream``, redirects, cookies,
auth, event hooks, ``.json()``) against ``hyper_util.server.serve`` on
loopback, on asyncio, uvloop and trio. What the server saw (method,
target, headers, body digest, connections accepted) is checked against
what was sent. Errors and timeouts: ``test_httpx_errors.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Generator
from typing import Any

import anyio
import httpx
import pytest
from httpx_helpers import CREDENTIALS, Server, State, running_server, wait_until

from hyper_util.client.httpx import AsyncHyperTransport

pytestmark = pytest.mark.anyio


def client(**options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AsyncHyperTransport(**options))


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for i in range(count):
        yield bytes([i % 256]) * size


def expected_digest(count: int, size: int) -> str:
    return hashlib.sha256(b"".join(bytes([i % 256]) * size for i in range(count))).hexdigest()


# -- the basics -------------------------------------------------------------------------


async def test_get_json_headers_and_extensions() -> None:
    async with running_server() as server, client() as c:
        response = await c.get(f"{server.base}/echo/a?b=1", headers={"X-Custom": "yes"})
        assert response.status_code == 200
        assert response.http_version == "HTTP/1.1"
        assert response.reason_phrase == "OK"
        assert response.extensions["reason_phrase"] == b"OK"
        seen = response.json()
        assert (seen["method"], seen["target"], seen["length"]) == ("GET", "/echo/a?b=1", 0)
        names = [name.lower() for name, _ in seen["headers"]]
        # httpx's own headers reach the wire, in httpx's order, once each.
        assert names[:5] == ["host", "accept", "accept-encoding", "connection", "user-agent"]
        assert ["X-Custom", "yes"] in seen["headers"]
        stream = response.extensions["network_stream"]
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", int(server.base[17:]))
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("ssl_object") is None
        assert stream.get_extra_info("socket") is not None


async def test_keep_alive_reuses_one_connection_and_head_status() -> None:
    async with running_server() as server, client() as c:
        for _ in range(5):
            assert (await c.get(f"{server.base}/bytes/100")).content == b"x" * 100
        head = await c.head(f"{server.base}/bytes/100")
        assert head.status_code == 200
        assert head.content == b""
        assert (await c.get(f"{server.base}/status?code=204")).status_code == 204
        assert (await c.get(f"{server.base}/nowhere")).status_code == 404
    assert server.accepted == 1


async def test_post_bytes_form_json_and_files() -> None:
    async with running_server() as server, client() as c:
        r = await c.post(f"{server.base}/echo", content=b"abc")
        assert (r.json()["length"], r.json()["sha256"]) == (3, hashlib.sha256(b"abc").hexdigest())
        r = await c.post(f"{server.base}/echo", data={"a": "1", "b": "2"})
        assert r.json()["length"] == len(b"a=1&b=2")
        r = await c.put(f"{server.base}/echo", json={"k": [1, 2]})
        assert r.json()["method"] == "PUT"
        assert json.loads(c.build_request("PUT", "/", json={"k": [1, 2]}).content) == {"k": [1, 2]}
        sent = c.build_request("PUT", "/", json={"k": [1, 2]}).content
        assert r.json()["sha256"] == hashlib.sha256(sent).hexdigest()
        r = await c.post(f"{server.base}/echo", files={"f": ("name.txt", b"z" * 5000)})
        assert r.json()["length"] > 5000


# -- streaming ---------------------------------------------------------------------------


async def test_streamed_upload_from_an_async_generator() -> None:
    async with running_server() as server, client() as c:
        r = await c.post(f"{server.base}/echo", content=chunks(64, 16384))
        seen = r.json()
        assert seen["length"] == 64 * 16384
        assert seen["sha256"] == expected_digest(64, 16384)
        assert ["Transfer-Encoding", "chunked"] in seen["headers"]


async def test_streamed_download_iterates_as_it_arrives() -> None:
    async with running_server() as server, client() as c:
        async with c.stream("GET", f"{server.base}/stream?count=50&size=10000") as r:
            assert r.headers.get("transfer-encoding") == "chunked"
            size = 0
            async for chunk in r.aiter_raw():
                size += len(chunk)
        assert size == 500_000
        # Read to the end: the connection went back to the pool.
        await c.get(f"{server.base}/bytes/1")
    assert server.accepted == 1


# httpx's own async generators (aiter_raw...) are left unfinished by a reader
# that stops early, which trio reports when it collects them.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_closing_a_stream_early_closes_its_connection() -> None:
    async with running_server() as server, client() as c:
        async with c.stream("GET", f"{server.base}/stream?count=200&size=10000") as r:
            async for _ in r.aiter_raw():
                break
        # Not read to the end: that connection is not reused.
        assert (await c.get(f"{server.base}/bytes/1")).content == b"x"
    assert server.accepted == 2


async def test_cancelling_mid_body_leaves_the_pool_usable() -> None:
    async with running_server() as server, client() as c:
        got = 0
        with anyio.move_on_after(0.5) as scope:
            async with c.stream("GET", f"{server.base}/slow-body?delay=30") as r:
                async for chunk in r.aiter_raw():
                    got += len(chunk)
        assert scope.cancelled_caught
        assert got == len(b"first")
        assert (await c.get(f"{server.base}/bytes/3")).content == b"xxx"
    assert server.accepted == 2


# -- httpx's features above the transport ------------------------------------------------


async def test_redirects_are_followed_on_one_connection() -> None:
    async with running_server() as server, client() as c:
        r = await c.get(f"{server.base}/redirect/3", follow_redirects=True)
        assert r.json() == {"redirected": True}
        assert [h.status_code for h in r.history] == [302, 302, 302]
        r = await c.get(f"{server.base}/redirect/1")
        assert r.status_code == 302
        assert r.next_request is not None
    assert server.accepted == 1


async def test_cookies_round_trip() -> None:
    async with running_server() as server, client() as c:
        await c.get(f"{server.base}/cookies/set?flavour=oat&size=big")
        assert c.cookies["flavour"] == "oat"
        r = await c.get(f"{server.base}/cookies")
        assert sorted(r.json()["cookie"].split("; ")) == ["flavour=oat", "size=big"]


async def test_basic_auth_and_a_challenge_flow_that_resends_the_body() -> None:
    class NonceAuth(httpx.Auth):
        requires_request_body = True

        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
            response = yield request
            if response.status_code == 401:
                request.headers["Authorization"] = "Nonce " + response.headers["x-nonce"]
                yield request

    async with running_server() as server, client() as c:
        assert (await c.get(f"{server.base}/basic-auth")).status_code == 401
        r = await c.get(f"{server.base}/basic-auth", auth=CREDENTIALS)
        assert r.json() == {"authenticated": True}
        r = await c.post(f"{server.base}/challenge", content=b"body", auth=NonceAuth())
        assert r.json() == {"authenticated": True}
        assert len(r.history) == 1


async def test_event_hooks_see_every_request_and_response() -> None:
    seen: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        seen.append(f"> {request.method} {request.url.path}")

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        seen.append(f"< {response.status_code} {len(response.content)}")

    async with running_server() as server:
        hooks: dict[str, list[Any]] = {"request": [on_request], "response": [on_response]}
        async with httpx.AsyncClient(transport=AsyncHyperTransport(), event_hooks=hooks) as c:
            r = await c.get(f"{server.base}/redirect/1", follow_redirects=True)
            r.raise_for_status()
    assert seen == ["> GET /redirect/1", "< 302 0", "> GET /redirect/0", "< 200 20"]


async def test_raise_for_status_and_base_url_params() -> None:
    async with running_server() as server:
        transport = AsyncHyperTransport()
        async with httpx.AsyncClient(transport=transport, base_url=server.base) as c:
            r = await c.get("/echo", params={"q": "a b"})
            assert r.json()["target"] == "/echo?q=a+b"
            with pytest.raises(httpx.HTTPStatusError):
                (await c.get("/status", params={"code": 503})).raise_for_status()


# -- HTTP/2 ------------------------------------------------------------------------------


async def test_http2_prior_knowledge_multiplexes_on_one_connection() -> None:
    state = State()
    async with running_server(state) as server, client(http1=False, http2=True) as c:
        with anyio.fail_after(10):
            # Each answer waits until all 20 requests are in: only multiplexing
            # on the one connection lets them all arrive.
            async with anyio.create_task_group() as tg:
                results: list[httpx.Response] = []

                async def one() -> None:
                    results.append(await c.get(f"{server.base}/gather?n=20"))

                for _ in range(20):
                    tg.start_soon(one)
        assert [r.http_version for r in results] == ["HTTP/2"] * 20
        assert "reason_phrase" not in results[0].extensions
        r = await c.post(f"{server.base}/echo", content=chunks(16, 4096))
        assert r.json()["version"] == "HTTP/2"
        assert r.json()["sha256"] == expected_digest(16, 4096)
    assert server.accepted == 1


async def test_http2_flag_alone_keeps_http1_for_plain_http() -> None:
    # As httpcore: without TLS there is no ALPN, so http2=True with http1 on
    # still speaks HTTP/1.1.
    async with running_server() as server, client(http2=True) as c:
        r = await c.get(f"{server.base}/echo")
        assert r.http_version == "HTTP/1.1"
        assert r.json()["version"] == "HTTP/1.1"


# -- limits and pool ---------------------------------------------------------------------


async def test_max_connections_queues_requests() -> None:
    state = State()
    limits = httpx.Limits(max_connections=2)
    async with (
        running_server(state) as server,
        client(limits=limits) as c,
        anyio.create_task_group() as tg,
    ):
        for _ in range(6):
            tg.start_soon(c.get, f"{server.base}/hold")
        await wait_until(lambda: state.arrived == 2, "two requests in")
        await anyio.sleep(0.05)
        assert state.arrived == 2  # the other four wait for a connection
        state.release.set()
    assert server.accepted == 2


async def test_max_keepalive_connections_closes_the_surplus() -> None:
    state = State()
    limits = httpx.Limits(max_keepalive_connections=1)
    async with running_server(state) as server, client(limits=limits) as c:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(c.get, f"{server.base}/hold")
            await wait_until(lambda: state.arrived == 3, "three requests in")
            state.release.set()
        for _ in range(3):
            await c.get(f"{server.base}/bytes/1")
    # Three connections for the held requests, one kept; the sequential
    # requests after them all used the one kept.
    assert server.accepted == 3


async def test_keepalive_expiry_retires_idle_connections() -> None:
    limits = httpx.Limits(keepalive_expiry=0.05)
    async with running_server() as server, client(limits=limits) as c:
        await c.get(f"{server.base}/bytes/1")
        await anyio.sleep(0.3)
        await c.get(f"{server.base}/bytes/1")
    assert server.accepted == 2


# -- upgrades: network_stream ------------------------------------------------------------


async def test_upgrade_hands_over_the_connection_as_network_stream() -> None:
    async with running_server() as server, client() as c:
        headers = {"upgrade": "toy", "connection": "upgrade"}
        async with c.stream("GET", f"{server.base}/ws-upgrade", headers=headers) as r:
            assert r.status_code == 101
            stream = r.extensions["network_stream"]
            await stream.write(b"hello")
            assert await stream.read(100, timeout=5) == b"HELLO"
            assert stream.get_extra_info("server_addr")[0] == "127.0.0.1"
            await stream.aclose()


async def test_pooled_network_stream_offers_facts_but_no_bytes() -> None:
    async with running_server() as server, client() as c:
        r = await c.get(f"{server.base}/bytes/1")
        with pytest.raises(RuntimeError, match="only after an upgrade"):
            await r.extensions["network_stream"].read(10)


# -- lifetime ----------------------------------------------------------------------------


async def test_transport_without_async_with_and_closed_twice() -> None:
    async with running_server() as server:
        transport = AsyncHyperTransport()
        c = httpx.AsyncClient(transport=transport)
        assert (await c.get(f"{server.base}/bytes/2")).content == b"xx"
        await c.aclose()
        await transport.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", f"{server.base}/"))


async def test_aclose_from_another_task_than_the_first_request() -> None:
    async with running_server() as server:
        transport = AsyncHyperTransport()
        c = httpx.AsyncClient(transport=transport)
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.get, f"{server.base}/bytes/2")
        async with anyio.create_task_group() as tg:
            tg.start_soon(c.aclose)


def test_one_transport_serves_successive_event_loops() -> None:
    # asyncio.run twice (or a test framework's fresh loop per test): the
    # first loop's end closes its client; the second loop starts another.
    transport = AsyncHyperTransport()

    async def once() -> int:
        async with running_server() as server:
            c = httpx.AsyncClient(transport=transport)
            r = await c.get(f"{server.base}/bytes/4")
            return len(r.content)

    assert anyio.run(once) == 4
    assert anyio.run(once, backend="trio") == 4
    assert anyio.run(once) == 4


async def test_serves_many_concurrent_requests_over_http1(server_and_client: Any) -> None:
    server, c = server_and_client
    # A generous timeout: this counts connections, and 100 requests at once
    # under asyncio's debug mode (the asyncio test backend) on a loaded
    # machine took longer than httpx's default 5 s.
    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(lambda: c.get(f"{server.base}/bytes/10", timeout=60))
    assert server.accepted <= 100


@pytest.fixture
async def server_and_client() -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    async with running_server() as server, client() as c:
        yield server, c
