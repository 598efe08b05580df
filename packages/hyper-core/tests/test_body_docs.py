"""The examples of docs/guides/bodies.md run as they are written.

Each ``python`` block of the page is a complete program (runnable ones call
``anyio.run`` on asyncio and on trio and assert what they show); the first
block only builds frames.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "bodies.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 8
    assert sum('anyio.run(main, backend="trio")\n' in block for block in BLOCKS) >= 7


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(BLOCKS[index], f"{PAGE.name}[example {index + 1}]", "exec"), namespace)
