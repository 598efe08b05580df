"""The PING logic both HTTP/2 roles share: the BDP estimate and keep-alive.

What belongs here: ``proto/h2/_ping.py`` step by step, on a real h2
connection whose output frames are read back, with a fake clock. The
connections that use it are tested end to end in ``test_client_h2_conn.py``
and ``test_server_h2_conn.py`` (the windows grow under a real transfer,
keep-alive ends a silent peer).
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import h2.config
import h2.connection
import pytest
from hyperframe.frame import Frame, PingFrame, SettingsFrame, WindowUpdateFrame

from hyper_core.proto.h2._ping import BDP_LIMIT, BDP_PING, KEEPALIVE_PING, Pinger
from hyper_core.testing import FakeTimer

pytestmark = pytest.mark.anyio

WINDOW = 65_535


def _h2() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.clear_outbound_data_buffer()
    return conn


def _frames(conn: h2.connection.H2Connection) -> list[Frame]:
    data = conn.data_to_send()
    frames = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


def _pings(conn: h2.connection.H2Connection) -> list[bytes]:
    return [f.opaque_data for f in _frames(conn) if isinstance(f, PingFrame)]


def _setup(window: int = WINDOW) -> tuple[h2.connection.H2Connection, FakeTimer, Pinger]:
    conn = _h2()
    timer = FakeTimer()
    return conn, timer, Pinger(conn, timer, window, window)


def _sample(
    conn: h2.connection.H2Connection, timer: FakeTimer, pinger: Pinger, sizes: list[int], rtt: float
) -> list[Frame]:
    """One BDP round: DATA frames of ``sizes`` while the PING is out, then its ACK."""
    for size in sizes:
        pinger.record_data(size)
    assert _pings(conn) == [BDP_PING]
    timer.advance(rtt)
    assert pinger.on_ack(BDP_PING)
    return _frames(conn)


def test_a_full_window_in_one_round_trip_doubles_both_windows() -> None:
    conn, timer, pinger = _setup()
    frames = _sample(conn, timer, pinger, [16_384] * 4, 0.01)  # 65,536 bytes
    assert pinger.stream_window == pinger.conn_window == 131_072
    settings = [f for f in frames if isinstance(f, SettingsFrame) and "ACK" not in f.flags]
    assert settings
    assert settings[0].settings[SettingsFrame.INITIAL_WINDOW_SIZE] == 131_072
    updates = [f for f in frames if isinstance(f, WindowUpdateFrame)]
    assert [(u.stream_id, u.window_increment) for u in updates] == [(0, 131_072 - WINDOW)]


def test_a_sample_under_two_thirds_of_the_window_changes_nothing() -> None:
    conn, timer, pinger = _setup()
    frames = _sample(conn, timer, pinger, [40_000], 0.01)  # 40,000 * 3 < 65,535 * 2
    assert frames == []
    assert pinger.stream_window == WINDOW


def test_no_sample_before_the_delay_and_the_delay_halves_after_growth() -> None:
    conn, timer, pinger = _setup()
    _sample(conn, timer, pinger, [65_535], 0.01)
    pinger.record_data(1000)
    assert _pings(conn) == []  # the next sample waits 50 ms (100 ms halved)
    timer.advance(0.049)
    pinger.record_data(1000)
    assert _pings(conn) == []
    timer.advance(0.002)
    pinger.record_data(1000)
    assert _pings(conn) == [BDP_PING]


def test_a_lower_bandwidth_grows_nothing_and_steady_samples_back_off() -> None:
    conn, timer, pinger = _setup()
    _sample(conn, timer, pinger, [65_535], 0.01)  # delay 50 ms
    for _ in range(2):  # two samples that change nothing: the delay x4
        timer.advance(1.0)
        # 90,000 bytes fill 2/3 of the window, but over a longer round trip:
        # a lower bandwidth than the first sample's.
        _sample(conn, timer, pinger, [90_000], 0.05)
        assert pinger.stream_window == 2 * 65_535
    timer.advance(1.0)
    pinger.record_data(10)
    _pings(conn)
    timer.advance(0.01)
    pinger.on_ack(BDP_PING)
    pinger.record_data(10)
    timer.advance(0.19)
    pinger.record_data(10)
    assert _pings(conn) == []  # 200 ms: the delay is now 50 ms x 4, not passed
    timer.advance(0.02)
    pinger.record_data(10)
    assert _pings(conn) == [BDP_PING]


def test_the_window_stops_at_the_limit_and_then_no_pings_are_sent() -> None:
    conn, timer, pinger = _setup(BDP_LIMIT // 2 + 1)
    _sample(conn, timer, pinger, [BDP_LIMIT], 0.01)
    assert pinger.stream_window == BDP_LIMIT
    timer.advance(60)
    pinger.record_data(BDP_LIMIT)
    assert _pings(conn) == []


def test_other_acks_are_not_ours_and_a_late_bdp_ack_is_ignored() -> None:
    conn, _, pinger = _setup()
    assert not pinger.on_ack(b"someone\x00")
    assert pinger.on_ack(BDP_PING)  # ours, but no sample is out
    assert pinger.stream_window == WINDOW
    assert _frames(conn) == []


async def test_keep_alive_pings_after_the_interval_since_the_last_read() -> None:
    conn, _, _ = _setup()
    sent: list[float] = []
    results: list[bool] = []
    async with FakeTimer(autojump=True) as timer:
        pinger = Pinger(conn, timer, WINDOW, WINDOW)

        def send(payload: bytes) -> bool:
            assert payload == KEEPALIVE_PING
            sent.append(timer.now())
            if len(sent) < 3:
                pinger.last_read = timer.now()  # the ACK is a read...
                assert pinger.on_ack(KEEPALIVE_PING)  # ...that answers it
            return True

        async def run() -> None:
            results.append(await pinger.keep_alive(2.0, 1.0, True, lambda: False, send))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await anyio.lowlevel.checkpoint()
            pinger.last_read = 0.5  # a read half a second in moves the first PING
        # Answered twice; the third goes unanswered for the 1 s timeout.
        assert sent == [2.5, 4.5, 6.5]
        assert results == [True]
        assert timer.now() == 7.5


async def test_keep_alive_stops_when_the_connection_is_ending() -> None:
    conn, _, _ = _setup()
    async with FakeTimer(autojump=True) as timer:
        pinger = Pinger(conn, timer, WINDOW, WINDOW)
        assert not await pinger.keep_alive(1.0, 1.0, True, lambda: False, lambda _: False)
        assert timer.now() == 1.0


async def test_keep_alive_times_out_and_skips_idle_connections_unless_asked() -> None:
    conn, _, _ = _setup()
    async with FakeTimer(autojump=True) as timer:
        pinger = Pinger(conn, timer, WINDOW, WINDOW)
        idle = True
        sent: list[float] = []

        def send(payload: bytes) -> bool:
            sent.append(timer.now())
            return True

        def is_idle() -> bool:
            nonlocal idle
            was, idle = idle, False  # idle at the first look only
            return was

        assert await pinger.keep_alive(1.0, 3.0, False, is_idle, send)
        assert sent == [2.0]  # skipped at 1 s (idle), pinged at 2 s
        assert timer.now() == 5.0
        sent.clear()
        pinger.last_read = timer.now()
        assert await pinger.keep_alive(1.0, 3.0, True, lambda: True, send)
        assert sent == [6.0]  # while_idle: being idle does not matter
