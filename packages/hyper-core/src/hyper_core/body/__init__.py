"""Bodies: streams of frames, pulled by their consumer.

* :class:`Body`: the protocol every body satisfies (``frame()``,
  ``is_end_stream()``, ``size_hint()``, ``aclose()``).
* :class:`Frame`, :class:`FrameKind`, :class:`SizeHint`: what bodies are made of.
* :class:`Full` (the fast path: bytes known up front), :class:`Empty`,
  :class:`StreamBody` (from an async iterable), :class:`Limited` (a byte
  cap), :func:`channel` (a :class:`Sender` task feeding a
  :class:`ChannelBody`).
* :class:`Incoming`: what connections hand over for received messages.
* :func:`collect`: read a whole body into a :class:`Collected` (with an
  optional ``limit``).
* Combinators (http-body-util's): :class:`MapFrame`, :class:`MapErr`,
  :class:`Either`; :class:`BodyStream` and :class:`BodyDataStream` read a
  body with ``async for``.
"""

from __future__ import annotations

from hyper_core.body._body import Body
from hyper_core.body._channel import ChannelBody, Sender, channel
from hyper_core.body._collect import Collected, collect
from hyper_core.body._either import Either
from hyper_core.body._frame import Frame, FrameKind, SizeHint
from hyper_core.body._full import Empty, Full
from hyper_core.body._incoming import Incoming, IncomingSender
from hyper_core.body._iter import BodyDataStream, BodyStream
from hyper_core.body._limited import Limited
from hyper_core.body._map import MapErr, MapFrame
from hyper_core.body._stream import StreamBody

__all__ = [
    "Body",
    "BodyDataStream",
    "BodyStream",
    "ChannelBody",
    "Collected",
    "Either",
    "Empty",
    "Frame",
    "FrameKind",
    "Full",
    "Incoming",
    "IncomingSender",
    "Limited",
    "MapErr",
    "MapFrame",
    "Sender",
    "SizeHint",
    "StreamBody",
    "channel",
    "collect",
]
