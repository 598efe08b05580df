"""The server's record of one stream.

What belongs here: :class:`_Stream`, what the HTTP/2 server connection
knows about one stream it serves, and :class:`_StreamGone`, how the stream
serving (``_server_stream.py``) and the writer (``_writer.py``) tell a
stream task to stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import anyio

    from hyper_core._exchange import Exchange
    from hyper_core._write_report import WriteReport
    from hyper_core.body import IncomingSender
    from hyper_core.upgrade import _Pending

__all__ = ["_Stream", "_StreamGone"]


class _StreamGone(Exception):
    """Internal: the stream was reset or the connection ended; stop serving it."""


class _Stream:
    """What the server knows about one stream it serves."""

    __slots__ = (
        "closed",
        "detached",
        "exchange",
        "id",
        "pending",
        "report",
        "request_open",
        "reset_counted",
        "response_done",
        "scope",
        "sender",
        "task_running",
        "tunnel_open",
        "window_event",
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
