"""The examples of docs/guides/httpx.md run as they are written.

The async and sync examples start their own server on 127.0.0.1 and
assert what they print; the others are fragments of configuration and are
only compiled.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "httpx.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
RUNNABLE = [i for i, block in enumerate(BLOCKS) if "anyio.run(main" in block]


def test_the_page_has_runnable_examples() -> None:
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example(index: int) -> None:
    code = compile(BLOCKS[index], f"{PAGE.name}[example {index + 1}]", "exec")
    if index in RUNNABLE:
        exec(code, {"__name__": "__main__"})
