"""The client's h2 fast path does exactly what h2's own ``send_headers`` does.

What belongs here: the equivalence of ``H2ClientConnection.send_request_headers``
(and its memoised HPACK encoder and batched pruning) with plain h2, checked
byte for byte and state for state on twin client connections fed the same
server bytes, including every case that must fall back to h2 (trailers on
an existing stream, a never-indexed field, the peer's stream limit, a
header block over one frame, an HPACK table resized by the server); and the
client end to end on both runtimes against our own server, where the
reader no longer wakes the writer for a read that produced nothing to send.
"""

from __future__ import annotations

from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
from hpack.struct import NeverIndexedHeaderTuple

from hyper_core.body import Full, Incoming, collect
from hyper_core.client.conn import http2 as client_http2
from hyper_core.http import Headers, Request, Response
from hyper_core.proto.h2._common import new_h2_connection
from hyper_core.proto.h2._fast_client import H2ClientConnection
from hyper_core.server.conn import http2 as server_http2
from hyper_core.testing import memory_pipe

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"example.com"),
    (b":path", b"/"),
    (b"user-agent", b"fastpath-test"),
]


def _client() -> H2ClientConnection:
    conn = new_h2_connection(
        client_side=True,
        initial_stream_window_size=1 << 20,
        max_frame_size=16_384,
        max_header_list_size=1 << 16,
        max_concurrent_streams=None,
    )
    assert isinstance(conn, H2ClientConnection)
    conn.initiate_connection()
    return conn


def state(conn: H2ClientConnection) -> object:
    streams = {
        sid: (
            s.state_machine.state,
            s.state_machine.headers_sent,
            s.outbound_flow_control_window,
            s.request_method,
            s._authority,
            s.max_outbound_frame_size,
        )
        for sid, s in conn.streams.items()
        if not s.closed
    }
    table = conn.encoder.header_table
    return (
        conn.state_machine.state,
        conn.highest_outbound_stream_id,
        conn.outbound_flow_control_window,
        streams,
        list(table.dynamic_entries),
        table.maxsize,
        list(conn.decoder.header_table.dynamic_entries),
    )


class Twins:
    """Two client connections and one plain h2 server that answers them.

    ``plain`` sends with h2's ``send_headers``, ``fast`` with
    ``send_request_headers``; both must produce the same bytes and hold the
    same state, and the server (fed ``fast``'s bytes) must accept them.
    """

    def __init__(self, server_settings: dict[int, int] | None = None) -> None:
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.server.initiate_connection()
        if server_settings:
            self.server.update_settings(server_settings)
        self.plain = _client()
        self.fast = _client()
        self.requests: list[h2.events.RequestReceived] = []
        self.exchange()

    def compare(self) -> bytes:
        plain, fast = self.plain.data_to_send(), self.fast.data_to_send()
        assert fast == plain
        assert state(self.fast) == state(self.plain)
        return fast

    def exchange(self) -> None:
        """Move bytes both ways until both sides are quiet (bounded)."""
        for _ in range(10):
            out = self.compare()
            for event in self.server.receive_data(out) if out else []:
                if isinstance(event, h2.events.RequestReceived):
                    self.requests.append(event)
            back = self.server.data_to_send()
            if not out and not back:
                return
            if back:
                plain_events = self.plain.receive_data(back)
                fast_events = self.fast.receive_data(back)
                assert [repr(e) for e in fast_events] == [repr(e) for e in plain_events]
        raise AssertionError("the connections did not settle")

    def request(self, headers: list[Any] = REQUEST, end: bool = True) -> int:
        sid = self.plain.get_next_available_stream_id()
        assert self.fast.get_next_available_stream_id() == sid
        self.plain.send_headers(sid, headers, end_stream=end)
        self.fast.send_request_headers(sid, headers, end)
        self.exchange()
        return sid

    def respond(self, sid: int, head: list[Any] | None = None) -> None:
        self.server.send_headers(sid, head or [(b":status", b"200")], end_stream=True)
        self.exchange()


def test_repeated_requests_are_byte_for_byte_h2s() -> None:
    twins = Twins()
    for i in range(40):
        sid = twins.request(end=i % 2 == 0)
        if i % 2:
            twins.plain.send_data(sid, b"body", end_stream=True)
            twins.fast.send_data(sid, b"body", end_stream=True)
        twins.respond(sid)
    assert len(twins.requests) == 40
    assert twins.requests[-1].headers == REQUEST
    assert twins.fast._fast_encode_memo  # the memo was used


