"""The examples of docs/guides/http1-server.md run, on asyncio and on trio.

Each ``python`` block of the page that is a complete program (it ends in
``anyio.run(main)``) is run here as ``__main__`` with that call pointed at
the backend under test; the others are fragments. What the pipelining
example prints is checked against what the page says it prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "http1-server.md"
BLOCKS = [
    block
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    if block.rstrip().endswith("anyio.run(main)")
]


def run(source: str, backend: str, index: int) -> None:
    source = source.rstrip()
    source = source[: -len("anyio.run(main)")] + f"anyio.run(main, backend={backend!r})\n"
    exec(compile(source, f"{PAGE.name}[{index}]", "exec"), {"__name__": "__main__"})


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(BLOCKS[index], backend, index)
    assert capsys.readouterr().out  # each example prints what it got


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_pipelining_example_prints_what_the_page_says(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (index, source), *_ = [(i, b) for i, b in enumerate(BLOCKS) if "pipeline_flush" in b]
    run(source, backend, index)
    assert capsys.readouterr().out.splitlines() == [
        "pipeline_flush=False: 3 answers in 3 write(s)",
        "pipeline_flush=True: 3 answers in 1 write(s)",
    ]
    text = PAGE.read_text()
    assert "`pipeline_flush=False: 3 answers in 3 write(s)`" in text
    assert "`pipeline_flush=True: 3 answers in 1 write(s)`" in text
