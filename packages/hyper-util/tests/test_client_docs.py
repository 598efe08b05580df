"""The examples of docs/guides/client.md run as they are written.

Each ``python`` block that calls ``anyio.run`` is a complete program (a
server of ours on 127.0.0.1, the client against it) and runs here; the
others are fragments that name a response or a remote proxy and are only
compiled, so a renamed import still fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "client.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
RUNNABLE = [i for i, block in enumerate(BLOCKS) if "anyio.run(main" in block]


def test_the_page_has_examples() -> None:
    assert len(RUNNABLE) >= 7


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example(index: int) -> None:
    code = compile(BLOCKS[index], f"{PAGE.name}[example {index + 1}]", "exec")
    if index in RUNNABLE:
        exec(code, {"__name__": "__main__"})
