"""The WebSocket client against the ``websockets`` library's server (HTTP/1.1).

What belongs here: ``hyper_util.ws.connect`` with a server no one here wrote:
echo of text and binary, the handshake's fields as the server saw them,
subprotocols, permessage-deflate on and off, fragmented messages both ways
(the server records each frame with ``recv_streaming``), pings both ways,
close codes and reasons both ways, the block's exit code, the message size
limit, a refused handshake with its status, headers and bounded body, the
keep-alive against a live server, and bounded memory when the client stops
reading. The server runs in its own threads (``ws_helpers``), so the client
is tested on asyncio, uvloop and trio alike.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import websockets.exceptions
import websockets.http11
import websockets.sync.server
from websockets.sync.server import ServerConnection
from ws_helpers import websockets_server

from hyper_core.error import ClosedError, UserError
from hyper_core.http import Version
from hyper_util.ws import (
    MAX_REFUSED_BODY_SIZE,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeRefusedError,
    WebSocketError,
    WebSocketProtocolError,
    connect,
)

pytestmark = pytest.mark.anyio


class Recorder:
    """What the server's handler saw, shared with the test across threads."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        self.done = threading.Event()

    async def wait(self) -> dict[str, Any]:
        assert await anyio.to_thread.run_sync(self.done.wait, 10), "the handler did not finish"
        return self.seen


def close_of(exc: websockets.exceptions.ConnectionClosed) -> tuple[int, str] | None:
    return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else None


def echo_recording(recorder: Recorder) -> Any:
    def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        recorder.seen["headers"] = ws.request.headers
        recorder.seen["path"] = ws.request.path
        recorder.seen["subprotocol"] = ws.subprotocol
        try:
            for message in ws:
                ws.send(message)
        except websockets.exceptions.ConnectionClosed as exc:
            recorder.seen["close"] = close_of(exc)
        else:
            closed = ws.protocol.close_rcvd
            recorder.seen["close"] = (closed.code, closed.reason) if closed else None
        finally:
            recorder.done.set()

    return handler


async def test_echo_with_subprotocol_deflate_and_headers() -> None:
    recorder = Recorder()
    async with (
        websockets_server(
            echo_recording(recorder), subprotocols=["chat"], compression="deflate"
        ) as url,
        connect(
            url + "/room?id=7",
            subprotocols=["other", "chat"],
            headers={"Origin": "http://app.test", "Authorization": "Bearer t"},
        ) as ws,
    ):
        assert ws.subprotocol == "chat"
        assert ws.compression == "permessage-deflate"
        assert ws.response.status == 101
        assert ws.http_version is Version.HTTP_11
        assert ws.url == url + "/room?id=7"
        await ws.send("héllo")
        assert await ws.receive() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.receive() == b"\x00\xff"
        big = bytes(range(256)) * 2000  # 512 KB, under the 1 MiB default limit
        await ws.send(big)
        assert await ws.receive() == big
    seen = await recorder.wait()
    assert seen["path"] == "/room?id=7"
    assert seen["subprotocol"] == "chat"
    assert seen["headers"]["Origin"] == "http://app.test"
    assert seen["headers"]["Authorization"] == "Bearer t"
    assert "permessage-deflate" in seen["headers"]["Sec-WebSocket-Extensions"]
    assert seen["close"] == (1000, "")


@pytest.mark.parametrize(("client_deflate", "server"), [(False, "deflate"), (True, None)])
async def test_no_compression_unless_both_sides_want_it(
    client_deflate: bool, server: str | None
) -> None:
    recorder = Recorder()
    async with (
        websockets_server(echo_recording(recorder), compression=server) as url,
        connect(url, per_message_deflate=client_deflate) as ws,
    ):
        assert ws.compression is None
        assert "sec-websocket-extensions" not in ws.response.headers
        await ws.send("plain")
        assert await ws.receive() == "plain"
    seen = await recorder.wait()
    assert ("Sec-WebSocket-Extensions" in seen["headers"]) is client_deflate


async def test_no_subprotocol_chosen() -> None:
    async with (
        websockets_server(echo_recording(Recorder())) as url,
        connect(url, subprotocols=["chat"]) as ws,
    ):
        assert ws.subprotocol is None


