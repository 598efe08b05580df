"""The server's own frame encoder against wsproto's: the same bytes for every length class.

What belongs here: the equivalence test of ``hyper_util.ws._frames`` (a
shortcut beside wsproto's encoder, used for a server's whole messages
without extensions): each message is encoded by both and by a wsproto
connection after other traffic, and a wsproto client must read it back.
"""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Message, TextMessage

from hyper_util.ws._frames import server_frame

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def _wsproto(message: str | bytes) -> bytes:
    if isinstance(message, str):
        return Connection(ConnectionType.SERVER).send(TextMessage(data=message))
    return Connection(ConnectionType.SERVER).send(BytesMessage(data=message))


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("kind", ["text", "binary", "text non-ascii"])
def test_same_bytes_as_wsproto(length: int, kind: str) -> None:
    message: str | bytes
    if kind == "binary":
        message = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    elif kind == "text":
        message = "x" * length
    else:
        message = ("é" * length)[: max(0, length // 2)]
    frame = server_frame(message)
    assert frame == _wsproto(message)
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(frame)
    received = list(client.events())
    assert len(received) == 1
    event = received[0]
    assert isinstance(event, TextMessage if isinstance(message, str) else BytesMessage)
    assert event.data == message
    assert event.message_finished


def test_interleaves_with_wsproto_whole_messages() -> None:
    # Whole messages leave wsproto's outbound state as it was: a fragmented
    # message after one of ours (and ours after one of its) is still right.
    server = Connection(ConnectionType.SERVER)
    wire = server_frame("one")
    wire += server.send(TextMessage(data="tw", message_finished=False))
    wire += server.send(TextMessage(data="o", message_finished=True))
    wire += server_frame(b"three")
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(wire)
    data = [
        (type(e).__name__, e.data, e.message_finished)
        for e in client.events()
        if isinstance(e, Message)
    ]
    assert data == [
        ("TextMessage", "one", True),
        ("TextMessage", "tw", False),
        ("TextMessage", "o", True),
        ("BytesMessage", b"three", True),
    ]


def test_lone_surrogate_is_refused_like_wsproto() -> None:
    with pytest.raises(UnicodeEncodeError):
        _wsproto("\ud800")
    with pytest.raises(UnicodeEncodeError):
        server_frame("\ud800")