def test_other_heads_and_sensitive_fields_match() -> None:
    twins = Twins()
    for path in (b"/a", b"/b", b"/a"):
        twins.request([*REQUEST[:3], (b":path", path), (b"x-id", path)])
    secret = [*REQUEST, NeverIndexedHeaderTuple(b"authorization", b"secret")]
    twins.request(secret)
    twins.request(secret)
    assert isinstance(twins.requests[-1].headers[-1], NeverIndexedHeaderTuple)
    assert twins.requests[-1].headers == secret


def test_header_block_over_one_frame_uses_continuation() -> None:
    twins = Twins()
    big = [*REQUEST, (b"x-big", b"v" * 40_000)]
    twins.request(big)
    assert twins.requests[-1].headers[-1] == (b"x-big", b"v" * 40_000)


def test_server_resizing_the_hpack_table_is_followed() -> None:
    twins = Twins()
    twins.request()
    for size in (0, 256, 4096):
        twins.server.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: size})
        twins.exchange()
        twins.request()
        twins.request()
    assert len(twins.requests) == 7


def test_trailers_on_an_open_stream_fall_back_to_h2() -> None:
    twins = Twins()
    sid = twins.request(end=False)
    trailers = [(b"x-checksum", b"abc")]
    twins.plain.send_headers(sid, trailers, end_stream=True)
    twins.fast.send_request_headers(sid, trailers, True)
    twins.exchange()
    twins.respond(sid)


def _stream_state(conn: Any, sid: int) -> object:
    s = conn.streams[sid]
    return (
        s.stream_id,
        s.state_machine.state,
        s.inbound_flow_control_window,
        s.outbound_flow_control_window,
        s.max_outbound_frame_size,
        s.request_method,
        sorted(name for name in vars(s) if name != "_hc_memo"),
        conn.highest_outbound_stream_id,
        conn.highest_inbound_stream_id,
    )


def test_streams_begin_as_h2_begins_them() -> None:
    ours, h2s = _client(), _client()
    begin = h2.connection.H2Connection._begin_new_stream
    odd, even = h2.connection.AllowedStreamIDs.ODD, h2.connection.AllowedStreamIDs.EVEN
    for conn in (ours, h2s):
        conn.receive_data(
            b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x07"
        )  # the server's SETTINGS: INITIAL_WINDOW_SIZE 7, so both windows differ
    for sid, allowed in ((1, odd), (7, odd), (2, even), (8, even)):
        made = ours._begin_new_stream(sid, allowed)
        assert type(made) is not h2.stream.H2Stream  # the memoising stream
        begin(h2s, sid, allowed)
        assert _stream_state(ours, sid) == _stream_state(h2s, sid)
    for sid, allowed in ((5, odd), (3, even), (6, even)):
        errors = []
        for conn, call in ((ours, ours._begin_new_stream), (h2s, lambda *a: begin(h2s, *a))):
            with pytest.raises(h2.exceptions.ProtocolError) as info:
                call(sid, allowed)
            errors.append((type(info.value), str(info.value)))
            assert sid not in conn.streams
        assert errors[0] == errors[1]


def test_peer_stream_limit_raises_as_h2_does() -> None:
    twins = Twins({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 3})
    for _ in range(3):
        twins.request(end=False)
    sid = twins.plain.get_next_available_stream_id()
    with pytest.raises(h2.exceptions.TooManyStreamsError):
        twins.plain.send_headers(sid, REQUEST, end_stream=True)
    with pytest.raises(h2.exceptions.TooManyStreamsError):
        twins.fast.send_request_headers(sid, REQUEST, True)
    twins.exchange()