async def test_fragmented_messages_both_ways() -> None:
    recorder = Recorder()

    def handler(ws: ServerConnection) -> None:
        recorder.seen["frames"] = [list(ws.recv_streaming()) for _ in range(3)]
        ws.send(["frag", "mented ", "text"])
        ws.send([b"\x01", b"\x02\x03"])
        ws.close()
        recorder.done.set()

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"a" * 10, b"b" * 20_000, b"c"):
            yield piece

    async with websockets_server(handler, compression=None) as url, connect(url) as ws:
        await ws.send_fragments(["one ", "two ", "three"])
        await ws.send_fragments(pieces())
        await ws.send_fragments(["single"])
        await ws.send_fragments([])  # nothing at all goes out
        assert await ws.receive() == "fragmented text"
        assert await ws.receive() == b"\x01\x02\x03"
        with pytest.raises(ConnectionClosedOK):
            await ws.receive()
    seen = await recorder.wait()
    assert seen["frames"] == [
        ["one ", "two ", "three"],
        [b"a" * 10, b"b" * 20_000, b"c"],
        ["single"],
    ]


async def test_fragments_of_mixed_types_fail_the_message_with_1011() -> None:
    recorder = Recorder()
    async with (
        websockets_server(echo_recording(recorder), compression=None) as url,
        connect(url) as ws,
    ):
        with pytest.raises(TypeError):
            await ws.send_fragments(["text", b"bytes"])  # caught before anything went out
        await ws.send("still open")
        assert await ws.receive() == "still open"
        with pytest.raises(TypeError):
            await ws.send_fragments([b"a", b"b", "c"])  # b"a" is already out
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.send("too late")
        assert caught.value.code == 1011
    assert (await recorder.wait())["close"] == (1011, "a fragmented message could not be finished")


async def test_pings_both_ways() -> None:
    recorder = Recorder()

    def handler(ws: ServerConnection) -> None:
        recorder.seen["pong"] = ws.ping(b"from server").wait(5)
        ws.send("pinged")
        for message in ws:
            ws.send(message)
        recorder.done.set()

    async with websockets_server(handler) as url, connect(url, ping_interval=None) as ws:
        assert await ws.receive() == "pinged"  # the client answered the server's ping
        rtt = await ws.ping(b"from client")
        assert 0 <= rtt < 5
        assert await ws.ping() >= 0  # random payload
        await ws.pong(b"heartbeat")  # unsolicited: the server ignores it
        await ws.send("after")
        assert await ws.receive() == "after"
    assert (await recorder.wait())["pong"] is True


async def test_client_close_code_and_reason_reach_the_server() -> None:
    recorder = Recorder()
    async with websockets_server(echo_recording(recorder)) as url, connect(url) as ws:
        await ws.close(4000, "client bye")
        assert (ws.close_code, ws.close_reason) == (4000, "client bye")
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.receive()
        assert caught.value.code == 4000
        assert not caught.value.by_peer
        await ws.close()  # idempotent
        with pytest.raises(ConnectionClosedError):
            await ws.send("closed")
    assert (await recorder.wait())["close"] == (4000, "client bye")


@pytest.mark.parametrize(
    ("code", "reason"), [(1005, ""), (1006, ""), (999, ""), (5000, ""), (1000, "é" * 62)]
)
async def test_close_codes_and_reasons_that_cannot_be_sent(code: int, reason: str) -> None:
    async with websockets_server(echo_recording(Recorder())) as url, connect(url) as ws:
        with pytest.raises(UserError):
            await ws.close(code, reason)
        await ws.send("still open")
        assert await ws.receive() == "still open"


async def test_server_close_code_and_reason_reach_the_client() -> None:
    def handler(ws: ServerConnection) -> None:
        for text in ("a", "b", "c"):
            ws.send(text)
        ws.close(4001, "server done")

    async with websockets_server(handler) as url, connect(url) as ws:
        # Messages that arrived before the close come first.
        assert [await ws.receive() for _ in range(3)] == ["a", "b", "c"]
        with pytest.raises(ConnectionClosedError) as caught:
            await anext(ws)  # iteration raises what is not a normal close
        error = caught.value
        assert (error.code, error.reason, error.by_peer) == (4001, "server done", True)
        assert isinstance(error, WebSocketError)
        assert isinstance(error, ClosedError)
        assert str(error) == "the server closed the WebSocket with 4001 (private use): server done"


async def test_normal_close_by_the_server_ends_iteration() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send("only")
        ws.close(1001, "going away")

    async with websockets_server(handler) as url, connect(url) as ws:
        assert [message async for message in ws] == ["only"]
        assert (ws.close_code, ws.close_reason) == (1001, "going away")


