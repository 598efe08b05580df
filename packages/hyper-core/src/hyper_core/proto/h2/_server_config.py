"""The checked options of an HTTP/2 server connection.

What belongs here: :class:`ServerConfig`, the record the public
``http2.Builder`` fills and the connection, its event handlers and its
stream serving read. Defaults, units and checks live on the Builder
(``hyper_core.server.conn.http2``).
"""

from __future__ import annotations

from typing import Any

from hyper_core.rt import Executor, Timer

__all__ = ["ServerConfig"]


class ServerConfig:
    """The options of :class:`hyper_core.server.conn.http2.Builder`, checked."""

    __slots__ = (
        "adaptive_window",
        "auto_date_header",
        "enable_connect_protocol",
        "executor",
        "header_table_size",
        "initial_connection_window_size",
        "initial_stream_window_size",
        "keep_alive_interval",
        "keep_alive_timeout",
        "max_concurrent_streams",
        "max_frame_size",
        "max_header_list_size",
        "max_local_error_reset_streams",
        "max_pending_accept_reset_streams",
        "max_send_buf_size",
        "send_stall_timeout",
        "timer",
    )

    timer: Timer
    executor: Executor | None
    initial_stream_window_size: int
    initial_connection_window_size: int
    adaptive_window: bool
    max_frame_size: int
    max_concurrent_streams: int | None
    max_header_list_size: int
    max_send_buf_size: int
    keep_alive_interval: float | None
    keep_alive_timeout: float
    max_pending_accept_reset_streams: int | None
    max_local_error_reset_streams: int | None
    enable_connect_protocol: bool
    header_table_size: int | None
    auto_date_header: bool
    send_stall_timeout: float | None

    def __init__(self, **options: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, options[name])
