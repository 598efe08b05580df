"""When observed messages' write reports fall due on an HTTP/2 connection.

What belongs here: :class:`WriteMarks`, shared by the server and client
connections, which turns ``ext.on_write``'s reports into positions in the
connection's output.

Strategy: a connection's frames go out through one writer task, in the
order h2 produced them, many streams' frames in one ``send``. So a report
is due once the output has been sent past the position where its frames
ended. ``WriteMarks.taken`` counts the bytes the writer took so far; a frame
queued now ends at ``taken`` plus what is queued and not yet taken. Once a
``send`` returns, everything taken is written, and the marks up to
``taken`` are settled in order. DATA frames are only produced within the
peer's flow-control windows, so a settled DATA report means "written
within flow control". Nothing is marked for a stream without the hook; the
writer's cost is one addition per ``send`` and one empty-deque test.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    from h2.connection import H2Connection

    from hyper_core._write_report import WriteReport

__all__ = ["DATA", "END", "HEAD", "WriteMarks"]

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
        self, h2c: H2Connection, outside: int, report: WriteReport, kind: int, size: int
    ) -> None:
        """Report ``kind`` (``HEAD``, ``DATA``, ``END``) once what is queued now is sent.

        ``outside``: bytes queued for the writer outside h2's own buffer.
        """
        position = self.taken + outside + len(h2c._data_to_send)
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
