"""The server's h2 fast paths do exactly what h2's own methods do.

What belongs here: the equivalence of ``H2ServerConnection``'s fast paths
(``send_response_fast``, ``send_final_headers``, ``send_data_fast``, the
memoised HPACK encoder and decoder, batched pruning of closed streams) with
plain h2, checked byte for byte and state for state on twin connections fed
the same client bytes; and the same paths end to end through the server on
both runtimes, including every case that must fall back to h2 (window too
small, header block over one frame, informational status, HPACK table
resized by the client).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
from hpack.hpack import Decoder, Encoder
from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple

from hyper_core.body import Full, Incoming
from hyper_core.http import Headers, Request, Response
from hyper_core.proto.h2._common import initiate, new_h2_connection
from hyper_core.proto.h2._fast_common import MemoDecoder
from hyper_core.proto.h2._fast_server import H2ServerConnection
from hyper_core.server.conn import http2
from hyper_core.testing import memory_pipe

REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"example.com"),
    (b":path", b"/"),
    (b"user-agent", b"fastpath-test"),
]


def _server() -> H2ServerConnection:
    conn = new_h2_connection(
        client_side=False,
        initial_stream_window_size=1 << 20,
        max_frame_size=16_384,
        max_header_list_size=1 << 16,
        max_concurrent_streams=200,
        validate_inbound_headers=False,
    )
    assert isinstance(conn, H2ServerConnection)
    initiate(conn)
    return conn


class Twins:
    """One client and two server connections that receive the same bytes.

    ``plain`` is driven with h2's own methods, ``fast`` with the fast paths;
    after each step both must have produced the same bytes and hold the same
    state, and the client (fed ``fast``'s bytes) must accept them.
    """

    def __init__(self, *, client_window: int | None = None) -> None:
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.client.initiate_connection()
        if client_window is not None:
            self.client.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: client_window}
            )
        self.plain = _server()
        self.fast = _server()
        self.events: list[h2.events.Event] = []
        self.exchange()

    def to_servers(self) -> list[h2.events.Event]:
        data = self.client.data_to_send()
        if not data:
            return []
        events = self.plain.receive_data(data)
        fast_events = self.fast.receive_data(data)
        assert [repr(e) for e in events] == [repr(e) for e in fast_events]
        return events

    def exchange(self) -> None:
        """Move bytes both ways until both sides are quiet (bounded)."""
        for _ in range(10):
            self.to_servers()
            out = self.compare()
            if not out and not self.client.data_to_send():
                return
            for event in self.client.receive_data(out):
                self.events.append(event)
                if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                    self.client.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            self.to_servers()
        raise AssertionError("the connections did not settle")

    def compare(self) -> bytes:
        plain, fast = self.plain.data_to_send(), self.fast.data_to_send()
        assert fast == plain
        assert fast_state(self.fast) == fast_state(self.plain)
        return fast

    def request(self, headers: list[tuple[bytes, bytes]] = REQUEST, end: bool = True) -> int:
        sid = self.client.get_next_available_stream_id()
        self.client.send_headers(sid, headers, end_stream=end)
        self.to_servers()
        return sid

    def both(self, plain: Callable[..., Any], fast: Callable[..., Any]) -> Any:
        plain(self.plain)
        result = fast(self.fast)
        self.exchange()
        return result


def fast_state(conn: H2ServerConnection) -> object:
    streams = {
        sid: (
            s.state_machine.state,
            s.state_machine.headers_sent,
            s.outbound_flow_control_window,
            s.request_method,
        )
        for sid, s in conn.streams.items()
        if not s.closed
    }
    table = conn.encoder.header_table
    return (
        conn.state_machine.state,
        conn.outbound_flow_control_window,
        streams,
        list(table.dynamic_entries),
        table.maxsize,
        list(conn.decoder.header_table.dynamic_entries),
    )


def response(status: bytes = b"200", *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b":status", status), (b"content-type", b"text/plain"), *extra]


def test_small_response_is_byte_for_byte_h2s() -> None:
    twins = Twins()
    for i in range(40):
        sid = twins.request()
        fields = response(b"200", (b"date", b"second %d" % (i // 7)))

        def plain(c: H2ServerConnection, sid: int = sid, fields: Any = fields) -> None:
            c.send_headers(sid, fields, end_stream=False)
            c.send_data(sid, b"Hello, World!", end_stream=True)

        assert twins.both(
            plain, lambda c, s=sid, f=fields: c.send_response_fast(s, f, b"Hello, World!")
        )
    bodies = [e.data for e in twins.events if isinstance(e, h2.events.DataReceived)]
    assert bodies == [b"Hello, World!"] * 40
    assert sum(isinstance(e, h2.events.StreamEnded) for e in twins.events) == 40


def test_headers_only_and_split_responses_match() -> None:
    twins = Twins()
    for end in (True, False):
        sid = twins.request()
        twins.both(
            lambda c, s=sid, e=end: c.send_headers(s, response(b"204"), end_stream=e),
            lambda c, s=sid, e=end: c.send_final_headers(s, response(b"204"), e),
        )
        if not end:
            twins.both(
                lambda c, s=sid: c.send_data(s, b"abc", end_stream=False),
                lambda c, s=sid: c.send_data_fast(s, b"abc", False),
            )
            twins.both(
                lambda c, s=sid: c.send_data(s, b"def", end_stream=True),
                lambda c, s=sid: c.send_data_fast(s, b"def", True),
            )
    ended = [e.stream_id for e in twins.events if isinstance(e, h2.events.StreamEnded)]
    assert ended == [1, 3]


def test_header_block_over_one_frame_uses_continuation() -> None:
    twins = Twins()
    sid = twins.request()
    big = response(b"200", (b"x-big", b"v" * 40_000))
    twins.both(
        lambda c: c.send_headers(sid, big, end_stream=True),
        lambda c: c.send_final_headers(sid, big, True),
    )
    (received,) = [e for e in twins.events if isinstance(e, h2.events.ResponseReceived)]
    assert dict(received.headers or [])[b"x-big"] == b"v" * 40_000


def test_body_beyond_the_window_falls_back_untouched() -> None:
    twins = Twins(client_window=10)
    sid = twins.request()
    before = (twins.fast.data_to_send(), fast_state(twins.fast))
    assert not twins.fast.send_response_fast(sid, response(), b"x" * 11)
    assert (twins.fast.data_to_send(), fast_state(twins.fast)) == before
    twins.plain.data_to_send()
    twins.plain.send_headers(sid, response(), end_stream=False)
    twins.plain.send_data(sid, b"x" * 10)
    twins.fast.send_final_headers(sid, response(), False)
    twins.fast.send_data_fast(sid, b"x" * 10, False)
    out = twins.compare()
    # The window is spent: the fast DATA path raises as h2 does, changing nothing.
    for conn in (twins.plain, twins.fast):
        with pytest.raises(h2.exceptions.FlowControlError):
            conn.send_data_fast(sid, b"y", True)
    assert twins.compare() == b""
    events = twins.client.receive_data(out)
    data = b"".join(e.data or b"" for e in events if isinstance(e, h2.events.DataReceived))
    assert data == b"x" * 10


def test_informational_then_final_and_trailers_match() -> None:
    twins = Twins()
    sid = twins.request()
    twins.both(
        lambda c: c.send_headers(sid, [(b":status", b"103"), (b"link", b"</a>")]),
        lambda c: c.send_final_headers(sid, [(b":status", b"103"), (b"link", b"</a>")], False),
    )
    twins.both(
        lambda c: c.send_headers(sid, response(), end_stream=False),
        lambda c: c.send_final_headers(sid, response(), False),
    )
    # Trailers are a second header block: h2's own path, with or without the fast one.
    twins.both(
        lambda c: c.send_headers(sid, [(b"x-t", b"1")], end_stream=True),
        lambda c: c.send_final_headers(sid, [(b"x-t", b"1")], True),
    )
    kinds = [type(e).__name__ for e in twins.events if e.__class__.__module__ == "h2.events"]
    assert "InformationalResponseReceived" in kinds
    assert "TrailersReceived" in kinds


def test_sensitive_fields_are_never_memoised_as_plain_ones() -> None:
    twins = Twins()
    secret = [(b":status", b"200"), NeverIndexedHeaderTuple(b"set-cookie", b"s=1")]
    plain_too = [(b":status", b"200"), (b"set-cookie", b"s=1")]
    for fields in (secret, plain_too, secret, plain_too, plain_too):
        sid = twins.request()
        twins.both(
            lambda c, s=sid, f=fields: c.send_headers(s, f, end_stream=True),
            lambda c, s=sid, f=fields: c.send_final_headers(s, f, True),
        )


def test_client_resizing_its_hpack_table_is_followed() -> None:
    twins = Twins()
    for size in (4096, 0, 0, 100, 4096, 4096):
        twins.client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: size})
        twins.exchange()
        for _ in range(3):
            sid = twins.request()
            twins.both(
                lambda c, s=sid: c.send_headers(s, response(), end_stream=True),
                lambda c, s=sid: c.send_final_headers(s, response(), True),
            )


def test_closed_streams_are_pruned_in_batches() -> None:
    twins = Twins()
    for _ in range(300):
        sid = twins.request()
        twins.both(
            lambda c, s=sid: c.send_headers(s, response(), end_stream=True),
            lambda c, s=sid: c.send_final_headers(s, response(), True),
        )
    # h2 would prune on every new stream; the server does so every 32, and
    # what it pruned is remembered as closed, as h2 does.
    for conn in (twins.plain, twins.fast):
        assert len(conn.streams) <= 32 + 2
        assert conn._stream_closed_by(1) is not None


# -- the HPACK decoder memo ---------------------------------------------------


VOCABULARY = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":path", b"/other"),
    (b"user-agent", b"a"),
    (b"cookie", b"c=" + b"x" * 60),
    (b"x-long", b"y" * 300),
    (b"x-n", b"1"),
    (b"x-n", b"2"),
]


def test_memo_decoder_matches_hpack_on_random_sequences() -> None:
    rng = random.Random(1234)
    for _ in range(20):  # bounded: 20 connections x 200 blocks
        encoder, plain, memo = Encoder(), Decoder(), MemoDecoder()
        for step in range(200):
            if rng.random() < 0.05:
                size = rng.choice([0, 64, 256, 4096])
                encoder.header_table_size = size
                plain.max_allowed_table_size = memo.max_allowed_table_size = max(size, 256)
            if rng.random() < 0.03:
                # A peer that ignores our limit: the next block must fail.
                plain.max_allowed_table_size = memo.max_allowed_table_size = rng.choice([64, 4096])
            if rng.random() < 0.03:
                plain.max_header_list_size = memo.max_header_list_size = rng.choice([100, 1 << 16])
            fields: list[Any] = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 5))]
            if rng.random() < 0.1:
                fields.append(NeverIndexedHeaderTuple(b"authorization", b"t%d" % step))
            block = encoder.encode(fields)
            outcome: list[object] = []
            for decoder in (plain, memo):
                try:
                    got: Any = decoder.decode(block, raw=True)
                    outcome.append([(type(h), tuple(h)) for h in got])
                except Exception as exc:
                    outcome.append(type(exc))
            assert outcome[0] == outcome[1], (step, block)
            if isinstance(outcome[0], type):
                break  # the connection would be gone; start another
            assert list(plain.header_table.dynamic_entries) == list(
                memo.header_table.dynamic_entries
            )


def _insert(name: bytes, value: bytes) -> bytes:
    """A literal field with incremental indexing and a new name, no Huffman (RFC 7541 6.2.1)."""
    return b"\x40" + bytes([len(name)]) + name + bytes([len(value)]) + value


def test_memo_decoder_tells_an_equal_front_entry_from_the_same_one() -> None:
    # Two 36-byte entries fill a 72-byte table. After [Y, X] the block
    # "index 63" means X; after inserting Z then Y again the table is
    # [Y', Z]: same length, same size, a front entry equal to the old
    # one, yet index 63 now means Z.
    x, y, z = (b"x-a", b"1"), (b"x-b", b"2"), (b"x-c", b"3")
    plain, memo = Decoder(), MemoDecoder()
    second = b"\xbf"
    for block in (b"\x3f\x29" + _insert(*x), _insert(*y), second, _insert(*z), _insert(*y), second):
        assert memo.decode(block, raw=True) == plain.decode(block, raw=True)
    assert memo.decode(second, raw=True) == [z]


def test_memo_decoder_rechecks_when_the_limits_change() -> None:
    from hpack.exceptions import InvalidTableSizeError, OversizedHeaderListError

    encoder = Encoder()
    fields = [(b"x-a", b"1" * 50)]
    encoder.encode(fields)
    block = encoder.encode(fields)  # now a reference to the table
    for decoder in (Decoder(), MemoDecoder()):
        decoder.decode(_insert(b"x-a", b"1" * 50), raw=True)
        assert decoder.decode(block, raw=True) == fields
        assert decoder.decode(block, raw=True) == fields
        decoder.max_header_list_size = 40
        with pytest.raises(OversizedHeaderListError):
            decoder.decode(block, raw=True)
        decoder.max_header_list_size = 1 << 16
        assert decoder.decode(block, raw=True) == fields
        # The peer never shrank its table to our new limit.
        decoder.max_allowed_table_size = 64
        with pytest.raises(InvalidTableSizeError):
            decoder.decode(block, raw=True)


def test_memo_decoder_hands_out_copies() -> None:
    decoder = MemoDecoder()
    block = Encoder().encode([(b":method", b"GET")])
    first = decoder.decode(block, raw=True)
    first.append(HeaderTuple(b"x", b"y"))
    assert decoder.decode(block, raw=True) == [(b":method", b"GET")]


# -- end to end, both runtimes --------------------------------------------------


async def _exchange(
    service: Callable[[Request[Incoming]], Any],
    requests: int,
    *,
    client_window: int | None = None,
    table_sizes: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    client_io, server_io = memory_pipe(1 << 20)
    conn = http2.Builder().serve_connection(server_io, service)
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    if client_window is not None:
        client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: client_window})
    replies: dict[int, dict[str, Any]] = {}

    async def pump_until(done: Callable[[], bool]) -> None:
        while not done():
            await client_io.send(client.data_to_send() or b"")
            data = await client_io.receive()
            for event in client.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    replies[event.stream_id]["headers"] = dict(event.headers or [])
                elif isinstance(event, h2.events.DataReceived):
                    replies[event.stream_id]["body"] += event.data or b""
                    client.acknowledge_received_data(
                        event.flow_controlled_length or 0, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    replies[event.stream_id]["ended"] = True
            pending = client.data_to_send()
            if pending:
                await client_io.send(pending)

    async with anyio.create_task_group() as tg:
        tg.start_soon(conn.serve)
        with anyio.fail_after(10):
            await client_io.send(client.data_to_send())
            for size in (*table_sizes, None):
                for _ in range(requests):
                    sid = client.get_next_available_stream_id()
                    replies[sid] = {"body": b"", "ended": False}
                    client.send_headers(sid, REQUEST, end_stream=True)
                await pump_until(lambda: all(r["ended"] for r in replies.values()))
                if size is not None:
                    client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: size})
        tg.cancel_scope.cancel()
    return [replies[sid] for sid in sorted(replies)]


@pytest.mark.anyio
async def test_served_small_responses_take_the_fast_path_intact() -> None:
    async def hello(request: Request[Incoming]) -> Response[Full]:
        return Response(200, headers=Headers({"content-type": "text/plain"}), body=Full(b"hi"))

    replies = await _exchange(hello, 25, table_sizes=(0, 4096))
    assert len(replies) == 75
    for reply in replies:
        assert reply["body"] == b"hi"
        assert reply["headers"][b":status"] == b"200"
        assert reply["headers"][b"content-type"] == b"text/plain"
        assert reply["headers"][b"content-length"] == b"2"


@pytest.mark.anyio
async def test_served_responses_beyond_window_or_frame_fall_back_intact() -> None:
    big_value = "v" * 20_000  # more than one 16 KiB HEADERS frame

    async def large(request: Request[Incoming]) -> Response[Full]:
        return Response(200, headers=Headers({"x-big": big_value}), body=Full(b"z" * 50_000))

    replies = await _exchange(large, 3, client_window=1000)
    for reply in replies:
        assert reply["body"] == b"z" * 50_000
        assert reply["headers"][b"x-big"] == big_value.encode()
