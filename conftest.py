"""Shared pytest configuration: every async test runs on asyncio, trio and uvloop."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

#: The anyio backend parameter for asyncio on uvloop's event loop.
UVLOOP: tuple[str, dict[str, Any]] = ("asyncio", {"use_uvloop": True})


BACKENDS = [
    pytest.param(("asyncio", {"debug": True}), id="asyncio"),
    pytest.param(("trio", {}), id="trio"),
    # uvloop replaces asyncio's loop, transports and DNS: hyper-util's
    # fast path must work on it too (hyper-util's ``uvloop`` extra).
    *([] if sys.platform == "win32" else [pytest.param(UVLOOP, id="uvloop")]),
]


def _selected_backends() -> list[Any]:
    """All backends, or those named in ``HYPER_TEST_BACKENDS`` (the quick passes in nox)."""
    wanted = os.environ.get("HYPER_TEST_BACKENDS")
    if not wanted:
        return BACKENDS
    names = {name.strip() for name in wanted.split(",")}
    unknown = names - {param.id for param in BACKENDS}
    if unknown:
        raise pytest.UsageError(f"HYPER_TEST_BACKENDS names unknown backends: {sorted(unknown)}")
    return [param for param in BACKENDS if param.id in names]


@pytest.fixture(params=_selected_backends())
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Every backend, explicitly: a missing trio or uvloop fails instead of skipping."""
    return request.param  # type: ignore[no-any-return]
