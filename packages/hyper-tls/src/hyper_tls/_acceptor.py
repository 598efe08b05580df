"""``TlsAcceptor``: the server side of TLS, one handshake per connection task.

What belongs here: :class:`TlsAcceptor`, which turns an accepted byte
stream into a :class:`~hyper_tls.TlsStream` whose ALPN result the auto
server follows, and its certificate reload.

Strategy: the acceptor is a callable ``async (io) -> io`` that
:func:`hyper_util.server.serve` calls as its ``tls`` hook *inside the task
of that connection*, never in the accept loop: a client that connects and
then says nothing holds only its own task, for at most
``handshake_timeout`` seconds, while the loop keeps accepting. The context
is read once per handshake, so :meth:`TlsAcceptor.reload` (an attribute
swap) applies to new connections and never disturbs ones in progress.
"""

from __future__ import annotations

import ssl
from typing import final

from hyper_core.rt import IO, Timer, default_timer
from hyper_tls._connector import DEFAULT_HANDSHAKE_TIMEOUT, handshake
from hyper_tls._context import StrPath, server_ssl_context
from hyper_tls._stream import TlsStream

__all__ = ["TlsAcceptor"]


@final
class TlsAcceptor:
    """Runs the server TLS handshake on accepted connections.

    Use it as ``serve(service, tls=TlsAcceptor(ctx))``, or call
    :meth:`accept` on streams you accepted yourself and pass
    ``stream.ssl_object.selected_alpn_protocol()`` to
    ``auto.Builder.serve_connection(..., alpn=...)``.

    Args:
        ssl_context: A server context (see :func:`server_ssl_context`);
            its ALPN list decides whether clients may pick ``h2``.
        handshake_timeout: Seconds a client gets to finish the handshake
            before the connection is closed (``None``: no limit; a silent
            client then holds its connection slot until it leaves).
        timer: The clock for ``handshake_timeout`` (default: anyio's).

    Raises:
        ValueError: ``handshake_timeout`` is not positive.
    """

    __slots__ = ("_context", "_handshake_timeout", "_timer")

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        timer: Timer | None = None,
    ) -> None:
        if handshake_timeout is not None and handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be positive seconds (or None)")
        self._context = ssl_context
        self._handshake_timeout = handshake_timeout
        self._timer = timer if timer is not None else default_timer()

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The context new connections get."""
        return self._context

    def reload(
        self,
        certfile: StrPath,
        keyfile: StrPath | None = None,
        *,
        password: str | bytes | None = None,
        http2: bool = True,
    ) -> None:
        """Load a new certificate and key for the connections accepted from now on.

        The new context is built with :func:`server_ssl_context`; open
        connections keep the session they negotiated.

        Raises:
            OSError, ssl.SSLError: The files cannot be loaded; the current
                context stays in use.
        """
        self._context = server_ssl_context(certfile, keyfile, password=password, http2=http2)

    def set_context(self, ssl_context: ssl.SSLContext) -> None:
        """Use ``ssl_context`` for the connections accepted from now on."""
        self._context = ssl_context

    async def accept(self, io: IO) -> TlsStream:
        """Run the handshake on ``io``; return the TLS stream.

        Raises:
            HandshakeTimeoutError: The client took longer than ``handshake_timeout``.
            HandshakeError: The handshake failed (a subclass when the client
                certificate was refused). ``io`` is closed in every failure.

        Cancel safety: a cancelled accept closes ``io``.
        """
        return await handshake(
            io,
            self._context,
            server_side=True,
            hostname=None,
            timeout=self._handshake_timeout,
            timer=self._timer,
        )

    async def __call__(self, io: IO) -> IO:
        """:meth:`accept`, typed as ``serve()``'s ``tls`` hook."""
        return await self.accept(io)

    def __repr__(self) -> str:
        return f"TlsAcceptor(handshake_timeout={self._handshake_timeout})"
