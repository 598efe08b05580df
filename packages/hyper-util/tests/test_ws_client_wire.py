"""The WebSocket client against hand-written servers: the answers real servers do not give.

What belongs here: wire bytes the client must cope with and that no well
behaved server sends: a wrong accept token, an unoffered subprotocol, the
first frame in the same packet as the ``101``, frames that break the
protocol (each with its close code), a compression bomb; and servers that
stall: one that never answers the handshake (``open_timeout``), never
answers pings (keep-alive, 1011), never answers the close (``close_timeout``)
or never reads (send backpressure). The frames are built here byte by byte
from RFC 6455 section 5.2, and the client's frames are unmasked here too.
"""

from __future__ import annotations

import sys
import tracemalloc
import zlib

import anyio
import anyio.abc
import pytest
from ws_helpers import answer_101, raw_server, read_head, rfc_accept, silent_server

from hyper_util.client.legacy import ConnectError
from hyper_util.ws import (
    ConnectionClosedError,
    HandshakeError,
    OpenTimeoutError,
    WebSocketProtocolError,
    connect,
)

pytestmark = pytest.mark.anyio


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A server frame (unmasked), RFC 6455 section 5.2."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    if size < 126:
        head = bytes([first, size])
    elif size < 65536:
        head = bytes([first, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([first, 127]) + size.to_bytes(8, "big")
    return head + payload


class FrameReader:
    """Reads the client's masked frames off a raw stream."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def _need(self, count: int) -> bytes:
        with anyio.fail_after(10):
            while len(self.buffer) < count:
                self.buffer += await self.stream.receive()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    async def next(self) -> tuple[int, bytes]:
        first, second = await self._need(2)
        assert second & 0x80, "a client frame must be masked"
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await self._need(2), "big")
        elif size == 127:
            size = int.from_bytes(await self._need(8), "big")
        mask = await self._need(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(await self._need(size)))
        return first & 0x0F, payload

    async def close_code(self) -> int:
        while True:
            opcode, payload = await self.next()
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")


async def test_the_first_frame_may_share_the_packet_of_the_101() -> None:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        _, fields = await read_head(stream)
        await stream.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + rfc_accept(fields[b"sec-websocket-key"])
            + b"\r\n\r\n"
            + frame(0x1, b"early")
            + frame(0x2, b"bird", fin=False)
            + frame(0x0, b"s")
        )
        await FrameReader(stream).close_code()

    async with raw_server(handle) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
        assert await ws.receive() == "early"
        assert await ws.receive() == b"birds"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=",), "Sec-WebSocket-Accept"),
        ((b"Sec-WebSocket-Protocol: unoffered",), "not offered"),
        ((b"Sec-WebSocket-Extensions: x-webkit-deflate-frame",), "not offered"),
    ],
)
async def test_a_wrong_101_fails_and_closes_the_connection(
    extra: tuple[bytes, ...], message: str
) -> None:
    ended = anyio.Event()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        _, fields = await read_head(stream)
        accept = rfc_accept(fields[b"sec-websocket-key"])
        lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket", b"Connection: Upgrade"]
        if not any(e.startswith(b"Sec-WebSocket-Accept") for e in extra):
            lines.append(b"Sec-WebSocket-Accept: " + accept)
        await stream.send(b"\r\n".join([*lines, *extra]) + b"\r\n\r\n")
        with anyio.fail_after(10):
            while await stream.receive():  # pragma: no cover (nothing is sent)
                pass

    async def wrapped(stream: anyio.abc.SocketStream) -> None:
        try:
            await handle(stream)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            ended.set()  # the client dropped the connection

    async with raw_server(wrapped) as port:
        with pytest.raises(HandshakeError, match=message):
            async with connect(f"ws://127.0.0.1:{port}/", subprotocols=["chat"]):
                raise AssertionError("not reached")  # pragma: no cover
        with anyio.fail_after(5):
            await ended.wait()


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(0x3, b""), 1002),  # a reserved opcode
        (frame(0x1, b"x", rsv1=True), 1002),  # RSV1 without an extension
        (frame(0x9, b"p" * 126), 1002),  # a control frame over 125 bytes
        (frame(0x9, b"p", fin=False), 1002),  # a fragmented control frame
        (frame(0x0, b"x"), 1002),  # a continuation with nothing to continue
        (frame(0x1, b"\xff\xfe"), 1007),  # text that is not UTF-8
        (frame(0x8, b"\x03\xe8\xff"), 1007),  # a close reason that is not UTF-8
        (frame(0x8, b"\x03\xed"), 1002),  # close code 1005 may not be sent
    ],
)
async def test_a_server_breaking_the_protocol_gets_the_right_close_code(
    bad: bytes, code: int
) -> None:
    seen: list[int] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        await answer_101(stream)
        await stream.send(frame(0x1, b"fine") + bad)
        seen.append(await FrameReader(stream).close_code())

    async with (
        raw_server(handle) as port,
        connect(f"ws://127.0.0.1:{port}/", per_message_deflate=False) as ws,
    ):
        assert await ws.receive() == "fine"
        with pytest.raises(WebSocketProtocolError) as caught:
            await ws.receive()
    assert caught.value.code == code
    assert not caught.value.by_peer
    assert seen == [code]


async def test_a_compression_bomb_stops_at_the_size_limit_in_bounded_memory() -> None:
    # 64 MiB of zeros deflate to about 64 KiB: one read of that could inflate
    # to 64 MiB before any size check. The client closes with 1009 having
    # inflated little more than its 1 MiB limit.
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(bytes(64 * 1024 * 1024)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(b"\x00\x00\xff\xff")
    bomb = frame(0x2, payload[:-4], rsv1=True)
    seen: list[int] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        await answer_101(stream, b"Sec-WebSocket-Extensions: permessage-deflate")
        await stream.send(bomb)
        seen.append(await FrameReader(stream).close_code())

    async with raw_server(handle) as port:
        tracemalloc.start()
        try:
            async with connect(f"ws://127.0.0.1:{port}/", max_message_size=1024 * 1024) as ws:
                assert ws.compression == "permessage-deflate"
                with pytest.raises(WebSocketProtocolError) as caught:
                    await ws.receive()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert caught.value.code == 1009
    assert seen == [1009]
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes"


async def test_open_timeout() -> None:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        await read_head(stream)
        await anyio.sleep_forever()

    async with raw_server(handle) as port:
        with anyio.fail_after(5), pytest.raises(OpenTimeoutError) as caught:
            async with connect(f"ws://127.0.0.1:{port}/", open_timeout=0.3):
                raise AssertionError("not reached")  # pragma: no cover
    assert isinstance(caught.value, TimeoutError)
    assert "0.3 s" in str(caught.value)


async def test_unanswered_keepalive_pings_close_with_1011() -> None:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        await answer_101(stream)
        await anyio.sleep_forever()  # reads nothing, answers nothing

    async with raw_server(handle) as port:
        url = f"ws://127.0.0.1:{port}/"
        async with connect(url, ping_interval=0.1, ping_timeout=0.2, close_timeout=0.2) as ws:
            with anyio.fail_after(5), pytest.raises(ConnectionClosedError) as caught:
                await ws.receive()
    assert (caught.value.code, caught.value.reason) == (1011, "keepalive ping timeout")
    assert not caught.value.by_peer


async def test_close_timeout_bounds_an_unanswered_close() -> None:
    got_close = anyio.Event()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        await answer_101(stream)
        assert await FrameReader(stream).close_code() == 1000
        got_close.set()
        await anyio.sleep_forever()  # never answers it

    async with (
        raw_server(handle) as port,
        connect(f"ws://127.0.0.1:{port}/", close_timeout=0.3) as ws,
    ):
        started = anyio.current_time()
        with anyio.fail_after(5):
            await ws.close()
        elapsed = anyio.current_time() - started
        assert got_close.is_set()
        assert 0.25 <= elapsed < 3
        assert ws.close_code == 1000


async def test_a_server_that_stops_reading_blocks_send_not_memory() -> None:
    chunk = bytes(65536)
    sent = 0
    async with (
        silent_server() as port,
        connect(f"ws://127.0.0.1:{port}/", per_message_deflate=False) as ws,
    ):
        with anyio.fail_after(30):
            while True:
                with anyio.move_on_after(1) as scope:
                    await ws.send(chunk)
                if scope.cancelled_caught:
                    break  # send() waits: nothing queues in the client
                sent += len(chunk)
        # A send cancelled midway may have left half a frame: the
        # connection is dropped, never reused with a torn frame.
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.send(b"after")
        assert caught.value.code == 1006
    # What went out before send() blocked fits in the kernel's socket buffers.
    assert 0 < sent < 48 * 1024 * 1024


async def test_wss_without_hyper_tls_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # hyper-util does not depend on hyper-tls; None in sys.modules makes the
    # import fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "hyper_tls", None)
    with pytest.raises(ConnectError, match="pip install hyper-tls"):
        async with connect("wss://127.0.0.1:9/"):
            raise AssertionError("not reached")  # pragma: no cover
