"""The examples of docs/guides/websockets.md run as they are written.

Each ``python`` block of the page that ends with ``anyio.run(main)`` is a
complete program: it is run here on asyncio, uvloop and trio (the ``assert``
lines in the examples check what their comments show). The other blocks
only build values, so running them checks that their imports still exist.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guides" / "websockets.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
RUN = "anyio.run(main)\n"
PROGRAMS = [index for index, block in enumerate(BLOCKS) if block.endswith(RUN)]


def test_the_page_has_programs() -> None:
    assert len(PROGRAMS) >= 6


@pytest.mark.parametrize("index", PROGRAMS)
def test_program_runs(index: int, anyio_backend: tuple[str, dict[str, Any]]) -> None:
    namespace: dict[str, Any] = {"__name__": "websockets_guide"}
    source = BLOCKS[index].removesuffix(RUN)
    exec(compile(source, f"{PAGE.name}[example {index + 1}]", "exec"), namespace)
    name, options = anyio_backend
    anyio.run(namespace["main"], backend=name, backend_options=options)


@pytest.mark.parametrize("index", [i for i in range(len(BLOCKS)) if i not in PROGRAMS])
def test_snippet_imports(index: int) -> None:
    # The snippet names a CA file that is not here: its imports ran before that.
    with contextlib.suppress(FileNotFoundError):
        exec(compile(BLOCKS[index], f"{PAGE.name}[example {index + 1}]", "exec"), {})
