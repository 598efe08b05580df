"""UDP endpoints for QUIC on anyio: :func:`listen` (servers) and :func:`connect` (clients).

What belongs here: the endpoints. A server endpoint reads one UDP socket
and hands each datagram to the connection its destination connection id
names (RFC 9000 section 5.2), creating a connection for a new client's
Initial packet; a client endpoint is one connected UDP socket and one
connection. Both return
:class:`~hyper_core.quic._aioquic.AioquicConnection` objects once their
TLS handshake is done. Their TLS setup (trust store, certificate chain) is
here too; the socket itself is ``_udp.py``.

Strategy: each endpoint owns a plain non-blocking socket and waits for it
through anyio (``wait_readable``/``wait_writable``), so this runs on
asyncio, uvloop and trio, and reads every datagram the kernel has queued
in one go (see ``_udp._UdpSocket`` for why that matters). Each connection
has its own driver task; they send on the shared server socket directly
(a send never waits unless the kernel's buffer is full; then one task at a
time waits for room).

Packets for unknown connection ids that are not a new client's Initial
are dropped. A stateless reset (RFC 9000 section 10.3) would need the
reset tokens to be derived from a key that survives restarts; aioquic
issues random ones, so after a restart we could not make a valid reset
anyway, and silence lets the client's idle timeout (or its own reset
detection) end the stale connection. ``retry=True`` validates client
addresses with a Retry packet first (section 8.1.2), as aioquic's server does.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any, Final

import anyio
import anyio.abc
import anyio.lowlevel

from hyper_core.quic._aioquic import (
    DEFAULT_SEND_BUFFER,
    Address,
    AioquicConnection,
    new_quic,
    require_aioquic,
)
from hyper_core.quic._udp import _bound_socket, _connected_socket, _UdpSocket
from hyper_core.rt._quic import QuicConnectionClosed

__all__ = [
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_DATAGRAM_SIZE",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_STREAM_WINDOW",
    "QuicListener",
    "connect",
    "listen",
]

#: Bytes a stream may receive ahead of its reader (HTTP/2's hyper default).
DEFAULT_STREAM_WINDOW: Final = 1_048_576
#: Bytes all streams together may receive ahead of their readers.
DEFAULT_CONNECTION_WINDOW: Final = 4_194_304
#: Bidirectional streams the peer may have open at once (hyper's HTTP/2 default).
DEFAULT_MAX_STREAMS: Final = 200
#: Seconds of silence after which QUIC closes the connection (RFC 9000 section 10.1).
DEFAULT_IDLE_TIMEOUT: Final = 30.0
#: Seconds the TLS handshake may take.
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
#: Connections a listener serves at once; Initial packets beyond it are dropped.
DEFAULT_MAX_CONNECTIONS: Final = 1000
#: Largest UDP payload sent, in bytes: 1,500 (Ethernet) - 40 (IPv6) - 8 (UDP)
#: - 20 of margin for tunnels; aioquic's own default is QUIC's floor, 1,200.
DEFAULT_MAX_DATAGRAM_SIZE: Final = 1432
#: Seconds a closing endpoint gives its connections to send CONNECTION_CLOSE.
_CLOSE_GRACE: Final = 0.25
_H3: Final = ("h3",)


def _system_verify_paths() -> tuple[str | None, str | None]:
    """The OS trust store as files (OpenSSL's defaults), or certifi's bundle (as hyper-tls)."""
    paths = ssl.get_default_verify_paths()
    cafile: str | None = paths.cafile
    capath: str | None = paths.capath
    if cafile is not None and os.path.isfile(cafile):
        return cafile, None
    if capath is not None and os.path.isdir(capath) and any(os.scandir(capath)):
        return None, capath
    import certifi

    return certifi.where(), None


@contextlib.asynccontextmanager
async def connect(
    host: str,
    port: int,
    *,
    server_name: str | None = None,
    cafile: str | None = None,
    cadata: bytes | None = None,
    verify: bool = True,
    alpn_protocols: Sequence[str] = _H3,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    stream_window: int = DEFAULT_STREAM_WINDOW,
    connection_window: int = DEFAULT_CONNECTION_WINDOW,
    send_buffer: int = DEFAULT_SEND_BUFFER,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
) -> AsyncIterator[AioquicConnection]:
    """Open a QUIC connection to ``host:port``; yield it once the handshake is done.

    The connection is driven by tasks of this context and closed when it exits.

    Args:
        host: Name or address to send to (resolved by anyio).
        port: UDP port.
        server_name: The name the certificate must hold (and SNI); default ``host``.
        cafile: Trust only the CAs in this PEM file (as hyper-tls's
            ``--cacert``); default: the operating system's store.
        cadata: Trust only these PEM CAs.
        verify: Verify the certificate (never turn it off outside tests).
        alpn_protocols: What to offer by ALPN (HTTP/3: ``h3``).
        idle_timeout: Seconds of silence before the connection closes.
        handshake_timeout: Seconds the handshake may take.
        stream_window: Bytes a stream may receive ahead of its reader.
        connection_window: Bytes all streams may receive ahead of their readers.
        send_buffer: Bytes a stream may hold unacknowledged before ``send`` waits.
        max_datagram_size: Largest UDP payload we send, in bytes (at least
            1,200; the default fits a 1,500-byte Ethernet MTU with IPv6).

    Raises:
        ImportError: aioquic is not installed (``hyper-core[http3]``).
        OSError: The name did not resolve, or the socket could not be made.
        QuicConnectionClosed: The handshake failed (``reason`` says why;
            ``timed_out`` when nothing answered in time).
    """
    require_aioquic()
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(
        is_client=True,
        alpn_protocols=list(alpn_protocols),
        idle_timeout=idle_timeout,
        server_name=server_name or host,
        max_stream_data=stream_window,
        max_data=connection_window,
        max_datagram_size=max_datagram_size,
    )
    if not verify:
        config.verify_mode = ssl.CERT_NONE
    elif cafile is not None or cadata is not None:
        config.load_verify_locations(cafile=cafile, cadata=cadata)
    else:
        system_file, system_path = _system_verify_paths()
        config.load_verify_locations(cafile=system_file, capath=system_path)
    io = _UdpSocket(await _connected_socket(host, port), connected=True)
    remote: Address = tuple(io.sock.getpeername())
    quic = new_quic(config, stream_window=stream_window, connection_window=connection_window)
    conn = AioquicConnection(quic, io.send, send_buffer=send_buffer)
    failure: QuicConnectionClosed | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_receive_connected, io, conn, remote)
            tg.start_soon(conn.drive)
            quic.connect(remote, now=anyio.current_time())
            conn.wake()
            with anyio.move_on_after(handshake_timeout):
                await conn.wait_handshake()
            if conn.closed is not None:
                failure = conn.closed
            elif conn.alpn_protocol is None:
                conn.close(0, "handshake timeout")
                failure = QuicConnectionClosed(0, "handshake timeout", timed_out=True)
            if failure is not None:
                tg.cancel_scope.cancel()
            else:
                try:
                    yield conn
                finally:
                    with anyio.CancelScope(shield=True):
                        await conn.close_now(0, "")
                    tg.cancel_scope.cancel()
    finally:
        io.close()
    if failure is not None:
        raise failure  # outside the task group: one exception, not a group


async def _receive_connected(io: _UdpSocket, conn: AioquicConnection, remote: Address) -> None:
    with contextlib.suppress(anyio.ClosedResourceError):
        while True:
            batch = await io.receive()
            now = anyio.current_time()
            for data, _ in batch:
                conn.feed_datagram(data, remote, now)
            conn.datagrams_fed()


_PEM_BLOCK: Final = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\s*", re.DOTALL)


def _load_cert_chain(
    config: Any,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    password: str | bytes | None,
) -> None:
    """Load the chain and key; a key inside ``certfile`` may be of any PEM kind.

    aioquic's own loader finds a key in the certificate file only as PKCS#8
    after the certificates; ``ssl`` (and so hyper-tls) takes any order and
    kind, so this does too.
    """
    from aioquic.tls import load_pem_private_key, load_pem_x509_certificates

    with open(certfile, "rb") as file:
        pem = file.read()
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(pem)]
    certificates = load_pem_x509_certificates(b"".join(b for b in blocks if b"CERTIFICATE" in b))
    if not certificates:
        raise OSError(f"no certificate in {os.fspath(certfile)}")
    secret = password.encode() if isinstance(password, str) else password
    if keyfile is not None:
        with open(keyfile, "rb") as file:
            key_pem = file.read()
    else:
        keys = [b for b in blocks if b"PRIVATE KEY" in b]
        if not keys:
            raise OSError(f"no private key in {os.fspath(certfile)} and no keyfile")
        key_pem = keys[0]
    config.certificate = certificates[0]
    config.certificate_chain = certificates[1:]
    config.private_key = load_pem_private_key(key_pem, password=secret)


class QuicListener:
    """A server's UDP endpoint: accepts QUIC connections (see :func:`listen`)."""

    def __init__(self, sock: socket.socket, config: Any, options: dict[str, Any]) -> None:
        from aioquic._buffer import Buffer
        from aioquic.quic.packet import pull_quic_header
        from aioquic.quic.retry import QuicRetryTokenHandler

        # Used per datagram: bound once, not imported on each call.
        self._buffer = Buffer
        self._pull_header = pull_quic_header

        self._io = _UdpSocket(sock, connected=False)
        self._config = config
        self._options = options
        self._retry = QuicRetryTokenHandler() if options["retry"] else None
        self._by_cid: dict[bytes, AioquicConnection] = {}
        self._count = 0
        self._ready_send, self._ready = anyio.create_memory_object_stream[AioquicConnection](
            options["backlog"]
        )
        self._tg: anyio.abc.TaskGroup | None = None
        self._conns: set[AioquicConnection] = set()

    @property
    def local_address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        address = self._io.sock.getsockname()
        return (str(address[0]), int(address[1]))

    async def accept(self) -> AioquicConnection:
        """The next connection whose handshake completed.

        Raises:
            anyio.ClosedResourceError: The listener is closed.
        """
        try:
            return await self._ready.receive()
        except anyio.EndOfStream:
            raise anyio.ClosedResourceError from None

    def __aiter__(self) -> QuicListener:
        return self

    async def __anext__(self) -> AioquicConnection:
        try:
            return await self.accept()
        except anyio.ClosedResourceError:
            raise StopAsyncIteration from None

    @property
    def connections(self) -> int:
        """Connections open now (handshaking included)."""
        return self._count

    async def _send(self, datagrams: list[tuple[bytes, Address]]) -> None:
        await self._io.send(datagrams)  # shared by every connection's driver

    async def _receive_loop(self) -> None:
        with contextlib.suppress(anyio.ClosedResourceError):
            while True:
                fed: set[AioquicConnection] = set()
                batch = await self._io.receive()
                now = anyio.current_time()
                for data, addr in batch:
                    conn = self._datagram(data, addr, now)
                    if conn is not None:
                        fed.add(conn)
                for conn in fed:
                    conn.datagrams_fed()

    def _datagram(self, data: bytes, addr: Address, now: float) -> AioquicConnection | None:
        """Route one datagram; return the connection it was fed to (then call datagrams_fed)."""
        config = self._config
        try:
            header = self._pull_header(
                self._buffer(data=data), host_cid_length=config.connection_id_length
            )
        except ValueError:
            return None
        conn = self._by_cid.get(header.destination_cid)
        if conn is not None:
            conn.feed_datagram(data, addr, now)
            return conn
        from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE
        from aioquic.quic.packet import (
            QuicPacketType,
            encode_quic_retry,
            encode_quic_version_negotiation,
        )

        if (
            header.packet_type != QuicPacketType.VERSION_NEGOTIATION
            and header.version is not None
            and header.version not in config.supported_versions
        ):
            self._send_soon(
                encode_quic_version_negotiation(
                    source_cid=header.destination_cid,
                    destination_cid=header.source_cid,
                    supported_versions=config.supported_versions,
                ),
                addr,
            )
            return None
        if header.packet_type != QuicPacketType.INITIAL or len(data) < SMALLEST_MAX_DATAGRAM_SIZE:
            return None  # an unknown connection: dropped (see the module doc)
        if self._count >= self._options["max_connections"] or self._tg is None:
            return None  # at the cap: the client retries its Initial, or gives up
        original_dcid: bytes | None = header.destination_cid
        retry_scid: bytes | None = None
        if self._retry is not None and header.version is not None:
            if not header.token:
                source_cid = os.urandom(8)
                token = self._retry.create_token(
                    address=addr,
                    original_destination_connection_id=header.destination_cid,
                    retry_source_connection_id=source_cid,
                    now=now,
                )
                self._send_soon(
                    encode_quic_retry(
                        version=header.version,
                        source_cid=source_cid,
                        destination_cid=header.source_cid,
                        original_destination_cid=header.destination_cid,
                        retry_token=token,
                    ),
                    addr,
                )
                return None
            try:
                original_dcid = self._retry.validate_token(
                    address=addr,
                    destination_cid=header.destination_cid,
                    token=header.token,
                    now=now,
                )
            except ValueError:
                return None  # a bad or stale token: ignore it (the client times out)
            retry_scid = header.destination_cid
        quic = new_quic(
            config,
            stream_window=self._options["stream_window"],
            connection_window=self._options["connection_window"],
            max_streams=self._options["max_streams"],
            original_destination_connection_id=original_dcid,
            retry_source_connection_id=retry_scid,
        )
        conn = AioquicConnection(quic, self._send, send_buffer=self._options["send_buffer"])
        conn.local_address = self.local_address
        conn._on_cid_issued = partial(self._map, conn)
        conn._on_cid_retired = self._unmap
        self._map(conn, header.destination_cid)
        self._map(conn, conn.host_cid)
        self._count += 1
        self._conns.add(conn)
        self._tg.start_soon(self._run_connection, conn)
        conn.feed_datagram(data, addr, now)
        return conn

    def _send_soon(self, data: bytes, addr: Address) -> None:
        if self._tg is not None:
            self._tg.start_soon(self._send, [(data, addr)])

    def _map(self, conn: AioquicConnection, cid: bytes) -> None:
        self._by_cid[cid] = conn

    def _unmap(self, cid: bytes) -> None:
        self._by_cid.pop(cid, None)

    async def _run_connection(self, conn: AioquicConnection) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(conn.drive)
                with anyio.move_on_after(self._options["handshake_timeout"]):
                    await conn.wait_handshake()
                if conn.closed is None and conn.alpn_protocol is None:
                    conn.close(0, "handshake timeout")
                elif conn.closed is None:
                    try:
                        self._ready_send.send_nowait(conn)
                    except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                        conn.close(0x2, "server busy")  # QUIC CONNECTION_REFUSED
        finally:
            self._count -= 1
            self._conns.discard(conn)
            for cid in [cid for cid, owner in self._by_cid.items() if owner is conn]:
                del self._by_cid[cid]

    async def aclose(self) -> None:
        """Stop accepting; close every connection (CONNECTION_CLOSE) and the socket."""
        self._ready_send.close()
        self._ready.close()
        with anyio.move_on_after(_CLOSE_GRACE, shield=True):
            for conn in list(self._conns):
                await conn.close_now(0, "server closing")
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        self._io.close()


@contextlib.asynccontextmanager
async def listen(
    host: str,
    port: int,
    *,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    password: str | bytes | None = None,
    alpn_protocols: Sequence[str] = _H3,
    max_streams: int = DEFAULT_MAX_STREAMS,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    stream_window: int = DEFAULT_STREAM_WINDOW,
    connection_window: int = DEFAULT_CONNECTION_WINDOW,
    send_buffer: int = DEFAULT_SEND_BUFFER,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    retry: bool = False,
    backlog: int = 128,
    sock: socket.socket | None = None,
) -> AsyncIterator[QuicListener]:
    """Listen for QUIC connections on UDP ``host:port``; yield the :class:`QuicListener`.

    Args:
        host: The address to bind (loopback by default in hyper-util).
        port: The UDP port; 0 picks a free one (see ``local_address``).
        certfile: The certificate chain, PEM, leaf first.
        keyfile: Its private key, PEM (default: inside ``certfile``).
        password: The key's password, if it is encrypted.
        alpn_protocols: The protocols accepted by ALPN (HTTP/3: ``h3``).
        max_streams: Bidirectional streams a client may have open at once
            (QUIC's MAX_STREAMS); beyond it clients wait for credit.
        idle_timeout: Seconds of silence before a connection closes.
        handshake_timeout: Seconds a handshake may take.
        stream_window: Bytes a stream may receive ahead of its reader.
        connection_window: Bytes a connection may receive ahead of its readers.
        send_buffer: Bytes a stream may hold unacknowledged before ``send`` waits.
        max_datagram_size: Largest UDP payload we send, in bytes (see :func:`connect`).
        max_connections: Connections at once; new clients beyond it are ignored.
        retry: Validate each client's address with a Retry packet first
            (one more round trip; a defence against spoofed floods).
        backlog: Handshaken connections waiting for :meth:`QuicListener.accept`.
        sock: A bound UDP socket to serve instead of binding ``host`` and
            ``port`` (a supervisor's, for a worker process); closed with
            the listener.

    Raises:
        ImportError: aioquic is not installed (``hyper-core[http3]``).
        OSError: The address could not be bound, or a file not read.
        ValueError: ``sock`` is not a UDP socket.
    """
    require_aioquic()
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(
        is_client=False,
        alpn_protocols=list(alpn_protocols),
        idle_timeout=idle_timeout,
        max_stream_data=stream_window,
        max_data=connection_window,
        max_datagram_size=max_datagram_size,
    )
    _load_cert_chain(config, certfile, keyfile, password)
    if sock is None:
        sock = await _bound_socket(host, port)
    elif sock.type != socket.SOCK_DGRAM:
        raise ValueError("sock must be a UDP (SOCK_DGRAM) socket")
    options = {
        "stream_window": stream_window,
        "connection_window": connection_window,
        "send_buffer": send_buffer,
        "max_streams": max_streams,
        "max_connections": max_connections,
        "handshake_timeout": handshake_timeout,
        "retry": retry,
        "backlog": backlog,
    }
    listener = QuicListener(sock, config, options)
    async with anyio.create_task_group() as tg:
        listener._tg = tg
        tg.start_soon(listener._receive_loop)
        try:
            yield listener
        finally:
            with anyio.CancelScope(shield=True):
                await listener.aclose()
