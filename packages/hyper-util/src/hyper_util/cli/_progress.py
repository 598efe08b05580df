r"""The download progress bar of ``python -m hyper_util get -o FILE``.

What belongs here: :class:`Progress` (counts bytes and redraws one line on
a terminal) and :func:`format_bytes`. It knows nothing about HTTP.

Strategy: the bar is drawn on one line that each redraw overwrites with
``\\r``; redraws are throttled to one per :data:`REDRAW_INTERVAL` so a fast
download does not spend its time writing to the terminal, and the final
state is always drawn by :meth:`Progress.finish`. The clock is passed in so
tests can drive it. Whether to show a bar at all (only when stderr is a
terminal) is the caller's decision.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Final, TextIO, final

__all__ = ["REDRAW_INTERVAL", "Progress", "format_bytes"]

#: Seconds between two redraws (10 per second reads as smooth and costs little).
REDRAW_INTERVAL: Final = 0.1

_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``: binary units, one decimal above bytes."""
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@final
class Progress:
    """A one-line progress display: bytes so far, total when known, rate.

    Args:
        stream: Where to draw (stderr, a terminal).
        total: The expected size in bytes (from ``Content-Length``), or
            ``None`` when unknown: then no bar and no percentage.
        clock: Seconds, monotonic; default :func:`time.monotonic`.
        width: Columns available; default the terminal's width.
    """

    __slots__ = (
        "_clock",
        "_done",
        "_last_draw",
        "_start",
        "_stream",
        "_width",
        "received",
        "total",
    )

    def __init__(
        self,
        stream: TextIO,
        total: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self._stream = stream
        self.total = total
        self.received = 0
        self._clock = clock
        self._start = clock()
        self._last_draw = -REDRAW_INTERVAL
        self._width = width if width is not None else shutil.get_terminal_size().columns
        self._done = False

    def update(self, n: int) -> None:
        """Count ``n`` more bytes; redraw if the last redraw is old enough."""
        self.received += n
        now = self._clock()
        if now - self._last_draw >= REDRAW_INTERVAL:
            self._draw(now)

    def finish(self) -> None:
        """Draw the final state and end the line (once; later calls do nothing)."""
        if self._done:
            return
        self._done = True
        self._draw(self._clock())
        self._stream.write("\n")
        self._stream.flush()

    def render(self, now: float) -> str:
        r"""The line for the current state at time ``now`` (no ``\\r``)."""
        elapsed = now - self._start
        rate = self.received / elapsed if elapsed > 0 else 0.0
        done = format_bytes(self.received)
        speed = f"{format_bytes(rate)}/s"
        if self.total is None:
            return f"{done}  {speed}"
        total = max(self.total, 1)
        fraction = min(self.received / total, 1.0) if self.total else 1.0
        text = f"{done} / {format_bytes(self.total)}  {fraction * 100:3.0f}%  {speed}"
        # The bar takes what is left of the line, within reason.
        bar_width = min(40, self._width - len(text) - 4)
        if bar_width < 5:
            return text
        filled = int(bar_width * fraction)
        return f"[{'#' * filled}{'.' * (bar_width - filled)}] {text}"

    def _draw(self, now: float) -> None:
        self._last_draw = now
        line = self.render(now)
        # Pad so a shorter line fully covers the previous one.
        self._stream.write("\r" + line.ljust(max(self._width - 1, len(line))))
        self._stream.flush()
