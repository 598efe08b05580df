"""docs/guides/hyper-options.md says what the builders take, both ways.

What belongs here: the check that keeps the page that maps every hyper,
hyper-util and hyper-tls builder option true: each section names a class
of ours in its title; every name in the "here" column of its table is a
parameter of that class, every row left out says why, and every parameter
of the class appears on the page (in the table, or under "Only here").
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "hyper-options.md"
SECTION = re.compile(
    r"^## [^`\n]*`((?:hyper_core|hyper_util|hyper_tls)\.[\w.]+)`\n(.*?)(?=^## |\Z)", re.M | re.S
)


def sections() -> list[tuple[str, str]]:
    return SECTION.findall(PAGE.read_text())


def parameters(path: str) -> set[str]:
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    return set(inspect.signature(cls).parameters)


def rows(body: str) -> list[tuple[str, str]]:
    """(hyper option cell, "here" cell) of each table row."""
    found = []
    for line in body.splitlines():
        if line.startswith(("| `", "| hyper")):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            if cells[0].startswith("hyper"):
                continue  # the header row
            assert len(cells) == 3, line
            found.append((cells[0], cells[2]))
    return found


def leading_names(cell: str) -> list[str]:
    """The option names a "here" cell starts with: ``a``, or ``a``, ``b``."""
    match = re.match(r"`(\w+)`(?:, `(\w+)`)*", cell)
    assert match is not None, f"a 'here' cell names an option or says 'left out:': {cell!r}"
    return re.findall(r"`(\w+)`", match.group(0))


def only_here(body: str) -> set[str]:
    match = re.search(r"^Only here: (.*?)(?:\n\n|\Z)", body, re.M | re.S)
    return set(re.findall(r"`(\w+)`", match.group(1))) if match else set()


def test_the_page_has_every_builder() -> None:
    titles = [path for path, _ in sections()]
    assert titles == [
        "hyper_core.server.conn.http1.Builder",
        "hyper_core.server.conn.http2.Builder",
        "hyper_core.client.conn.http1.Builder",
        "hyper_core.client.conn.http2.Builder",
        "hyper_util.client.legacy.Client",
        "hyper_util.client.legacy.connect.HttpConnector",
        "hyper_util.server.conn.auto.Builder",
        "hyper_util.client.legacy.connect.TunnelConnector",
        "hyper_util.client.legacy.connect.SocksConnector",
        "hyper_util.client.legacy.connect.ProxyMatcher",
        "hyper_tls.HttpsConnector",
        "hyper_tls.TlsAcceptor",
    ]
    # hyper's four connection builders: 13 + 15 + 11 + 17 options.
    counts = [len(rows(body)) for _, body in sections()[:4]]
    assert counts == [13, 15, 11, 17]


@pytest.mark.parametrize(("path", "body"), sections(), ids=[path for path, _ in sections()])
def test_a_section_matches_its_class(path: str, body: str) -> None:
    params = parameters(path)
    mentioned = only_here(body)
    assert mentioned <= params, f"'Only here' names what {path} does not take"
    for hyper_option, here in rows(body):
        if here.startswith("left out:"):
            assert len(here) > len("left out: ") + 20, f"{hyper_option}: left out without a reason"
            continue
        names = leading_names(here)
        missing = set(names) - params
        assert not missing, f"{hyper_option}: {path} has no {sorted(missing)}"
        mentioned.update(names)
    undocumented = params - mentioned
    assert not undocumented, f"{path} takes {sorted(undocumented)}, missing from the page"
