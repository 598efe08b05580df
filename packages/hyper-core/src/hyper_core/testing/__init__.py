"""Test helpers for hyper-core and for code built on it.

* :class:`FakeTimer`: a :class:`~hyper_core.rt.Timer` whose clock moves only
  when the test says so (or, in autojump mode, whenever every task is
  blocked), so timeout tests run instantly and deterministically.
* :func:`memory_pipe`: two connected in-memory byte streams with
  backpressure, half-close and close, in place of a TCP connection.
* :func:`quic_pair`: two connected in-memory QUIC connections (the
  :class:`~hyper_core.rt.QuicConnection` test double), for HTTP/3 without UDP.
"""

from __future__ import annotations

from hyper_core.testing._fake_timer import FakeTimer
from hyper_core.testing._memory_pipe import MemoryByteStream, memory_pipe
from hyper_core.testing._quic_pair import MemoryQuicConnection, quic_pair

__all__ = ["FakeTimer", "MemoryByteStream", "MemoryQuicConnection", "memory_pipe", "quic_pair"]
