"""Internal HTTP/1 machinery: the codec seam and the connection dispatchers.

Strategy: the dispatchers (``_server.py``, and the client's) are the only
code that awaits I/O; they talk to a sans-I/O :class:`~._codec.Codec` made by
:func:`~._codec.new_codec`. The default codec (``_native_codec.py``) is a
pure-Python codec with h11's grammar (tightened) and hyper's framing rules;
``_h11_codec.py`` puts ``h11.Connection`` itself behind the same interface.
Any codec behind the seam (an accelerated one later) must pass the same
tests.
"""

from __future__ import annotations

from ._codec import Codec, CodecState, Role, new_codec
from ._events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    RequestHead,
    ResponseHead,
    Sentinel,
)

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "Codec",
    "CodecState",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "RequestHead",
    "ResponseHead",
    "Role",
    "Sentinel",
    "new_codec",
]
