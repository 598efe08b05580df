"""aioquic behind :class:`hyper_core.rt.QuicConnection`: one QUIC connection and its driver.

What belongs here: :class:`AioquicConnection` (streams, events, flow control
and the driver loop of one ``aioquic.quic.connection.QuicConnection``),
the aioquic subclass that makes flow control follow the reader, and
:func:`require_aioquic` (the one error for a missing extra). The UDP side
(endpoints, demultiplexing) is in ``_endpoint``, the sockets in ``_udp``.

Strategy: aioquic is sans-I/O; this owns the clock and the datagrams. One
driver task per connection sends what aioquic has produced and sleeps until
aioquic's timer or a wake-up (received datagram, data queued by a stream).
Received datagrams are fed by whoever reads the socket, synchronously, and
their events are dispatched at once to the stream halves.

Private internals of aioquic (pinned to ``aioquic>=1.2,<2`` by the
``http3`` extra; exit plan below). aioquic grows every receive window by
itself as data *arrives* (doubling at half use) and buffers every byte
given to ``send_stream_data``, so on its own a slow reader never slows its
sender and a fast writer never waits. Three small hooks fix that, all in
:func:`_flow_controlled_class`:

* ``_write_stream_limits`` / ``_write_connection_limits`` are wrapped so
  that the limits sent are "bytes the application consumed + window",
  with aioquic's own doubling disabled by hiding the arrival counters
  (``receiver.highest_offset``, ``_local_max_data.used``) for the call.
* ``QuicStreamSender._buffer_start``/``_buffer_stop`` are read to know how
  many bytes a stream holds unacknowledged, so ``send`` can wait.
* ``_local_max_streams_bidi.value`` is set to the server's stream limit
  (aioquic has no option for it; it advertises 128).

Exit plan: an aioquic option for application-driven flow control (or its
fork qh3's equivalent) replaces the hooks; the tests in
``test_quic_aioquic.py`` pin the behaviour (a slow reader bounds the
sender) so a change inside aioquic shows up as a failure, not a silent
memory growth.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel

from hyper_core.quic._stream import QuicStreamHandle, RecvHalf
from hyper_core.rt._quic import QuicConnectionClosed, QuicStreamReset

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection as _AioquicConnection

__all__ = ["MISSING_EXTRA", "AioquicConnection", "require_aioquic"]

#: The one message for HTTP/3 without its optional dependency.
MISSING_EXTRA: Final = (
    "HTTP/3 needs aioquic, which is not installed: "
    "pip install 'hyper-core[http3]' (or 'hyper-util[http3]')"
)

#: Bytes a stream may hold unacknowledged before ``send`` waits.
DEFAULT_SEND_BUFFER: Final = 262_144

Address = tuple[Any, ...]
SendDatagrams = Callable[[list[tuple[bytes, Address]]], Awaitable[None]]


def require_aioquic() -> None:
    """Import aioquic, or raise the one clear error naming the extra.

    Raises:
        ImportError: aioquic is not installed.
    """
    try:
        import aioquic  # noqa: F401
    except ImportError as exc:
        raise ImportError(MISSING_EXTRA) from exc


@functools.cache
def _flow_controlled_class() -> type[_AioquicConnection]:
    """Return aioquic's QuicConnection with reader-paced receive windows (see module doc)."""
    require_aioquic()
    from aioquic.quic.connection import QuicConnection

    class FlowControlled(QuicConnection):
        hyper_stream_window = 1 << 20
        hyper_connection_window = 1 << 22
        hyper_consumed_total = 0
        hyper_consumed: dict[int, int]

        def _write_stream_limits(self, builder: Any, space: Any, stream: Any) -> None:
            # Called for every stream in every packet: the usual case returns early.
            local = stream.max_stream_data_local
            if local:
                window = self.hyper_stream_window
                wanted = self.hyper_consumed.get(stream.stream_id, 0) + window
                # Batch the updates: raise the limit once half a window was read.
                if wanted - local >= window // 2:
                    stream.max_stream_data_local = local = wanted
            if stream.max_stream_data_local_sent == local:
                return  # nothing to announce (aioquic's own doubling is what is skipped)
            receiver = stream.receiver
            highest = receiver.highest_offset
            receiver.highest_offset = 0  # hides the arrival count: no doubling
            try:
                super()._write_stream_limits(builder, space, stream)
            finally:
                receiver.highest_offset = highest

        def _write_connection_limits(self, builder: Any, space: Any) -> None:
            max_data = self._local_max_data
            wanted = self.hyper_consumed_total + self.hyper_connection_window
            if wanted - max_data.value >= self.hyper_connection_window // 2:
                max_data.value = wanted
            bidi = self._local_max_streams_bidi
            uni = self._local_max_streams_uni
            if (
                max_data.value == max_data.sent
                and bidi.value == bidi.sent
                and uni.value == uni.sent
            ):
                return  # no limit to announce: the usual case, once per packet
            used = max_data.used
            max_data.used = 0
            try:
                super()._write_connection_limits(builder, space)
            finally:
                max_data.used = used

    return FlowControlled


