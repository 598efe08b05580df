"""Every guide example that ends in ``anyio.run(...)`` is a complete program.

docs/guides/index.md promises that such an example runs as it is. Many are
run for real by the tests of their own page (the HTTP/1 client and HTTP/2
pages, the runtime pages, the quickstart); this test holds every page to
the promise: each such block runs from its first line to the ``anyio.run``
call with nothing missing (every import and name it uses is there), and
that call gets a callable. ``anyio.run`` itself is replaced by a recorder,
so a server example that would listen on port 8000 forever does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [*sorted((DOCS / "guides").glob("*.md")), DOCS / "quickstart.md"]


def programs() -> list[Any]:
    found = []
    for page in PAGES:
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
        for index, block in enumerate(blocks):
            code = [line for line in block.splitlines() if line and not line.startswith("#")]
            if code and code[-1].startswith("anyio.run("):
                found.append(pytest.param(block, id=f"{page.stem}-{index + 1}"))
    return found


def test_every_page_with_programs_is_found() -> None:
    names = {param.id.rpartition("-")[0] for param in programs()}
    assert {"http1-client", "http2-client", "server-auto", "quickstart", "bodies"} <= names


@pytest.mark.parametrize("source", programs())
def test_program_is_complete(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Callable[..., Any]] = []

    def record(func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        calls.append(func)

    monkeypatch.setattr(anyio, "run", record)
    exec(compile(source, "<guide example>", "exec"), {"__name__": "__main__"})
    assert calls, "the program never reached anyio.run"
    assert all(callable(func) for func in calls)
