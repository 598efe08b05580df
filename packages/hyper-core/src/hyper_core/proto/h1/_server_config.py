"""The checked options of an HTTP/1 server connection.

What belongs here: :class:`ServerConfig`, the record the public
``http1.Builder`` fills and every dispatcher reads. Defaults, units and
checks live on the Builder (``hyper_core.server.conn.http1``).
"""

from __future__ import annotations

from hyper_core.rt import Timer

from ._parse import DEFAULT_LIMITS, HeadLimits

__all__ = ["ServerConfig"]


class ServerConfig:
    """The options of :class:`hyper_core.server.conn.http1.Builder`, checked."""

    __slots__ = (
        "allow_multiple_spaces_in_request_line",
        "auto_date_header",
        "half_close",
        "header_read_timeout",
        "ignore_invalid_headers",
        "keep_alive",
        "limits",
        "max_buf_size",
        "max_drain_bytes",
        "max_headers",
        "pipeline_flush",
        "preserve_header_case",
        "send_stall_timeout",
        "timer",
        "title_case_headers",
        "writev",
    )

    def __init__(
        self,
        *,
        keep_alive: bool,
        half_close: bool,
        max_buf_size: int,
        max_headers: int,
        header_read_timeout: float | None,
        title_case_headers: bool,
        preserve_header_case: bool,
        auto_date_header: bool,
        ignore_invalid_headers: bool = False,
        allow_multiple_spaces_in_request_line: bool = False,
        pipeline_flush: bool = False,
        writev: bool | None,
        timer: Timer,
        max_drain_bytes: int,
        send_stall_timeout: float | None = None,
        limits: HeadLimits = DEFAULT_LIMITS,
    ) -> None:
        self.keep_alive = keep_alive
        self.half_close = half_close
        self.max_buf_size = max_buf_size
        self.max_headers = max_headers
        self.header_read_timeout = header_read_timeout
        self.title_case_headers = title_case_headers
        self.preserve_header_case = preserve_header_case
        self.auto_date_header = auto_date_header
        self.ignore_invalid_headers = ignore_invalid_headers
        self.allow_multiple_spaces_in_request_line = allow_multiple_spaces_in_request_line
        self.pipeline_flush = pipeline_flush
        self.writev = writev
        self.timer = timer
        self.max_drain_bytes = max_drain_bytes
        self.send_stall_timeout = send_stall_timeout
        self.limits = limits