def new_quic(
    configuration: Any,
    *,
    stream_window: int,
    connection_window: int,
    max_streams: int | None = None,
    **kwargs: Any,
) -> _AioquicConnection:
    """An aioquic connection with reader-paced flow control (``kwargs`` go to aioquic)."""
    quic: Any = _flow_controlled_class()(configuration=configuration, **kwargs)
    quic.hyper_stream_window = stream_window
    quic.hyper_connection_window = connection_window
    quic.hyper_consumed = {}
    if max_streams is not None:
        quic._local_max_streams_bidi.value = max_streams
        quic._local_max_streams_bidi.sent = max_streams
    result: _AioquicConnection = quic
    return result


class AioquicConnection:
    """One aioquic connection as :class:`hyper_core.rt.QuicConnection` (see the module doc).

    Made by :func:`hyper_core.quic.connect` and :func:`hyper_core.quic.listen`;
    not constructed by applications.
    """

    def __init__(
        self,
        quic: Any,
        send_datagrams: SendDatagrams,
        *,
        send_buffer: int = DEFAULT_SEND_BUFFER,
        on_cid_issued: Callable[[bytes], None] | None = None,
        on_cid_retired: Callable[[bytes], None] | None = None,
    ) -> None:
        from aioquic.quic import events

        self._events = events
        self._quic: Any = quic
        self._send_datagrams = send_datagrams
        self._send_buffer = send_buffer
        self._on_cid_issued = on_cid_issued
        self._on_cid_retired = on_cid_retired
        self._is_client = bool(quic.configuration.is_client)
        self._streams: dict[int, QuicStreamHandle] = {}
        self._peer_seen: dict[int, int] = {}  # highest peer stream id per stream type
        # Peer stream ids below the highest seen whose first bytes have not
        # arrived yet (a lost or reordered packet): still new streams when
        # they come. Bounded by the stream limit we grant (aioquic refuses
        # ids beyond it).
        self._peer_gaps: set[int] = set()
        self._accept_queue: list[QuicStreamHandle] = []
        self._accept_waiter: anyio.Event | None = None
        self._wake: anyio.Event | None = None
        self._wake_pending = False  # a wake() came while the driver was busy
        self._room: anyio.Event | None = None
        self._handshake = anyio.Event()
        self.alpn_protocol: str | None = None
        self._closed: QuicConnectionClosed | None = None
        self._closed_event = anyio.Event()
        self._close_requested = False
        self._remote: tuple[str, int] | None = None
        self.local_address: tuple[str, int] | None = None  # set by the endpoint

    # -- QuicConnection -------------------------------------------------------------

    @property
    def is_client(self) -> bool:
        """Whether this side started the connection."""
        return self._is_client

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The peer's address."""
        return self._remote

    def extra(self, attribute: Any, default: Any = None) -> Any:
        """anyio-style typed attributes, as a TLS stream over TCP has them.

        Known: ``SocketAttribute.remote_address`` and ``local_address``;
        ``TLSAttribute.alpn_protocol``, ``tls_version`` (QUIC is always
        ``"TLSv1.3"``), ``cipher`` (``(name, "TLSv1.3", secret bits)``, as
        ``ssl``'s ``cipher()``) and ``server_side``. Anything else (there is
        no ``ssl_object``: QUIC's TLS is aioquic's own) gives ``default``.
        """
        from anyio.abc import SocketAttribute
        from anyio.streams.tls import TLSAttribute

        if attribute is SocketAttribute.remote_address and self._remote is not None:
            return self._remote
        if attribute is SocketAttribute.local_address and self.local_address is not None:
            return self.local_address
        if self.alpn_protocol is None:
            return default  # no handshake yet: no TLS attributes
        if attribute is TLSAttribute.tls_version:
            return "TLSv1.3"
        if attribute is TLSAttribute.alpn_protocol:
            return self.alpn_protocol
        if attribute is TLSAttribute.server_side:
            return not self._is_client
        if attribute is TLSAttribute.cipher:
            schedule = getattr(self._quic.tls, "key_schedule", None)
            suite = getattr(schedule, "cipher_suite", None)
            if suite is None:
                return default
            name = f"TLS_{suite.name}"
            return (name, "TLSv1.3", 128 if "128" in name else 256)
        return default

    async def open_stream(self) -> QuicStreamHandle:
        """Open a bidirectional stream (aioquic holds its data until MAX_STREAMS allows it)."""
        return self._open(False)

    async def open_unidirectional_stream(self) -> QuicStreamHandle:
        """Open a unidirectional stream."""
        return self._open(True)

    def _open(self, unidirectional: bool) -> QuicStreamHandle:
        if self._closed is not None:
            raise self._closed
        quic = self._quic
        sid = quic.get_next_available_stream_id(is_unidirectional=unidirectional)
        quic.send_stream_data(sid, b"", False)  # creates it in aioquic
        handle = QuicStreamHandle(self, sid, None if unidirectional else RecvHalf())
        self._streams[sid] = handle
        return handle

    async def accept_stream(self) -> QuicStreamHandle:
        """The next stream the peer opened."""
        while not self._accept_queue:
            if self._closed is not None:
                raise self._closed
            self._accept_waiter = waiter = anyio.Event()
            await waiter.wait()
        return self._accept_queue.pop(0)

    def close(self, error_code: int = 0, reason: str = "", /) -> None:
        """Close with an application error code; the driver sends CONNECTION_CLOSE."""
        if self._closed is None and not self._close_requested:
            self._close_requested = True
            self._quic.close(error_code=error_code, reason_phrase=reason)
            self.wake()

    async def close_now(self, error_code: int = 0, reason: str = "") -> None:
        """Close and send CONNECTION_CLOSE at once, without the driver (it may be cancelled).

        For the end of an endpoint's life; call it shielded from cancellation.
        """
        self._close_requested = True
        quic = self._quic
        # Straight to aioquic: our side may already count the connection as
        # over (its driver was cancelled) while the peer has not been told.
        quic.close(error_code=error_code, reason_phrase=reason)
        datagrams = quic.datagrams_to_send(now=anyio.current_time())
        with contextlib.suppress(Exception):
            await self._send_datagrams(datagrams)
        if self._closed is None:
            self._terminate(QuicConnectionClosed(error_code, reason, by_peer=False))

    async def drain(self) -> None:
        """Wait until every stream's data was acknowledged (or the connection closed)."""
        quic = self._quic
        while self._closed is None:
            if all(s.sender._buffer_start == s.sender._buffer_stop for s in quic._streams.values()):
                return
            self._room = room = self._room or anyio.Event()
            await room.wait()

    async def wait_closed(self) -> QuicConnectionClosed:
        """Wait for the end of the connection."""
        await self._closed_event.wait()
        assert self._closed is not None
        return self._closed

    # -- StreamOwner ------------------------------------------------------------------

    def consumed(self, stream_id: int, size: int) -> None:
        """The application read ``size`` bytes: the peer may send that much more."""
        quic = self._quic
        consumed = quic.hyper_consumed
        total = consumed.get(stream_id, 0) + size
        consumed[stream_id] = total
        quic.hyper_consumed_total += size
        # Wake the driver only when a window update is due (half a window read).
        stream = quic._streams.get(stream_id)
        if stream is None or (
            total + quic.hyper_stream_window - stream.max_stream_data_local
            >= quic.hyper_stream_window // 2
        ):
            self.wake()

    async def send_stream(self, stream_id: int, data: bytes, fin: bool) -> None:
        """Queue ``data`` in aioquic once the stream holds less than the send buffer."""
        quic = self._quic
        handle = self._streams.get(stream_id)
        while True:
            if handle is not None and handle.send_error is not None:
                raise handle.send_error
            if self._closed is not None:
                raise self._closed
            stream = quic._streams.get(stream_id)
            if stream is None:
                raise anyio.ClosedResourceError("the stream is finished")
            sender = stream.sender
            if sender._buffer_stop - sender._buffer_start < self._send_buffer:
                break
            self._room = room = self._room or anyio.Event()
            await room.wait()
        try:
            quic.send_stream_data(stream_id, data, fin)
        except (ValueError, AssertionError) as exc:  # reset or finished meanwhile
            raise anyio.ClosedResourceError(str(exc)) from exc
        self.wake()
        if fin:
            self._forget_send(stream_id)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        """RESET_STREAM."""
        if self._closed is None:
            try:
                self._quic.reset_stream(stream_id, error_code)
            except (ValueError, AssertionError):
                return
            self.wake()

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        """STOP_SENDING; whatever still arrives counts as read (flow control)."""
        if self._closed is None:
            try:
                self._quic.stop_stream(stream_id, error_code)
            except (ValueError, AssertionError):
                return
            self.wake()

    def _forget_send(self, stream_id: int) -> None:
        handle = self._streams.get(stream_id)
        if handle is not None and (
            handle.recv is None or handle.recv.fin or handle.recv.error is not None
        ):
            self._streams.pop(stream_id, None)

    # -- driving ----------------------------------------------------------------------

    def wake(self) -> None:
        """Ask the driver to send what aioquic has (data was queued or credit returned)."""
        self._wake_pending = True
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def _wake_room(self) -> None:
        room = self._room
        if room is not None:
            self._room = None
            room.set()

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        """Feed one datagram (called by whoever reads the socket)."""
        self.feed_datagram(data, addr, now)
        self.datagrams_fed()

    def feed_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Feed one datagram of a batch; call :meth:`datagrams_fed` after the batch."""
        if self._remote is None:
            self._remote = (str(addr[0]), int(addr[1]))
        self._quic.receive_datagram(data, addr, now=now)

    def datagrams_fed(self) -> None:
        """A batch was fed: dispatch its events and let the driver answer it once."""
        self._process_events()
        self.wake()
        self._wake_room()  # acknowledgements may have freed send buffers

    async def drive(self) -> None:
        """Send, keep aioquic's timers, and process events until the connection ends."""
        quic = self._quic
        try:
            while True:
                self._wake_pending = False
                now = anyio.current_time()
                datagrams = quic.datagrams_to_send(now=now)
                if datagrams:
                    await self._send_datagrams(datagrams)
                    self._wake_room()
                self._process_events()
                if self._closed is not None:
                    return
                if self._wake_pending:
                    continue  # woken while sending: there may be more to send
                timer_at = quic.get_timer()
                if timer_at is not None and timer_at <= anyio.current_time():
                    # Already due (most often the pacer's next send time,
                    # passed while this loop ran): no timer to arm. One
                    # scheduling round lets the socket's reader go first.
                    quic.handle_timer(now=anyio.current_time())
                    self._process_events()
                    await anyio.lowlevel.checkpoint()
                    continue
                self._wake = wake = anyio.Event()
                if timer_at is None:
                    await wake.wait()
                    continue
                with anyio.CancelScope(deadline=timer_at):
                    await wake.wait()
                if not wake.is_set():
                    quic.handle_timer(now=max(timer_at, anyio.current_time()))
                    self._process_events()
        finally:
            if self._closed is None:
                self._terminate(QuicConnectionClosed(0, "the driver stopped", by_peer=False))

    def _process_events(self) -> None:
        events = self._events
        quic = self._quic
        while (event := quic.next_event()) is not None:
            kind = type(event)
            if kind is events.StreamDataReceived:
                self._on_data(event.stream_id, event.data, event.end_stream)
            elif kind is events.StreamReset:
                handle = self._streams.get(event.stream_id)
                if handle is not None and handle.recv is not None:
                    unread = len(handle.recv.buffer)
                    handle.fail_recv(QuicStreamReset(event.error_code))
                    if unread:
                        self.consumed(event.stream_id, unread)
            elif kind is events.StopSendingReceived:
                handle = self._streams.get(event.stream_id)
                if handle is not None:
                    handle.fail_send(QuicStreamReset(event.error_code))
                    self._wake_room()
            elif kind is events.HandshakeCompleted:
                self.alpn_protocol = event.alpn_protocol
                self._handshake.set()
            elif kind is events.ConnectionIdIssued:
                if self._on_cid_issued is not None:
                    self._on_cid_issued(event.connection_id)
            elif kind is events.ConnectionIdRetired:
                if self._on_cid_retired is not None:
                    self._on_cid_retired(event.connection_id)
            elif kind is events.ConnectionTerminated:
                timed_out = event.reason_phrase == "Idle timeout"
                self._terminate(
                    QuicConnectionClosed(
                        event.error_code,
                        event.reason_phrase,
                        by_peer=not self._close_requested and not timed_out,
                        timed_out=timed_out,
                        application=event.frame_type is None,
                    )
                )

    def _on_data(self, sid: int, data: bytes, fin: bool) -> None:
        handle = self._streams.get(sid)
        if handle is None:
            ours = bool(sid & 0x1) != self._is_client
            kind = sid & 0x3
            highest = self._peer_seen.get(kind, kind - 4)
            if ours or self._closed is not None or (sid <= highest and sid not in self._peer_gaps):
                if data:
                    self.consumed(sid, len(data))  # a stream we let go of
                return
            if sid > highest:
                self._peer_gaps.update(range(highest + 4, sid, 4))
                self._peer_seen[kind] = sid
            else:
                self._peer_gaps.discard(sid)
            handle = QuicStreamHandle(self, sid, RecvHalf())
            self._streams[sid] = handle
            self._accept_queue.append(handle)
            waiter = self._accept_waiter
            if waiter is not None:
                self._accept_waiter = None
                waiter.set()
        recv = handle.recv
        if recv is None:
            return
        if recv.error is not None:
            if data:
                self.consumed(sid, len(data))  # discarded after STOP_SENDING
            return
        recv.feed(data, fin)
        if fin and handle.send_ended:
            del self._streams[sid]  # both halves are over

    def _terminate(self, closed: QuicConnectionClosed) -> None:
        if self._closed is not None:
            return
        self._closed = closed
        for handle in self._streams.values():
            handle.fail(closed)
        self._streams.clear()
        self._handshake.set()
        for event in (self._accept_waiter, self._room, self._wake):
            if event is not None:
                event.set()
        self._closed_event.set()

    async def wait_handshake(self) -> bool:
        """Wait until the TLS handshake completed; False if it failed (see :attr:`closed`)."""
        await self._handshake.wait()
        return self._closed is None

    @property
    def closed(self) -> QuicConnectionClosed | None:
        """How the connection ended, once it has."""
        return self._closed

    @property
    def host_cid(self) -> bytes:
        """Our first connection id (the server's demultiplexing key)."""
        cid: bytes = self._quic.host_cid
        return cid

    def __repr__(self) -> str:
        role = "client" if self._is_client else "server"
        return f"<AioquicConnection {role} {self._remote} streams={len(self._streams)}>"
