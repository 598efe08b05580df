"""The checked options of an HTTP/1 client connection.

What belongs here: :class:`ClientConfig`, the record the public
``http1.Builder`` fills and the client dispatcher reads. Defaults, units
and checks live on the Builder (``hyper_core.client.conn.http1``).
"""

from __future__ import annotations

from typing import final

from ._parse import DEFAULT_LIMITS, HeadLimits

__all__ = ["ClientConfig"]


@final
class ClientConfig:
    """The options of :class:`hyper_core.client.conn.http1.Builder`, checked."""

    __slots__ = (
        "allow_obs_fold",
        "allow_space_before_colon",
        "http09_responses",
        "ignore_invalid_headers",
        "limits",
        "max_buf_size",
        "max_headers",
        "max_informational",
        "preserve_header_case",
        "read_buf_exact_size",
        "title_case_headers",
        "writev",
    )

    def __init__(
        self,
        *,
        title_case_headers: bool,
        preserve_header_case: bool,
        max_buf_size: int,
        max_headers: int,
        allow_obs_fold: bool,
        read_buf_exact_size: int | None,
        max_informational: int | None = None,
        limits: HeadLimits = DEFAULT_LIMITS,
        http09_responses: bool = False,
        allow_space_before_colon: bool = False,
        ignore_invalid_headers: bool = False,
        writev: bool | None = None,
    ) -> None:
        self.http09_responses = http09_responses
        self.allow_space_before_colon = allow_space_before_colon
        self.ignore_invalid_headers = ignore_invalid_headers
        self.writev = writev
        self.limits = limits
        self.title_case_headers = title_case_headers
        self.preserve_header_case = preserve_header_case
        self.max_buf_size = max_buf_size
        self.max_headers = max_headers
        self.max_informational = max_informational
        self.allow_obs_fold = allow_obs_fold
        self.read_buf_exact_size = read_buf_exact_size
