"""The examples of docs/guides/runtimes-util.md run as they are written.

Each ``python`` block of the page is a complete program; the runnable ones
call ``anyio.run`` themselves on asyncio and on trio (and assert what they
show). The server example only defines its functions (it would listen on a
fixed port), so running it checks that its imports and names still exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "runtimes-util.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 3
    runs = [block for block in BLOCKS if 'anyio.run(main, backend="trio")\n' in block]
    assert len(runs) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(BLOCKS[index], f"{PAGE.name}[example {index + 1}]", "exec"), namespace)
    assert callable(namespace["main"])