@pytest.mark.parametrize(
    ("error", "code"), [(None, 1000), (RuntimeError("app bug"), 1011)], ids=["clean", "raised"]
)
async def test_leaving_the_block_closes_with_a_code(error: Exception | None, code: int) -> None:
    recorder = Recorder()
    raised: list[BaseException] = []
    async with websockets_server(echo_recording(recorder)) as url:
        try:
            async with connect(url) as ws:
                await ws.send("x")
                assert await ws.receive() == "x"
                if error is not None:
                    raise error
        except RuntimeError as exc:
            raised.append(exc)
    assert raised == ([] if error is None else [error])  # as raised, not in an ExceptionGroup
    assert (await recorder.wait())["close"] == (code, "")


async def test_cancelling_the_block_closes_with_1001() -> None:
    recorder = Recorder()
    async with websockets_server(echo_recording(recorder)) as url:
        with anyio.move_on_after(0.3):
            async with connect(url) as ws:
                await ws.receive()  # nothing comes: cancelled here
    assert (await recorder.wait())["close"] == (1001, "")


async def test_message_over_max_message_size_closes_with_1009() -> None:
    recorder = Recorder()

    def handler(ws: ServerConnection) -> None:
        ws.send(b"x" * 1000)
        ws.send(b"y" * 1001)
        try:
            ws.recv(timeout=5)
        except websockets.exceptions.ConnectionClosed as exc:
            recorder.seen["close"] = close_of(exc)
        recorder.done.set()

    async with (
        websockets_server(handler, compression=None) as url,
        connect(url, max_message_size=1000) as ws,
    ):
        assert await ws.receive() == b"x" * 1000  # exactly the limit is fine
        with pytest.raises(WebSocketProtocolError) as caught:
            await ws.receive()
    assert caught.value.code == 1009
    assert not caught.value.by_peer
    assert "1009 (message too big)" in str(caught.value)
    assert (await recorder.wait())["close"] == (1009, "message too big")


def refuse(big: bool) -> Any:
    def process_request(
        connection: ServerConnection, request: websockets.http11.Request
    ) -> websockets.http11.Response:
        response = connection.respond(403, "x" * (MAX_REFUSED_BODY_SIZE * 3) if big else "no\n")
        response.headers["X-Why"] = "not allowed"
        return response

    return process_request


@pytest.mark.parametrize("big", [False, True], ids=["small-body", "large-body"])
async def test_refused_handshake_carries_status_headers_and_bounded_body(big: bool) -> None:
    async with websockets_server(echo_recording(Recorder()), process_request=refuse(big)) as url:
        with pytest.raises(HandshakeRefusedError) as caught:
            async with connect(url):
                raise AssertionError("not reached")  # pragma: no cover
    error = caught.value
    assert error.status == 403
    assert error.headers["x-why"] == "not allowed"
    assert error.version is Version.HTTP_11
    assert error.body == (b"x" * MAX_REFUSED_BODY_SIZE if big else b"no\n")
    assert str(error) == "the server refused the WebSocket handshake with status 403"


async def test_keepalive_pings_keep_a_live_connection_open() -> None:
    recorder = Recorder()
    async with (
        websockets_server(echo_recording(recorder), ping_interval=None) as url,
        connect(url, ping_interval=0.05, ping_timeout=1) as ws,
    ):
        await anyio.sleep(0.5)  # about ten keep-alive rounds, all answered
        await ws.send("alive")
        assert await ws.receive() == "alive"
    assert (await recorder.wait())["close"] == (1000, "")


async def test_a_client_that_stops_reading_holds_the_server_back() -> None:
    # Bounded receive buffering: at most max_queue messages wait in the client;
    # then it stops reading and TCP holds the server's sends.
    sent = [0]
    stop = threading.Event()

    def handler(ws: ServerConnection) -> None:
        message = bytes(65536)
        try:
            while not stop.is_set():
                ws.send(message)
                sent[0] += 1
        except websockets.exceptions.ConnectionClosed:
            pass

    async with (
        websockets_server(handler, compression=None) as url,
        connect(url, max_queue=4, per_message_deflate=False) as ws,
    ):
        before = -1
        with anyio.fail_after(20):
            while sent[0] != before:  # until the server's sends stop going through
                before = sent[0]
                await anyio.sleep(0.5)
        # Held back: what went out fits the queue plus the kernel's buffers.
        assert sent[0] * 65536 < 48 * 1024 * 1024
        stop.set()
        for _ in range(sent[0]):
            assert await ws.receive() == bytes(65536)
