"""The examples of docs/guides/http2-server.md run, on asyncio and on trio.

Each ``python`` code block of the page is a complete program ending in
``anyio.run(main)``; it is run here as ``__main__`` with that call pointed
at the backend under test, so a page that stops matching the API fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "http2-server.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 2
    for block in BLOCKS:
        assert block.rstrip().endswith("anyio.run(main)")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = BLOCKS[index].rstrip()
    source = source[: -len("anyio.run(main)")] + f"anyio.run(main, backend={backend!r})\n"
    code = compile(source, f"{PAGE.name}[example {index + 1}]", "exec")
    exec(code, {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "200" in out  # each example prints what it got
    assert "connection ended" not in out
