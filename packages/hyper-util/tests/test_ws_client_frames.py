"""The server's own reader of client frames against wsproto's: the same messages and closes.

What belongs here: the equivalence test of ``hyper_util.ws._frames.ClientFrames``
(a shortcut beside wsproto's decoder, used by a server without extensions
for whole, small, text or binary frames). Each byte stream (frames a
wsproto client wrote, and broken ones written by hand) is read by a wsproto
server alone and by ``ClientFrames`` with wsproto for the rest, cut into
pieces of several sizes; what the application would see (whole messages,
pings, pongs, the close and its code) must be the same.
"""

from __future__ import annotations

import os
import struct

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)

from hyper_util.ws._frames import OWN_FRAME_MAX, ClientFrames, Raw, unmask

LIMIT = 1 << 20


def _client() -> Connection:
    return Connection(ConnectionType.CLIENT)


def _masked(first: int, payload: bytes, *, length_bytes: int = 0, mask: bool = True) -> bytes:
    """A client frame written by hand (for what wsproto's client will not write)."""
    size = len(payload)
    second = 0x80 if mask else 0
    if length_bytes == 2 or (not length_bytes and 126 <= size < 65536):
        head = struct.pack("!BBH", first, second | 126, size)
    elif length_bytes == 8 or (not length_bytes and size >= 65536):
        head = struct.pack("!BBQ", first, second | 127, size)
    else:
        head = struct.pack("!BB", first, second | size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + unmask(key, payload)


def _stream(*events: Event) -> bytes:
    client = _client()
    return b"".join(client.send(event) for event in events)


def _observe(conn: Connection, out: list[object], parts: list[str | bytes], data: bytes) -> bool:
    conn.receive_data(data)
    for event in conn.events():
        if isinstance(event, Message):
            parts.append(event.data)
            if event.message_finished:
                out.append(parts[0][:0].join(parts))  # type: ignore[arg-type]
                parts.clear()
        elif isinstance(event, (Ping, Pong)):
            out.append((type(event).__name__, bytes(event.payload)))
        elif isinstance(event, CloseConnection):
            out.append(("close", event.code))
            return True
    return False


def _by_wsproto(chunks: list[bytes]) -> list[object]:
    conn = Connection(ConnectionType.SERVER)
    out: list[object] = []
    parts: list[str | bytes] = []
    for chunk in chunks:
        if _observe(conn, out, parts, chunk):
            break
    return out


def _by_client_frames(chunks: list[bytes]) -> list[object]:
    conn = Connection(ConnectionType.SERVER)
    frames = ClientFrames(LIMIT)
    out: list[object] = []
    parts: list[str | bytes] = []
    for chunk in chunks:
        for item in frames.split(chunk):
            if isinstance(item, Raw):
                if _observe(conn, out, parts, item.data):
                    return out
            else:
                out.append(item)
    return out


def _cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] if size else [data]


STREAMS = {
    "whole messages of every length class": _stream(
        *(
            message
            for length in (0, 1, 125, 126, 127, 65535, OWN_FRAME_MAX, OWN_FRAME_MAX + 1, 70000)
            for message in (TextMessage(data="é" * (length // 2)), BytesMessage(data=b"b" * length))
        )
    ),
    "fragments with control frames between them": _stream(
        TextMessage(data="one"),
        TextMessage(data="fir", message_finished=False),
        Ping(payload=b"p1"),
        TextMessage(data="st", message_finished=False),
        Pong(payload=b"p2"),
        TextMessage(data="!", message_finished=True),
        BytesMessage(data=b"two"),
        BytesMessage(data=b"x" * 70000, message_finished=False),
        BytesMessage(data=b"y", message_finished=True),
        TextMessage(data="three"),
        CloseConnection(code=1000, reason="bye"),
    )
    + _stream(TextMessage(data="after the close")),
    "invalid UTF-8 in a whole text frame": _stream(TextMessage(data="ok"))
    + _masked(0x81, b"\xed\xa0\x80")
    + _stream(TextMessage(data="never")),
    "a length in more bytes than needed": _stream(BytesMessage(data=b"ok"))
    + _masked(0x82, b"short", length_bytes=2),
    "a 64-bit length for a short frame": _masked(0x82, b"x" * 200, length_bytes=8),
    "an unmasked frame": _stream(TextMessage(data="ok")) + _masked(0x81, b"plain", mask=False),
    "a reserved bit": _masked(0x81 | 0x40, b"rsv1"),
    "a reserved opcode": _masked(0x83, b"what"),
    "a whole message inside a fragmented one": _stream(
        TextMessage(data="open", message_finished=False)
    )
    + _masked(0x81, b"whole"),
    "a continuation with no message open": _masked(0x80, b"cont"),
}


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("piece", [0, 5, 7, 64, 1000, 65536])
def test_same_messages_and_close_as_wsproto(name: str, piece: int) -> None:
    chunks = _cut(STREAMS[name], piece)
    expected = _by_wsproto(chunks)
    assert expected  # every stream delivers or fails something
    assert _by_client_frames(chunks) == expected


def test_simple_frames_never_reach_wsproto() -> None:
    frames = ClientFrames(LIMIT)
    data = _stream(TextMessage(data="hé"), BytesMessage(data=b"\x00\x01"), TextMessage(data=""))
    assert frames.split(data) == ["hé", b"\x00\x01", ""]


def test_frames_over_the_message_limit_are_wsprotos() -> None:
    # A frame bigger than max_message_size goes to wsproto, whose parts the
    # connection counts against the limit as they come (1009).
    frames = ClientFrames(100)
    items = frames.split(_stream(BytesMessage(data=b"z" * 101)))
    assert [type(item) for item in items] == [Raw]
