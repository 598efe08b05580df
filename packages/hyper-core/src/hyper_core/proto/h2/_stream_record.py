"""The server's record of one stream, and when observed responses' writes fall due.

What belongs here: :class:`_Stream` (what the HTTP/2 server connection knows
about one stream it serves) and :class:`WriteMarks`, which turns
``ext.on_write``'s reports into positions in the connection's output.

Strategy for the write reports: the connection's frames go out through one
writer task, in the order h2 produced them, many streams' frames in one
``send``. So a report is due once the connection's output has been sent
past the position where its frames ended. ``WriteMarks.taken`` counts the
bytes the writer took from h2 so far; a frame queued now ends at ``taken``
plus what is queued and not yet taken. Once a ``send`` returns, everything
taken is written, and the marks up to ``taken`` are settled in order. A
stream's DATA frames are only produced within the peer's flow-control
windows, so a settled DATA report means "written within flow control".
Nothing is marked for a stream without the hook; the writer's cost is one
addition per ``send`` and one empty-deque test.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Final, final

import anyio

from hyper_core._exchange import Exchange
from hyper_core._write_report import WriteReport

if TYPE_CHECKING:
    from hyper_core.body import IncomingSender
    from hyper_core.upgrade import _Pending

    from ._fast_server import H2ServerConnection

__all__ = ["HEAD", "DATA", "END", "WriteMarks", "_Stream"]

HEAD: Final = 0
DATA: Final = 1
END: Final = 2


@final
class WriteMarks:
    """Reports waiting for the connection's output to be sent past their position."""

    __slots__ = ("due", "taken")

    def __init__(self) -> None:
        self.taken = 0  # bytes the writer took from h2 (and the raw frames) so far
        self.due: deque[tuple[int, WriteReport, int, int]] = deque()

    def add(
        self, h2c: H2ServerConnection, raw_out: bytearray, report: WriteReport, kind: int, size: int
    ) -> None:
        """Report ``kind`` (``HEAD``, ``DATA``, ``END``) once what is queued now is sent."""
        position = self.taken + len(raw_out) + len(h2c._data_to_send)
        self.due.append((position, report, kind, size))

    def settle(self) -> None:
        """Everything taken was sent: run the reports that fell due, in order."""
        due = self.due
        taken = self.taken
        while due and due[0][0] <= taken:
            _, report, kind, size = due.popleft()
            if kind == DATA:
                report.data(size)
            elif kind == HEAD:
                report.head(size)
            else:
                report.finish()

    def fail_all(self, error: BaseException) -> None:
        """The connection ended: what was not sent never will be."""
        due = self.due
        while due:
            due.popleft()[1].fail(error)


class _Stream:
    """What the server knows about one stream it serves."""

    __slots__ = (
        "closed",
        "detached",
        "exchange",
        "id",
        "pending",
        "request_open",
        "reset_counted",
        "response_done",
        "scope",
        "sender",
        "task_running",
        "tunnel_open",
        "window_event",
        "report",
    )

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.sender: IncomingSender | None = None
        self.request_open = False
        self.detached = False  # the service is done: its unread body no longer holds window
        self.closed = False  # reset (either side) or the connection is gone
        self.response_done = False
        self.scope: anyio.CancelScope | None = None
        self.window_event: anyio.Event | None = None
        self.task_running = False
        self.tunnel_open = False
        self.reset_counted = False
        self.pending: _Pending | None = None
        self.exchange: Exchange | None = None
        self.report: WriteReport | None = None  # the response carries ext.on_write's hook
