"""Internal HTTP/1 machinery: the codec seam and the connection dispatchers.

Strategy: the dispatchers (``_server.py``, and the client's) are the only
code that awaits I/O; they talk to a sans-I/O :class:`~._codec.Codec` made by
:func:`~._codec.new_codec`. The default codec (``_h11_codec.py``) uses h11's
grammar; a faster codec can replace it behind the same interface and must
pass the same tests.
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
