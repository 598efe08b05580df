"""The example of docs/guides/http1-parsing.md runs, on asyncio and on trio.

The page's ``python`` block is a complete program ending in ``anyio.run(main)``;
it is run here as ``__main__`` with that call pointed at the backend under
test, and what it prints is checked against what the page says it prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "http1-parsing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_bounds_example_runs(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    (source,) = BLOCKS
    source = source.rstrip()
    assert source.endswith("anyio.run(main)")
    source = source[: -len("anyio.run(main)")] + f"anyio.run(main, backend={backend!r})\n"
    exec(compile(source, PAGE.name, "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out.splitlines()
    assert out == ["6 HTTP/1.1 200 OK", "101 HTTP/1.1 414 URI Too Long"]
