"""The error hierarchy of hyper-core.

Rules:

1. One root, :class:`HyperError`; one subclass per kind a caller branches on.
   They mirror hyper's ``Error::is_*`` predicates: where hyper asks
   ``err.is_parse()``, Python asks ``isinstance(err, ParseError)``.
2. ``str(err)`` says only this error's own part. What caused it is chained
   with ``raise ... from exc`` and shows up as ``__cause__``.
3. No h11, h2 or runtime exception crosses the public API: the connection
   code translates them at the boundary.
4. Invalid values given to a constructor (a header with a newline, a bad
   method token) raise a subclass that is also a :class:`ValueError`.
"""

from __future__ import annotations

import builtins

__all__ = [
    "BodyError",
    "BodyWriteAbortedError",
    "CanceledError",
    "ClosedError",
    "HeaderTimeoutError",
    "HyperError",
    "IncompleteMessageError",
    "InvalidHeader",
    "InvalidMethod",
    "InvalidStatusCode",
    "InvalidUri",
    "LengthLimitError",
    "ParseError",
    "ProtocolError",
    "ShutdownError",
    "TimeoutError",
    "UserError",
]


class HyperError(Exception):
    """Root of every error raised by hyper-core."""


class ParseError(HyperError):
    """The peer sent a message that could not be parsed.

    Attributes:
        status_hint: The HTTP status a server should answer with (400, 414,
            431, 505, ...), or ``None`` when no response fits.
    """

    def __init__(self, message: str, *, status_hint: int | None = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class UserError(HyperError):
    """The API was used in a way it does not allow (a bug in the caller)."""


class CanceledError(HyperError):
    """A request or body was canceled before it completed.

    When raised by a client ``send_request``, the request was never written
    and is safe to retry.
    """


class ClosedError(HyperError):
    """The connection or channel is closed."""


class IncompleteMessageError(HyperError):
    """The connection closed before a message was complete."""


class BodyError(HyperError):
    """Reading or producing a body failed."""


class BodyWriteAbortedError(BodyError):
    """The producer of a body aborted it before its end."""


class LengthLimitError(BodyError):
    """A body was longer than the limit it was read with.

    Attributes:
        limit: The limit, in bytes.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"body is longer than the limit of {limit} bytes")
        self.limit = limit


class TimeoutError(HyperError, builtins.TimeoutError):
    """An operation did not finish before its deadline."""


class HeaderTimeoutError(TimeoutError):
    """A peer did not send a complete header block in time."""


class ShutdownError(HyperError):
    """Shutting down the write side of a connection failed."""


class ProtocolError(HyperError):
    """The peer broke the protocol.

    Attributes:
        error_code: The HTTP/2 error code sent or received, when there is one.
    """

    def __init__(self, message: str, *, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class InvalidHeader(HyperError, ValueError):
    """A header name or value is not valid HTTP."""


class InvalidUri(HyperError, ValueError):
    """A URI is not valid."""


class InvalidMethod(HyperError, ValueError):
    """A method is not a valid token."""


class InvalidStatusCode(HyperError, ValueError):
    """A status code is outside 100-999."""
