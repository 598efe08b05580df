"""Errors shared by the per-version client connections.

What belongs here: :class:`TrySendError`, which ``try_send_request`` of the
HTTP/1 (and later HTTP/2) ``SendRequest`` raises. It lives apart from
``http1.py`` so that every version raises the same class and
``hyper_core.client.conn`` can re-export it without an import cycle.
"""

from __future__ import annotations

from typing import Generic, TypeVar, final

from hyper_core.error import HyperError
from hyper_core.http import Request

__all__ = ["TrySendError"]

B = TypeVar("B")


@final
class TrySendError(HyperError, Generic[B]):
    """``try_send_request`` failed; the request comes back if it was never written.

    ``str()`` is the message of :attr:`error`, the error that made the send
    fail, which is also the ``__cause__``. Branch on it as usual, e.g.
    ``isinstance(err.error, CanceledError)``.

    Attributes:
        error: The underlying error (``CanceledError`` when the connection
            was not ready, ``IncompleteMessageError`` when the server closed
            before answering, ...).
        request: The request, given back when none of it was written, so it
            can be retried on another connection; ``None`` once writing it
            started (its body may be partly consumed, and the server may have
            acted on it).
        written: Whether writing the request had started (then
            :attr:`request` is ``None`` and a retry is not known to be safe).
    """

    def __init__(self, error: HyperError, request: Request[B] | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.request = request
        self.written = request is None
