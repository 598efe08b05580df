"""quic_pair(): two connected in-memory QUIC connections, the test double of QUIC.

What belongs here: an implementation of :class:`hyper_core.rt.QuicConnection`
with no packets, no crypto and no clock, for testing HTTP/3 (and anything
else built on the QUIC interface) deterministically and fast.

Behaviour that matters to HTTP/3, as QUIC has it:

* Per-stream flow control: a sender may have at most ``stream_window``
  unread bytes at the receiver; ``send`` waits for the reader.
* Stream limits: each side lets the other open at most
  ``max_streams`` bidirectional streams at once; ``open_stream`` waits for
  one to finish (MAX_STREAMS credit).
* RESET_STREAM and STOP_SENDING carry an error code to the other side's
  ``receive`` and ``send``; ``close`` fails every stream of both sides with
  :class:`~hyper_core.rt.QuicConnectionClosed`.
"""

from __future__ import annotations

from typing import final

import anyio
import anyio.lowlevel

from hyper_core.quic._stream import QuicStreamHandle, RecvHalf
from hyper_core.rt._quic import QuicConnectionClosed, QuicStreamReset

__all__ = ["MemoryQuicConnection", "quic_pair"]

#: Unread bytes a stream may hold at the receiver before the sender waits.
DEFAULT_STREAM_WINDOW = 65536
#: Bidirectional streams each side lets the other have open at once.
DEFAULT_MAX_STREAMS = 100


def quic_pair(
    *, stream_window: int = DEFAULT_STREAM_WINDOW, max_streams: int = DEFAULT_MAX_STREAMS
) -> tuple[MemoryQuicConnection, MemoryQuicConnection]:
    """Return ``(client, server)``: two connected in-memory QUIC connections.

    Args:
        stream_window: Bytes a stream may carry ahead of its reader.
        max_streams: Bidirectional streams each side may have the other open at once.
    """
    client = MemoryQuicConnection(True, stream_window, max_streams)
    server = MemoryQuicConnection(False, stream_window, max_streams)
    client._peer = server
    server._peer = client
    return client, server


@final
class _Accounting:
    """Our send-side view of one stream: credit left, and whether both sides finished."""

    __slots__ = ("in_flight", "local_done", "remote_done", "waiter")

    def __init__(self) -> None:
        self.in_flight = 0
        self.local_done = False
        self.remote_done = False
        self.waiter: anyio.Event | None = None

    def wake(self) -> None:
        if self.waiter is not None:
            self.waiter.set()
            self.waiter = None


