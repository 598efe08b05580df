"""Shared pytest configuration: every async test runs on asyncio, trio and uvloop."""

from __future__ import annotations

import sys
from typing import Any

import pytest

#: The anyio backend parameter for asyncio on uvloop's event loop.
UVLOOP: tuple[str, dict[str, Any]] = ("asyncio", {"use_uvloop": True})


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
        # uvloop replaces asyncio's loop, transports and DNS: hyper-util's
        # fast path must work on it too (hyper-util's ``uvloop`` extra).
        *([] if sys.platform == "win32" else [pytest.param(UVLOOP, id="uvloop")]),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Every backend, explicitly: a missing trio or uvloop fails instead of skipping."""
    return request.param  # type: ignore[no-any-return]
