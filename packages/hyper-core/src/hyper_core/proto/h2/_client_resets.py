"""The HTTP/2 client's memory of the streams it reset, and its budget of resets a server causes.

What belongs here: :class:`ResetRecord`, the state behind three options of
``hyper_core.client.conn.http2.Builder`` (Rust h2's, which hyper passes
through):

* ``reset_stream_duration`` and ``max_concurrent_reset_streams``: RFC 9113
  section 5.1 ("closed") says an endpoint that sent RST_STREAM must ignore
  the frames the peer had already sent on that stream, and may stop doing
  so after a while. A stream we reset (a cancelled request, a body dropped
  early, a request body that failed) is remembered for
  ``reset_stream_duration`` seconds, at most ``max_concurrent_reset_streams``
  of them at once (a stream reset while the record is full is not
  remembered, as in h2). DATA and HEADERS that arrive on a remembered stream
  are ignored: the DATA still counts against, and is returned to, the
  connection's flow-control window, and a HEADERS block is still decoded,
  so the HPACK table stays in step with the server's. Once forgotten, a
  frame on the stream gets RST_STREAM(STREAM_CLOSED), as the h2 library
  answers it (Rust h2 does the same).
* ``max_local_error_reset_streams``: each RST_STREAM the client sends
  because of what the server sent (today: STREAM_CLOSED for frames on a
  stream that is closed and not remembered, including one the server itself
  reset) counts; past the budget the connection ends with
  GOAWAY(ENHANCE_YOUR_CALM) (RUSTSEC-2024-0003: a peer must not make us
  send resets without end). Resets the application causes (cancelling)
  never count. ``None`` means no budget.

Speed: the h2 connection tests "is any stream remembered" (an empty dict)
per received frame; everything else runs only for frames on closed
streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

import h2.errors
import h2.exceptions

__all__ = [
    "DEFAULT_MAX_CONCURRENT_RESET_STREAMS",
    "DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS",
    "DEFAULT_RESET_STREAM_DURATION",
    "ResetRecord",
    "TooManyResetsError",
]

#: Locally reset streams remembered at once (Rust h2's default, 50).
DEFAULT_MAX_CONCURRENT_RESET_STREAMS: Final = 50
#: Seconds a locally reset stream is remembered (Rust h2's default, 1 s).
DEFAULT_RESET_STREAM_DURATION: Final = 1.0
#: Resets the server may make us send before GOAWAY (hyper's default).
DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS: Final = 1024


class TooManyResetsError(h2.exceptions.ProtocolError):
    """The server made the client reset more streams than ``max_local_error_reset_streams``."""

    error_code = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


@final
class ResetRecord:
    """Streams reset by us, remembered for a while; resets caused by the server, counted.

    Attributes:
        recent: Stream id to the time it was reset, oldest first. Read by the
            h2 connection on every frame (empty: nothing to check).
        local_error_resets: RST_STREAM frames sent because of the server.
    """

    __slots__ = ("_clock", "_duration", "_limit", "_max_errors", "local_error_resets", "recent")

    def __init__(
        self,
        *,
        max_reset_streams: int,
        duration: float,
        max_local_error_resets: int | None,
        clock: Callable[[], float],
    ) -> None:
        self.recent: dict[int, float] = {}
        self._limit = max_reset_streams
        self._duration = duration
        self._max_errors = max_local_error_resets
        self._clock = clock
        self.local_error_resets = 0

    def remember(self, stream_id: int) -> None:
        """Record that we reset ``stream_id`` now (nothing if the record is full)."""
        recent = self.recent
        now = self._clock()
        if recent:
            # Oldest first: the expired ones are at the front.
            horizon = now - self._duration
            for sid, at in list(recent.items()):
                if at >= horizon:
                    break
                del recent[sid]
        if len(recent) < self._limit:
            recent[stream_id] = now

    def ignores(self, stream_id: int) -> bool:
        """Whether a frame on ``stream_id`` is to be ignored (it is remembered, not expired)."""
        at = self.recent.get(stream_id)
        if at is None:
            return False
        if self._clock() - at > self._duration:
            del self.recent[stream_id]
            return False
        return True

    def count_local_error(self) -> None:
        """Count one reset the server caused.

        Raises:
            TooManyResetsError: past ``max_local_error_reset_streams``.
        """
        self.local_error_resets += 1
        limit = self._max_errors
        if limit is not None and self.local_error_resets > limit:
            raise TooManyResetsError(
                f"the server caused more than {limit} stream resets (max_local_error_reset_streams)"
            )
