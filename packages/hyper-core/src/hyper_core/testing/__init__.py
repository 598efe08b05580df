"""Test helpers for hyper-core and for code built on it.

* :class:`FakeTimer`: a :class:`~hyper_core.rt.Timer` whose clock moves only
  when the test says so (or, in autojump mode, whenever every task is
  blocked), so timeout tests run instantly and deterministically.
* :func:`memory_pipe`: two connected in-memory byte streams with
  backpressure, half-close and close, in place of a TCP connection.
"""

from __future__ import annotations

from hyper_core.testing._fake_timer import FakeTimer
from hyper_core.testing._memory_pipe import MemoryByteStream, memory_pipe

__all__ = ["FakeTimer", "MemoryByteStream", "memory_pipe"]
