"""``http2.Builder.serve_upgraded_connection``: HTTP/2 after an HTTP/1.1 ``Upgrade: h2c``.

What belongs here: the public entry for a connection that began as an h2c
upgrade (RFC 7540 section 3.2), driven over an in-memory pipe by an h2
client by hand: stream 1 is the upgrade request as HTTP/2, the client's
``HTTP2-Settings`` are in force from the start, one SETTINGS frame is sent,
and a bad ``HTTP2-Settings`` is refused before anything is sent. The
HTTP/1 side (which requests upgrade) is hyper-util's, tested there.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import pytest
from hyperframe.frame import Frame, SettingsFrame

from hyper_core.body import Full, Incoming, SizeHint, collect
from hyper_core.http import Extensions, Request, Response, Version
from hyper_core.rt import receive_or_eof
from hyper_core.server.conn import http2
from hyper_core.testing import memory_pipe

pytestmark = pytest.mark.anyio

INITIAL_WINDOW_SIZE = 0x4
ENABLE_PUSH = 0x2


def settings_value(*pairs: tuple[int, int]) -> str:
    """An ``HTTP2-Settings`` value: base64url of SETTINGS payload, no padding."""
    payload = b"".join(struct.pack(">HI", code, value) for code, value in pairs)
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def body_of(data: bytes) -> Incoming:
    sender, incoming = Incoming.from_channel(
        max_buffer=max(1, len(data)), size_hint=SizeHint.with_exact(len(data))
    )
    if data:
        sender.send_data_nowait(data)
    sender.finish()
    return incoming


class Marker:
    """An extension value that must reach the service unchanged."""


def upgrade_request(settings: str | None, body: bytes = b"") -> Request[Incoming]:
    headers = [
        ("Host", "example.test:8080"),
        ("Connection", "Upgrade, HTTP2-Settings"),
        ("Upgrade", "h2c"),
        ("Keep-Alive", "timeout=5"),
        ("Accept", "text/plain"),
        ("Content-Length", str(len(body))),
    ]
    if settings is not None:
        headers.append(("HTTP2-Settings", settings))
    extensions = Extensions()
    extensions.insert(Marker())
    return Request(
        "POST", "/upload?x=1", headers=headers, body=body_of(body), extensions=extensions
    )


def frames_of(data: bytes) -> list[Frame]:
    """Split bytes the server sent into frames."""
    frames = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


async def test_stream_one_is_the_upgrade_request_as_http2() -> None:
    seen: list[Request[Incoming]] = []
    bodies: list[bytes] = []

    async def service(request: Request[Incoming]) -> Response[Full]:
        seen.append(request)
        bodies.append((await collect(request.body)).to_bytes())
        return Response(200, headers={"content-type": "text/plain"}, body=Full(b"upgraded"))

    client_io, server_io = memory_pipe()
    conn = http2.Builder().serve_upgraded_connection(
        server_io, service, upgrade_request(settings_value(), b"payload")
    )
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_upgrade_connection()  # stream 1 half-closed (local), preface queued
    received: list[h2.events.Event] = []
    raw = bytearray()
    async with anyio.create_task_group() as tg:
        tg.start_soon(conn.serve)
        await client_io.send(client.data_to_send())
        with anyio.fail_after(5):
            while not any(isinstance(e, h2.events.StreamEnded) for e in received):
                data = await client_io.receive()
                raw += data
                received += client.receive_data(data)
                if out := client.data_to_send():
                    await client_io.send(out)
        conn.graceful_shutdown()

    (request,) = seen
    assert request.version is Version.HTTP_2
    assert request.method == "POST"
    assert str(request.uri) == "http://example.test:8080/upload?x=1"
    # Connection-specific fields are gone, the rest kept in order.
    assert request.headers.raw() == [(b"Accept", b"text/plain"), (b"Content-Length", b"7")]
    assert request.extensions.get(Marker) is not None
    assert bodies == [b"payload"]

    response = next(e for e in received if isinstance(e, h2.events.ResponseReceived))
    assert response.stream_id == 1
    assert (b":status", b"200") in response.headers
    data = b"".join(e.data for e in received if isinstance(e, h2.events.DataReceived))
    assert data == b"upgraded"
    # The server's preface is one SETTINGS frame (the client's arrived in the
    # header, and is acknowledged by no frame at all).
    settings = [f for f in frames_of(bytes(raw)) if isinstance(f, SettingsFrame)]
    assert sum("ACK" not in f.flags for f in settings) == 1


async def test_client_settings_from_the_header_are_in_force() -> None:
    """A 5-byte initial window in ``HTTP2-Settings`` holds stream 1's response to 5 bytes."""

    async def service(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"hello world"))

    client_io, server_io = memory_pipe()
    request = upgrade_request(settings_value((INITIAL_WINDOW_SIZE, 5)))
    conn = http2.Builder().serve_upgraded_connection(server_io, service, request)
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_upgrade_connection()
    # h2's own preface repeats every setting at its default (a 65,535-byte
    # window): send a preface with an empty SETTINGS frame instead, so the
    # header's value stays in force.
    client.data_to_send()
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()
    data = bytearray()
    ended = False

    async def pump(until: Any) -> None:
        nonlocal ended
        while not until():
            for event in client.receive_data(await client_io.receive()):
                if isinstance(event, h2.events.DataReceived):
                    data.extend(event.data)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            if out := client.data_to_send():
                await client_io.send(out)

    async with anyio.create_task_group() as tg:
        tg.start_soon(conn.serve)
        await client_io.send(preface)
        with anyio.fail_after(5):
            await pump(lambda: len(data) >= 5)
        with anyio.move_on_after(0.2):
            await pump(lambda: False)
        assert bytes(data) == b"hello"  # the window, and not a byte more
        client.increment_flow_control_window(100, stream_id=1)
        await client_io.send(client.data_to_send())
        with anyio.fail_after(5):
            await pump(lambda: ended)
        conn.graceful_shutdown()
    assert bytes(data) == b"hello world"


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        (None, "exactly one HTTP2-Settings"),
        ("AAMAAABk!", "not base64url"),
        (settings_value((INITIAL_WINDOW_SIZE, 5))[:-2], "whole 6-byte settings"),
        (settings_value((ENABLE_PUSH, 2)), "invalid HTTP2-Settings"),
    ],
)
async def test_bad_http2_settings_is_refused_before_anything_is_sent(
    settings: str | None, why: str
) -> None:
    async def service(request: Request[Incoming]) -> Response[Full]:
        raise AssertionError("not served")

    client_io, server_io = memory_pipe()
    with pytest.raises(ValueError, match=why):
        http2.Builder().serve_upgraded_connection(server_io, service, upgrade_request(settings))
    await server_io.aclose()
    assert await receive_or_eof(client_io, 65536) == b""  # not a byte was written


async def test_two_http2_settings_fields_are_refused() -> None:
    async def service(request: Request[Incoming]) -> Response[Full]:
        raise AssertionError("not served")

    request = upgrade_request(settings_value())
    request.headers.append("HTTP2-Settings", settings_value())
    _, server_io = memory_pipe()
    with pytest.raises(ValueError, match="exactly one"):
        http2.Builder().serve_upgraded_connection(server_io, service, request)