def test_closed_streams_are_pruned_in_batches() -> None:
    twins = Twins({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
    for _ in range(200):
        twins.respond(twins.request())
    # h2 prunes at every new stream; the fast path every few dozen, so its
    # table stays small while its open streams (compared above) match.
    assert len(twins.plain.streams) <= 1
    assert len(twins.fast.streams) <= 40
    twins.fast._open_streams(1)
    twins.plain._open_streams(1)
    assert set(twins.fast._closed_streams) == set(twins.plain._closed_streams)


def test_repeated_response_heads_are_checked_as_h2_does() -> None:
    twins = Twins()
    heads: list[list[Any]] = [
        [(b":status", b"200"), (b"server", b"x"), (b"content-type", b"text/plain")],
        [(b":status", b"404"), (b"server", b"x")],
        [(b":status", b"200"), NeverIndexedHeaderTuple(b"set-cookie", b"a=b")],
        [(b":status", b"200"), (b"x-big", b"v" * 2000)],  # too big to memoise
    ]
    for _ in range(3):
        for head in heads:
            twins.respond(twins.request(), head)  # events compared by repr
    assert twins.fast._checked_memo
    assert all(len(fields) <= 3 for _, fields in twins.fast._checked_memo)


def test_malformed_response_head_after_memoised_ones_still_fails() -> None:
    good = [(b":status", b"200"), (b"server", b"x")]
    bad_fields = {False: (b"connection", b"close"), True: (b"Server", b"x")}
    for upper in (False, True):
        conn = _client()
        # The server's bytes are made by a plain h2 server that lets a
        # connection-specific field through.
        server = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        server.initiate_connection()
        server.receive_data(conn.data_to_send())
        conn.receive_data(server.data_to_send())
        bad = [(b":status", b"200"), bad_fields[upper]]
        for head in (good, good, bad):
            sid = conn.get_next_available_stream_id()
            conn.send_request_headers(sid, REQUEST, True)
            server.receive_data(conn.data_to_send())
            server.send_headers(sid, head, end_stream=True)
            if head is bad:
                with pytest.raises(h2.exceptions.ProtocolError):
                    conn.receive_data(server.data_to_send())
            else:
                events = conn.receive_data(server.data_to_send())
                assert isinstance(events[0], h2.events.ResponseReceived)
                assert events[0].headers == good


# ----------------------------------------------------------------- end to end


async def _serve_and_send(requests: list[Request[Any]]) -> list[tuple[int, bytes, str | None]]:
    async def echo(request: Request[Incoming]) -> Response[Full]:
        body = (await collect(request.body)).to_bytes()
        headers = Headers({"x-path": request.uri.path, "x-agent": request.headers.get("x") or ""})
        return Response(200, headers=headers, body=Full(body or b"empty"))

    client_io, server_io = memory_pipe(1 << 20)
    server = server_http2.Builder().serve_connection(server_io, echo)
    results: list[tuple[int, bytes, str | None]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        sender, connection = await client_http2.handshake(client_io)
        tg.start_soon(connection.serve)
        with anyio.fail_after(10):
            for request in requests:
                response = await sender.send_request(request)
                body = (await collect(response.body)).to_bytes()
                results.append((int(response.status), body, response.headers.get("x-path")))
            await sender.aclose()
        tg.cancel_scope.cancel()
    return results


@pytest.mark.anyio
async def test_client_requests_take_the_fast_path_intact() -> None:
    requests: list[Request[Any]] = []
    for i in range(60):
        body = Full(f"payload {i}".encode()) if i % 3 == 0 else None
        headers = Headers({"x": str(i % 4)})
        requests.append(
            Request(
                "POST" if body else "GET",
                f"http://example.com/p{i % 5}",
                headers=headers,
                body=body,
            )
        )
    results = await _serve_and_send(requests)
    assert len(results) == 60
    for i, (status, received, path) in enumerate(results):
        assert status == 200
        assert path == f"/p{i % 5}"
        assert received == (f"payload {i}".encode() if i % 3 == 0 else b"empty")


@pytest.mark.anyio
async def test_many_concurrent_requests_on_one_connection() -> None:
    client_io, server_io = memory_pipe(1 << 20)

    async def hello(request: Request[Incoming]) -> Response[Full]:
        return Response(200, body=Full(b"x" * 70_000))  # beyond the 64 KiB window

    server = server_http2.Builder().serve_connection(server_io, hello)
    bodies: list[bytes] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        sender, connection = await client_http2.handshake(client_io)
        tg.start_soon(connection.serve)

        async def one() -> None:
            response = await sender.send_request(Request("GET", "http://example.com/"))
            bodies.append((await collect(response.body)).to_bytes())

        with anyio.fail_after(10):
            async with anyio.create_task_group() as inner:
                for _ in range(150):
                    inner.start_soon(one)
            await sender.aclose()
        tg.cancel_scope.cancel()
    assert bodies == [b"x" * 70_000] * 150
