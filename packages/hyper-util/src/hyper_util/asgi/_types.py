r"""The ASGI 3 types the adapter speaks, and the errors it raises to applications.

What belongs here: the callable and message aliases (as loose as the spec:
scopes and messages are plain ``dict``\\ s), the spec versions this server
implements, :class:`ClientDisconnected`, the ``OSError`` that ``send()``
raises once the client is gone (ASGI 2.4), and the adapter's other errors
(here rather than beside their use: mypyc compiles ``_http.py``, and a
compiled class cannot subclass ``RuntimeError`` or hyper-core's errors).

Strategy: no dependency on asgiref; the aliases say what the code relies on
and nothing more, so any ASGI 3 framework's own typing fits them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, TypeAlias

from hyper_core.error import BodyWriteAbortedError

__all__ = [
    "ASGI_VERSION",
    "SPEC_VERSION",
    "ASGIApp",
    "ClientDisconnected",
    "InvalidMessage",
    "Message",
    "Receive",
    "Scope",
    "Send",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The ASGI interface version.
ASGI_VERSION: Final = "3.0"
#: The HTTP and WebSocket spec version implemented (2.4: ``send()`` raises
#: :class:`ClientDisconnected` once the client is gone; 2.5 adds the
#: disconnect ``reason``, which this server also sends).
SPEC_VERSION: Final = "2.4"


class ClientDisconnected(OSError):
    """``send()`` was called after the client went away (ASGI spec 2.4).

    Applications may catch it to clean up; the server never logs it as an error.
    """


class InvalidMessage(RuntimeError):
    """The application sent a message the spec or the current state does not allow."""


class _BodyFailed(BodyWriteAbortedError):
    """The application broke its response after the head was sent.

    A ``BodyWriteAbortedError``: the connection aborts the response and, the
    application's error being logged here already, logs it at DEBUG only.
    """
