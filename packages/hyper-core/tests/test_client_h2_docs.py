"""The complete programs of docs/guides/http2-client.md run, on asyncio and on trio.

A ``python`` block that ends in ``anyio.run(main)`` is a complete program:
it is run here as ``__main__`` with that call pointed at the backend under
test. The other blocks are snippets of a larger program (their text says so).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "http2-client.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
PROGRAMS = [block for block in BLOCKS if block.rstrip().endswith("anyio.run(main)")]


def test_the_page_opens_with_a_complete_program() -> None:
    assert BLOCKS[0] in PROGRAMS


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("index", range(len(PROGRAMS)))
def test_program_runs(index: int, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = PROGRAMS[index].rstrip()
    source = source[: -len("anyio.run(main)")] + f"anyio.run(main, backend={backend!r})\n"
    exec(compile(source, f"{PAGE.name}[program {index + 1}]", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out == "200 text/plain\nb'Hello over h2'\n"
