"""The server side of one request/response exchange, as a service sees it.

What belongs here: :class:`Exchange`, the small object a server connection
(HTTP/1 and HTTP/2) puts into each request's extensions so that a service can
reach its exchange while it runs: write informational (1xx) responses before
the final one, and learn that the client went away. The public functions are
:func:`hyper_core.ext.send_informational` and
:func:`hyper_core.ext.on_client_gone`.

Strategy: one final class for both protocols, holding two things the
connection gives it (a coroutine function writing a 1xx head, and nothing
else) and the state the service changes (callbacks). The connection calls
:meth:`Exchange.client_gone` when it sees the client leave before the
response is complete, and :meth:`Exchange.finish` once the response is
complete; after either, callbacks are dropped. It costs one object per
request and nothing when no service uses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, final

from hyper_core.error import UserError

__all__ = ["Exchange", "GoneCallback", "InformationalWriter"]

GoneCallback = Callable[[], None]
#: ``async (status, fields)``: writes one 1xx head; raises UserError when too late.
InformationalWriter = Callable[[int, list[tuple[bytes, bytes]]], Awaitable[None]]

_OPEN: Final = 0
_FINISHED: Final = 1
_GONE: Final = 2


@final
class Exchange:
    """The connection's handle on one request, found in its extensions."""

    __slots__ = ("_callbacks", "_state", "_write_informational")

    def __init__(self, write_informational: InformationalWriter | None) -> None:
        self._write_informational = write_informational
        self._callbacks: list[GoneCallback] | None = None
        self._state = _OPEN

    @property
    def is_client_gone(self) -> bool:
        """True once the client went away before the response was complete."""
        return self._state == _GONE

    @property
    def watched(self) -> bool:
        """True while a callback waits for :meth:`client_gone` (the connection watches then)."""
        return self._callbacks is not None and self._state == _OPEN

    def add_callback(self, callback: GoneCallback) -> None:
        """Call ``callback`` once when the client goes away (at once if it already did)."""
        if self._state == _GONE:
            callback()
        elif self._state == _OPEN:
            if self._callbacks is None:
                self._callbacks = []
            self._callbacks.append(callback)

    async def send_informational(self, status: int, fields: list[tuple[bytes, bytes]]) -> None:
        """Write a 1xx head through the connection.

        Raises:
            UserError: the connection cannot send it (see the public function).
        """
        if self._write_informational is None:
            raise UserError("this connection cannot send informational responses")
        if self._state != _OPEN:
            raise UserError("the response is complete or the client went away")
        await self._write_informational(status, fields)

    # -- connection side --------------------------------------------------------

    def client_gone(self) -> None:
        """The client left before the response was complete: run the callbacks once."""
        if self._state != _OPEN:
            return
        self._state = _GONE
        callbacks = self._callbacks
        self._callbacks = None
        if callbacks:
            for callback in callbacks:
                callback()

    def finish(self) -> None:
        """The response is complete: the callbacks will never run."""
        if self._state == _OPEN:
            self._state = _FINISHED
            self._callbacks = None