@final
class MemoryQuicConnection:
    """One end of :func:`quic_pair`; satisfies :class:`hyper_core.rt.QuicConnection`."""

    def __init__(self, is_client: bool, stream_window: int, max_streams: int) -> None:
        self._is_client = is_client
        self._window = stream_window
        self._max_streams = max_streams
        self._peer: MemoryQuicConnection | None = None
        self._streams: dict[int, QuicStreamHandle] = {}
        self._accounts: dict[int, _Accounting] = {}
        self._next_bidi = 0 if is_client else 1
        self._next_uni = 2 if is_client else 3
        self._opened_by_us = 0  # our bidirectional streams not yet finished
        self._credit_waiter: anyio.Event | None = None
        self._accept_queue: list[QuicStreamHandle] = []
        self._seen: set[int] = set()  # peer streams ever opened (a test double: unbounded)
        self._accept_waiter: anyio.Event | None = None
        self._closed: QuicConnectionClosed | None = None
        self._closed_event = anyio.Event()

    @property
    def is_client(self) -> bool:
        """Whether this is the client end."""
        return self._is_client

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """A made-up peer address (there is no network)."""
        return ("memory", 1 if self._is_client else 0)

    def _other(self) -> MemoryQuicConnection:
        assert self._peer is not None
        return self._peer

    def _check_open(self) -> None:
        if self._closed is not None:
            raise self._closed

    # -- opening and accepting ------------------------------------------------

    async def open_stream(self) -> QuicStreamHandle:
        """Open a bidirectional stream, waiting for the peer's stream credit."""
        while True:
            self._check_open()
            if self._opened_by_us < self._other()._max_streams:
                break
            if self._credit_waiter is None:  # shared by every task waiting for credit
                self._credit_waiter = anyio.Event()
            await self._credit_waiter.wait()
        self._opened_by_us += 1
        sid = self._next_bidi
        self._next_bidi += 4
        return self._new_stream(sid, bidi=True)

    async def open_unidirectional_stream(self) -> QuicStreamHandle:
        """Open a unidirectional stream."""
        self._check_open()
        sid = self._next_uni
        self._next_uni += 4
        return self._new_stream(sid, bidi=False)

    def _new_stream(self, sid: int, *, bidi: bool) -> QuicStreamHandle:
        handle = QuicStreamHandle(self, sid, RecvHalf() if bidi else None)
        self._streams[sid] = handle
        self._accounts[sid] = _Accounting()
        if not bidi:
            self._accounts[sid].remote_done = True
        return handle

    def _peer_stream(self, sid: int) -> QuicStreamHandle | None:
        """The handle for a stream the peer opened, made (and queued) on first use."""
        handle = self._streams.get(sid)
        if handle is None and self._closed is None and sid not in self._seen:
            self._seen.add(sid)
            handle = QuicStreamHandle(self, sid, RecvHalf())
            self._streams[sid] = handle
            account = _Accounting()
            if sid & 0x2:
                account.local_done = True
            self._accounts[sid] = account
            self._accept_queue.append(handle)
            if self._accept_waiter is not None:
                self._accept_waiter.set()
                self._accept_waiter = None
        return handle

    async def accept_stream(self) -> QuicStreamHandle:
        """Return the next stream the peer opened."""
        while not self._accept_queue:
            self._check_open()
            self._accept_waiter = waiter = anyio.Event()
            await waiter.wait()
        return self._accept_queue.pop(0)

    # -- StreamOwner ----------------------------------------------------------

    def consumed(self, stream_id: int, size: int) -> None:
        """The reader took bytes: the peer's sender gets that credit back."""
        account = self._other()._accounts.get(stream_id)
        if account is not None:
            account.in_flight -= size
            account.wake()

    async def send_stream(self, stream_id: int, data: bytes, fin: bool) -> None:
        """Deliver ``data`` to the peer within the stream window."""
        account = self._accounts[stream_id]
        view = memoryview(data)
        while True:
            self._check_open()
            handle = self._streams.get(stream_id)
            if handle is not None and handle.send_error is not None:
                raise handle.send_error
            room = self._window - account.in_flight
            if room > 0 or (not view and fin):
                chunk = bytes(view[:room])
                view = view[len(chunk) :]
                account.in_flight += len(chunk)
                last = fin and not view
                target = self._other()._peer_stream(stream_id)
                if target is not None and target.recv is not None:
                    target.recv.feed(chunk, last)
                if last:
                    self._other()._remote_finished(stream_id)
                    self._local_finished(stream_id)
                if not view:
                    await anyio.lowlevel.checkpoint()
                    return
            account.waiter = waiter = anyio.Event()
            await waiter.wait()

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """RESET_STREAM: the peer's reader fails with the code."""
        peer = self._other()
        target = peer._peer_stream(stream_id)
        if target is not None and target.recv is not None:
            target.fail_recv(QuicStreamReset(error_code))
            peer._remote_finished(stream_id)
        self._local_finished(stream_id)

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        """STOP_SENDING: the peer's sender fails with the code; we are done receiving."""
        peer = self._other()
        handle = peer._streams.get(stream_id)
        if handle is not None:
            handle.fail_send(QuicStreamReset(error_code))
            account = peer._accounts.get(stream_id)
            if account is not None:
                account.wake()
        self._remote_finished(stream_id)
        # As QUIC does, the peer answers STOP_SENDING with RESET_STREAM.
        peer._local_finished(stream_id)

    # -- stream credit ----------------------------------------------------------

    def _local_finished(self, sid: int) -> None:
        account = self._accounts.get(sid)
        if account is not None:
            account.local_done = True
            self._settle(sid, account)

    def _remote_finished(self, sid: int) -> None:
        account = self._accounts.get(sid)
        if account is not None:
            account.remote_done = True
            self._settle(sid, account)

    def _settle(self, sid: int, account: _Accounting) -> None:
        if not (account.local_done and account.remote_done):
            return
        self._accounts.pop(sid, None)
        self._streams.pop(sid, None)
        ours = bool(sid & 0x1) != self._is_client
        if ours and not sid & 0x2:
            self._opened_by_us -= 1
            if self._credit_waiter is not None:
                self._credit_waiter.set()
                self._credit_waiter = None

    # -- closing ------------------------------------------------------------------

    def close(self, error_code: int = 0, reason: str = "", /) -> None:
        """Close both ends: every stream and waiter fails."""
        if self._closed is not None:
            return
        self._shut(QuicConnectionClosed(error_code, reason, by_peer=False))
        self._other()._shut(QuicConnectionClosed(error_code, reason, by_peer=True))

    def _shut(self, error: QuicConnectionClosed) -> None:
        if self._closed is not None:
            return
        self._closed = error
        for handle in self._streams.values():
            handle.fail(error)
        for account in self._accounts.values():
            account.wake()
        for waiter in (self._credit_waiter, self._accept_waiter):
            if waiter is not None:
                waiter.set()
        self._closed_event.set()

    async def drain(self) -> None:
        """Return at once: the double delivers data as soon as it is sent."""
        await anyio.lowlevel.checkpoint()

    async def wait_closed(self) -> QuicConnectionClosed:
        """Wait until either end closed the connection."""
        await self._closed_event.wait()
        assert self._closed is not None
        return self._closed

    def __repr__(self) -> str:
        role = "client" if self._is_client else "server"
        return f"<MemoryQuicConnection {role} streams={len(self._streams)}>"
