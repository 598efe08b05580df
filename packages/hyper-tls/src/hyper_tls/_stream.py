"""TLS over any hyper IO, and ``MaybeHttps``: plain or TLS behind one type.

What belongs here: :class:`TlsStream` (the TLS record layer on a pair of
``ssl.MemoryBIO`` over any object satisfying :class:`hyper_core.rt.IO`) and
:class:`MaybeHttps`, which the connector returns for every URL.

Strategy: TLS runs on ``ssl.SSLObject`` with memory BIOs, not on a socket,
so it works over whatever the inner connector returned: the fast asyncio
transport, an anyio socket stream, a proxy tunnel (an ``Upgraded`` with
read-ahead bytes) or an in-memory pipe. Each SSL call is retried after
moving bytes: ``SSLWantReadError`` sends what is pending and receives more.
The handshake's last flight (the client's Finished in TLS 1.3 and in a
resumed TLS 1.2 session; the server's tickets) is not sent on its own: it
goes out with the first :meth:`~TlsStream.send`, or when a reader is about
to wait for the peer, after one pass of the event loop, so that a request
written by another task in that pass (the pooled client's order: its
connection reader starts first) shares the write.

Blocking: with a ``truststore.SSLContext`` the certificate chain is checked
by the operating system inside ``do_handshake()`` (a synchronous call that
can take from microseconds to seconds when the OS fetches intermediates or
revocation data). So, as anyio does for ``wrap_bio``, whenever the context
is not exactly ``ssl.SSLContext`` the ``wrap_bio`` and every
``do_handshake()`` step run in a worker thread (``anyio.to_thread``); the
event loop never waits on the OS verifier. Plain contexts verify inside
OpenSSL from memory, which takes microseconds, so they stay inline. Only
handshakes move to a thread; reads and writes never do.

Attributes use anyio's typed attributes (``TLSAttribute``), so code written
for anyio's ``TLSStream`` (and ``hyper_util.server.serve``, which reads
``TLSAttribute.alpn_protocol``) reads them the same way.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final, TypeVar, final

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio import TypedAttributeProvider
from anyio.streams.tls import TLSAttribute

from hyper_core.rt import IO, receive_or_eof
from hyper_tls._sessions import resumable

__all__ = ["MaybeHttps", "TlsStream"]

_T = TypeVar("_T")

#: Bytes asked of the transport per receive (64 KiB: a socket buffer, and
#: four 16 KiB TLS records).
_RECEIVE_SIZE: Final = 65_536


def _transport_attributes(transport: object) -> Mapping[Any, Callable[[], Any]]:
    if isinstance(transport, TypedAttributeProvider):
        return transport.extra_attributes
    return {}


@final
class TlsStream(TypedAttributeProvider):
    """A TLS connection over an :class:`~hyper_core.rt.IO`; itself an IO.

    Build one with :meth:`wrap`, which performs the handshake.
    """

    __slots__ = (
        "_flushed",
        "_in",
        "_on_session",
        "_out",
        "_resumed_from",
        "_sending",
        "_server_side",
        "_ssl",
        "_transport",
    )

    def __init__(
        self,
        transport: IO,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        *,
        server_side: bool,
    ) -> None:
        self._transport = transport
        self._ssl = ssl_object
        self._in = incoming
        self._out = outgoing
        self._server_side = server_side
        self._on_session: Callable[[ssl.SSLSession, bool], None] | None = None
        self._resumed_from: ssl.SSLSession | None = None
        self._sending = False  # a task is sending bytes taken from _out
        self._flushed: anyio.Event | None = None  # set when it is done

    @classmethod
    async def wrap(
        cls,
        transport: IO,
        ssl_context: ssl.SSLContext,
        *,
        server_side: bool,
        hostname: str | None = None,
        threaded: bool | None = None,
        session: ssl.SSLSession | None = None,
        on_session: Callable[[ssl.SSLSession, bool], None] | None = None,
    ) -> TlsStream:
        """Run the TLS handshake over ``transport`` and return the TLS stream.

        Args:
            transport: The byte stream to run TLS over.
            ssl_context: The context (its ALPN list and trust are used).
            server_side: Act as the TLS server.
            hostname: The SNI name and the name the certificate must match
                (client side).
            threaded: Run the handshake steps in a worker thread; default:
                when ``ssl_context`` is a subclass (truststore), see the
                module docstring.
            session: A session from an earlier connection to the same
                server and name to resume (client side; it must come from
                ``ssl_context``).
            on_session: Called with this connection's session if it can be
                resumed, and whether more than one connection may resume it
                (TLS 1.2; a TLS 1.3 ticket is for one): after the handshake
                (TLS 1.2), or after the first :meth:`receive` (TLS 1.3, whose
                tickets follow the handshake).

        Raises:
            ssl.SSLError: The handshake failed (``SSLCertVerificationError``
                for a refused certificate).
            anyio.EndOfStream: The peer closed during the handshake.
            anyio.BrokenResourceError: The transport failed.

        Cancel safety: a cancelled handshake leaves ``transport`` open; the
        caller closes it.
        """
        if threaded is None:
            threaded = type(ssl_context) is not ssl.SSLContext
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        if threaded:
            ssl_object = await anyio.to_thread.run_sync(
                lambda: ssl_context.wrap_bio(
                    incoming,
                    outgoing,
                    server_side=server_side,
                    server_hostname=hostname,
                    session=session,
                )
            )
        else:
            ssl_object = ssl_context.wrap_bio(
                incoming,
                outgoing,
                server_side=server_side,
                server_hostname=hostname,
                session=session,
            )
        stream = cls(transport, ssl_object, incoming, outgoing, server_side=server_side)
        await stream._call(ssl_object.do_handshake, threaded=threaded, handshake=True)
        if on_session is not None:
            stream._resumed_from = session
            if ssl_object.version() == "TLSv1.3":
                stream._on_session = on_session  # the ticket follows the handshake
            else:
                stream._offer_session(on_session)
        return stream

    def _offer_session(self, on_session: Callable[[ssl.SSLSession, bool], None]) -> None:
        session = resumable(self._ssl, self._resumed_from)
        if session is not None:
            on_session(session, self._ssl.version() != "TLSv1.3")

    async def _flush(self) -> None:
        # Records must reach the transport in the order they left the BIO,
        # and a reader (flushing before it waits) and a writer can flush at
        # once: one task at a time takes bytes from the BIO and sends them;
        # the others wait for it, then look again.
        while self._out.pending:
            if self._sending:
                if self._flushed is None:
                    self._flushed = anyio.Event()
                await self._flushed.wait()
                continue
            self._sending = True
            try:
                await self._transport.send(self._out.read())
            finally:
                self._sending = False
                flushed, self._flushed = self._flushed, None
                if flushed is not None:
                    flushed.set()

    async def _call(
        self, func: Callable[[], _T], *, threaded: bool = False, handshake: bool = False
    ) -> _T:
        while True:
            try:
                if threaded:
                    result = await anyio.to_thread.run_sync(func)
                else:
                    result = func()
            except ssl.SSLWantReadError:
                await self._flush()
                data = await receive_or_eof(self._transport, _RECEIVE_SIZE)
                if data:
                    self._in.write(data)
                elif handshake:
                    raise anyio.EndOfStream from None
                else:
                    self._in.write_eof()
            except ssl.SSLError:
                # A fatal alert we generated (bad certificate...) is in the
                # outgoing BIO: let the peer see why before we give up.
                with contextlib.suppress(Exception):
                    await self._flush()
                raise
            else:
                if not handshake:
                    await self._flush()
                # else: the last flight waits for the first send or receive,
                # so a client's Finished and its request share one segment.
                return result

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive up to ``max_bytes`` decrypted bytes.

        Raises:
            anyio.EndOfStream: The peer closed (with or without close_notify:
                HTTP frames its messages, so a missing close_notify cannot
                truncate one unnoticed; the same choice as anyio's
                ``standard_compatible=False``).
            anyio.BrokenResourceError: The transport or the TLS layer failed.

        Cancel safety: cancelling loses no decrypted bytes.
        """
        ssl_object, incoming = self._ssl, self._in
        try:
            data: bytes | None = None
            while data is None:
                # With nothing buffered (no bytes in the BIO, none decrypted
                # in OpenSSL) a read can only want more: skip it and its
                # exception (3 us, once per response) and go to the transport.
                if incoming.pending or incoming.eof or ssl_object.pending():
                    try:
                        data = ssl_object.read(max_bytes)
                        continue
                    except ssl.SSLWantReadError:
                        pass
                if self._out.pending and not self._sending:
                    # The handshake's last flight: a connection's reader
                    # task usually gets here before the request is written;
                    # one pass of the loop lets the writer put its record
                    # in the same write (3 writes per connection, not 4).
                    await anyio.lowlevel.checkpoint()
                await self._flush()
                chunk = await receive_or_eof(self._transport, _RECEIVE_SIZE)
                if chunk:
                    incoming.write(chunk)
                else:
                    incoming.write_eof()
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            raise anyio.EndOfStream from None
        except ssl.SSLError as exc:
            with contextlib.suppress(Exception):
                await self._flush()  # our alert, so the peer sees why
            raise anyio.BrokenResourceError(f"TLS error: {exc}") from exc
        await self._flush()  # a reply OpenSSL queued (TLS 1.3 key update)
        if not data:
            raise anyio.EndOfStream
        on_session = self._on_session
        if on_session is not None:
            # Servers send their tickets right after the handshake, so they
            # precede the first data; one look only, as each costs ~0.2 ms.
            self._on_session = None
            self._offer_session(on_session)
        return data

    async def send(self, item: bytes) -> None:
        """Encrypt and send ``item``.

        Raises:
            anyio.BrokenResourceError: The transport or the TLS layer failed.

        Cancel safety: a cancelled send may have sent part of ``item``; the
        connection must then be closed.
        """
        view = memoryview(item)
        try:
            while view:
                written = await self._call(partial(self._ssl.write, view))
                view = view[written:]
        except ssl.SSLError as exc:
            raise anyio.BrokenResourceError(f"TLS error: {exc}") from exc

    async def send_many(self, items: Sequence[bytes]) -> None:
        """Send several chunks as one write (fewer, fuller TLS records)."""
        await self.send(b"".join(items))

    async def send_eof(self) -> None:
        """Send TLS close_notify; receiving stays possible.

        Cancel safety: the alert may or may not have been sent.
        """
        # unwrap() queues close_notify and then wants the peer's: we only
        # need ours out, so its SSLWantReadError is expected.
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
            self._ssl.unwrap()
        await self._flush()

    async def aclose(self) -> None:
        """Send close_notify if possible, then close the transport."""
        try:
            with anyio.move_on_after(1.0, shield=True):
                await self.send_eof()
        except Exception:  # the peer may be gone: closing is all that matters
            pass
        finally:
            await self._transport.aclose()

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The underlying ``ssl.SSLObject``."""
        return self._ssl

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        ssl_object = self._ssl
        return {
            **_transport_attributes(self._transport),
            TLSAttribute.alpn_protocol: ssl_object.selected_alpn_protocol,
            TLSAttribute.channel_binding_tls_unique: ssl_object.get_channel_binding,
            TLSAttribute.cipher: ssl_object.cipher,
            TLSAttribute.peer_certificate: lambda: ssl_object.getpeercert(False),
            TLSAttribute.peer_certificate_binary: lambda: ssl_object.getpeercert(True),
            TLSAttribute.server_side: lambda: self._server_side,
            TLSAttribute.shared_ciphers: lambda: (
                ssl_object.shared_ciphers() if self._server_side else None
            ),
            TLSAttribute.ssl_object: lambda: ssl_object,
            TLSAttribute.standard_compatible: lambda: False,
            TLSAttribute.tls_version: ssl_object.version,
        }


@final
class MaybeHttps(TypedAttributeProvider):
    """A connection that is plain or TLS, behind one IO type (hyper-tls's ``MaybeHttpsStream``).

    Attributes of the TLS session are ``None`` on a plain connection.
    ``extra(TLSAttribute.x)`` works as on anyio's TLS streams.
    """

    __slots__ = ("_io", "_tls")

    def __init__(self, io: IO) -> None:
        self._io = io
        self._tls = io if isinstance(io, TlsStream) else None

    @property
    def is_https(self) -> bool:
        """Whether this connection runs TLS."""
        return self._tls is not None

    @property
    def inner(self) -> IO:
        """The wrapped IO (a :class:`TlsStream` when TLS)."""
        return self._io

    @property
    def alpn_protocol(self) -> str | None:
        """The protocol ALPN selected (``"h2"``, ``"http/1.1"``), or ``None``."""
        return self._tls.ssl_object.selected_alpn_protocol() if self._tls is not None else None

    @property
    def tls_version(self) -> str | None:
        """The TLS version (``"TLSv1.3"``), or ``None`` on plain HTTP."""
        return self._tls.ssl_object.version() if self._tls is not None else None

    @property
    def cipher(self) -> tuple[str, str, int] | None:
        """``(cipher name, protocol, secret bits)``, or ``None`` on plain HTTP."""
        return self._tls.ssl_object.cipher() if self._tls is not None else None

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The verified peer certificate as ``ssl.SSLObject.getpeercert()`` decodes it."""
        if self._tls is None:
            return None
        return self._tls.ssl_object.getpeercert(False) or None

    @property
    def peer_certificate_binary(self) -> bytes | None:
        """The peer certificate, DER encoded, or ``None``."""
        return self._tls.ssl_object.getpeercert(True) if self._tls is not None else None

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """As :meth:`hyper_core.rt.IO.receive`."""
        return await self._io.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        """As :meth:`hyper_core.rt.IO.send`."""
        await self._io.send(item)

    async def send_many(self, items: Sequence[bytes]) -> None:
        """Send several chunks, in one write where the inner IO can."""
        send_many = getattr(self._io, "send_many", None)
        if send_many is not None:
            await send_many(items)
        else:
            await self._io.send(b"".join(items))

    async def send_eof(self) -> None:
        """As :meth:`hyper_core.rt.IO.send_eof` (close_notify on TLS)."""
        await self._io.send_eof()

    async def aclose(self) -> None:
        """Close the connection."""
        await self._io.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return _transport_attributes(self._io)
