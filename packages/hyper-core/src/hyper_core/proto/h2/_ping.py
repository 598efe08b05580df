"""PINGs for both HTTP/2 roles: adaptive flow control and keep-alive.

What belongs here: :class:`Pinger`, which the client and the server
connection each own one of, as hyper's ``proto/h2/ping.rs`` serves both of
its roles. The connection tells it what it reads, sends the PINGs it asks
for, hands it the ACKs, and runs :meth:`Pinger.keep_alive` as a task when
keep-alive is on; the windows it grows are applied to the h2 connection
here, so both roles grow them alike.

Adaptive flow control (the bandwidth-delay product, BDP):

1. When a DATA frame arrives, no BDP PING is in flight, and the delay
   since the last sample has passed: note the time and send a BDP PING.
2. While it is in flight, count the flow-controlled bytes of every DATA
   frame (the first one included).
3. When its ACK arrives:

   a. The round trip is the time since step 1. It is merged into a moving
      average, each new sample weighing 1/8 (the first is taken as is).
   b. The bandwidth is the bytes counted over 1.5 average round trips. A
      bandwidth below the best seen so far changes nothing.
   c. Bytes counted of at least 2/3 of the current window mean the window
      limited the transfer: it becomes twice the bytes, at most
      :data:`BDP_LIMIT`. The SETTINGS_INITIAL_WINDOW_SIZE of new streams
      and the connection window both grow to it.
   d. The delay before the next sample halves after a growth. After two
      samples in a row that changed nothing it grows fourfold, until it
      passes 10 seconds, so a steady connection is sampled rarely.

Keep-alive:

1. The connection notes the time of every read.
2. Once ``interval`` has passed since the last read, a keep-alive PING is
   sent, unless the connection has no open stream and ``while_idle`` is
   off (the server's is always on, as hyper's is).
3. Its ACK must arrive within ``timeout``; otherwise
   :meth:`Pinger.keep_alive` returns True and the connection ends with a
   ``TimeoutError``. Any read starts the interval again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, final

import anyio
from h2.settings import SettingCodes

from hyper_core.rt import Timer

__all__ = ["BDP_LIMIT", "BDP_PING", "KEEPALIVE_PING", "Pinger"]

#: Largest window the estimate grows to, in bytes (hyper's BDP_LIMIT):
#: more would mostly fill TCP's own buffers.
BDP_LIMIT: Final = 16 * 1024 * 1024
#: PING payloads (8 bytes each), telling our PINGs apart from the peer's.
BDP_PING: Final = b"hyperBD\x01"
KEEPALIVE_PING: Final = b"hyperKA\x01"
_FIRST_DELAY: Final = 0.1  # seconds between the first samples (hyper's 100 ms)
_MAX_DELAY: Final = 10.0
_RTT_WEIGHT: Final = 0.125


@final
class Pinger:
    """One connection's BDP estimate and keep-alive (see the module docstring).

    Attributes:
        stream_window: The receive window new streams get, in bytes.
        conn_window: The connection's receive window, in bytes.
        last_read: When the connection last read, on the timer's clock.
    """

    __slots__ = (
        "_ack",
        "_bytes",
        "_delay",
        "_h2",
        "_max_bandwidth",
        "_next_at",
        "_rtt",
        "_sent_at",
        "_stable",
        "_timer",
        "conn_window",
        "last_read",
        "stream_window",
    )

    def __init__(self, h2c: Any, timer: Timer, stream_window: int, conn_window: int) -> None:
        self._h2 = h2c
        self._timer = timer
        self.stream_window = stream_window
        self.conn_window = conn_window
        self.last_read = timer.now()
        self._bytes = 0
        self._sent_at: float | None = None
        self._next_at = 0.0
        self._rtt = 0.0
        self._max_bandwidth = 0.0
        self._delay = _FIRST_DELAY
        self._stable = 0
        self._ack: anyio.Event | None = None

    # -- adaptive flow control ------------------------------------------------

    def record_data(self, size: int) -> None:
        """Count a DATA frame's flow-controlled bytes; may queue a BDP PING (step 1)."""
        if self._sent_at is not None:
            self._bytes += size
            return
        if self.stream_window >= BDP_LIMIT:
            return
        now = self._timer.now()
        if now < self._next_at:
            return
        self._sent_at = now
        self._bytes = size
        self._h2.ping(BDP_PING)

    def on_ack(self, data: bytes) -> bool:
        """Take a PING ACK; True if it was ours. The windows may have grown (step 3)."""
        if data == BDP_PING:
            sent_at = self._sent_at
            if sent_at is not None:
                self._sent_at = None
                now = self._timer.now()
                received, self._bytes = self._bytes, 0
                new = self._estimate(received, now - sent_at)
                self._next_at = now + self._delay
                if new is not None:
                    self._grow(new)
            return True
        if data == KEEPALIVE_PING:
            if self._ack is not None:
                self._ack.set()
            return True
        return False

    def _estimate(self, received: int, rtt: float) -> int | None:
        """Steps 3a to 3d: the new window, or None."""
        if self.stream_window >= BDP_LIMIT:
            self._stabilize()
            return None
        self._rtt = rtt if self._rtt == 0.0 else self._rtt + (rtt - self._rtt) * _RTT_WEIGHT
        # A loopback round trip may measure 0 on a coarse clock: count it as
        # a microsecond, so the bandwidth stays a number.
        bandwidth = received / (max(self._rtt, 1e-6) * 1.5)
        if bandwidth < self._max_bandwidth:
            self._stabilize()
            return None
        self._max_bandwidth = bandwidth
        if received * 3 < self.stream_window * 2:
            self._stabilize()
            return None
        self._stable = 0
        self._delay /= 2
        new = min(received * 2, BDP_LIMIT)
        return new if new > self.stream_window else None

    def _stabilize(self) -> None:
        if self._delay < _MAX_DELAY:
            self._stable += 1
            if self._stable >= 2:
                self._delay *= 4
                self._stable = 0

    def _grow(self, new: int) -> None:
        h2c = self._h2
        h2c.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: new})
        if new > self.conn_window:
            h2c.increment_flow_control_window(new - self.conn_window)
            self.conn_window = new
        self.stream_window = new

    # -- keep-alive -------------------------------------------------------------

    async def keep_alive(
        self,
        interval: float,
        timeout: float,
        while_idle: bool,
        is_idle: Callable[[], bool],
        send_ping: Callable[[bytes], bool],
    ) -> bool:
        """Run keep-alive until the peer fails to answer (True) or ``send_ping`` says stop.

        ``send_ping`` queues the PING and wakes the writer; it returns False
        once the connection is ending.
        """
        timer = self._timer
        while True:
            await timer.sleep_until(self.last_read + interval)
            if timer.now() < self.last_read + interval:
                continue  # something arrived meanwhile: the peer is alive
            if not while_idle and is_idle():
                await timer.sleep(interval)
                continue
            ack = self._ack = anyio.Event()
            if not send_ping(KEEPALIVE_PING):
                return False
            with timer.deadline(timer.now() + timeout) as deadline:
                await ack.wait()
            self._ack = None
            if deadline.expired:
                return True
