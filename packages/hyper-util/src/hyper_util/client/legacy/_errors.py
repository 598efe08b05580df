"""The errors of the pooled client and its connectors.

What belongs here: :class:`ClientError`, the root of every error that
``hyper_util.client`` raises itself, and one subclass per kind a caller
branches on: connecting (with the proxy kinds), each timeout phase, and a
request the client cannot send.

Rules (those of ``hyper_core.error``):

1. Errors of the protocol itself (``IncompleteMessageError``,
   ``ParseError``, ``ProtocolError``...) come from ``hyper_core`` and pass
   through the client unchanged; the classes here are what the client adds.
2. Every timeout is a :class:`hyper_core.error.TimeoutError` (so also a
   builtin ``TimeoutError``) *and* a :class:`ClientError`; the subclass names
   the phase that ran out of time.
3. ``str()`` says only this error's part; the cause is ``__cause__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyper_core.error import HyperError, UserError
from hyper_core.error import TimeoutError as HyperTimeoutError

if TYPE_CHECKING:
    from hyper_util.client.legacy.connect._http import Connected

__all__ = [
    "ClientError",
    "ClientTimeoutError",
    "ConnectError",
    "ConnectTimeoutError",
    "InvalidRequestError",
    "PoolTimeoutError",
    "ProxyAuthRequiredError",
    "ProxyError",
    "ReadTimeoutError",
    "TotalTimeoutError",
    "WriteTimeoutError",
]


class ClientError(HyperError):
    """Root of the errors raised by the pooled client and its connectors."""


class ConnectError(ClientError):
    """Opening a connection failed (DNS, TCP, a proxy, or a TLS layer above).

    Attributes:
        connected: What was known about the connection when it failed, if
            anything (hyper's ``connect_info``); usually ``None``.
    """

    def __init__(self, message: str, *, connected: Connected | None = None) -> None:
        super().__init__(message)
        self.connected = connected


class ProxyError(ConnectError):
    """The proxy refused or broke the tunnel.

    Attributes:
        status: The proxy's response status, when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProxyAuthRequiredError(ProxyError):
    """The proxy answered the CONNECT with 407 Proxy Authentication Required."""


class ClientTimeoutError(ClientError, HyperTimeoutError):
    """A phase of a request ran out of time; the subclass says which."""


class ConnectTimeoutError(ClientTimeoutError, ConnectError):
    """Opening the connection took longer than ``connect_timeout``."""


class PoolTimeoutError(ClientTimeoutError):
    """No connection became available within ``pool_timeout`` (the pool was full)."""


class ReadTimeoutError(ClientTimeoutError):
    """The response head, or the next piece of its body, took longer than ``read_timeout``."""


class WriteTimeoutError(ClientTimeoutError):
    """Writing to the connection was blocked for longer than ``write_timeout``."""


class TotalTimeoutError(ClientTimeoutError):
    """The whole exchange, body included, took longer than the total ``timeout``."""


class InvalidRequestError(ClientError, UserError):
    """The client cannot send this request (relative URI, unsupported version...)."""
