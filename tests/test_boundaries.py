"""hyper-util and hyper-tls use only hyper-core's public API.

Every module of the two distributions is imported (so the list is what
ships, not a guess at file names) and its source is scanned with ``ast``.
A reference to a *private name of hyper-core* fails the test. What counts:

1. A private module: a dotted path under ``hyper_core`` with a part that
   starts with ``_`` (``hyper_core.http._headers``), or under
   ``hyper_core.proto``, which is internal by its own docstring ("Nothing
   here is public API"). Imported in any way, ``TYPE_CHECKING`` imports
   included: the names a signature uses are a contract too.
2. A private name imported from a hyper-core module
   (``from hyper_core.ext import _get_on_informational``).
3. A private attribute reached from a name bound to hyper-core: a module or
   anything imported from one (``Request._from_parts``, ``ext._helper``,
   ``hyper_core.http._headers``), read or written.
4. A private attribute of an object of unknown type (``conn._dispatcher``,
   ``dispatcher._streams``; also as a string given to ``getattr``,
   ``setattr``, ``hasattr`` or ``delattr``) whose name is one that hyper-core
   defines (a private function, class, method, slot or ``self._x``
   attribute) and that neither hyper-util nor hyper-tls defines on a class
   of its own.

What does not count: ``self._x`` and ``cls._x``, dunder names, and the
private names of hyper-util and hyper-tls themselves. The limit of a syntax
check is rule 4: a private attribute name that both sides define (``_timer``,
``_io``) on an object whose type is not visible in the source cannot be
attributed, and is let through; rules 1 to 3 still catch it whenever it is
reached from hyper-core by name. A test of the scanner itself proves each
rule finds what it claims to.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import hyper_core

CHECKED = ("hyper_util", "hyper_tls")
_ATTR_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "hyper_core":
        return False
    return any(_private(part) for part in parts[1:]) or parts[1:2] == ["proto"]


def _sources(package: str) -> list[Path]:
    """Import every module of ``package``; return their source files.

    The package walk finds what ``import`` finds; a folder without an
    ``__init__.py`` is shipped all the same, so every ``.py`` file on disk
    is imported by its dotted name too.
    """
    root = importlib.import_module(package)
    top = Path(root.__file__ or "").parent
    files = {_source_file(root)}
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        files.add(_source_file(importlib.import_module(info.name)))
    for path in sorted(set(top.rglob("*.py")) - files):
        parts = path.relative_to(top.parent).with_suffix("").parts
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        files.add(path)
    return sorted(files)


def _source_file(module: ModuleType) -> Path:
    """A module's ``.py`` file: the one beside its extension, if mypyc compiled it."""
    path = Path(module.__file__ or "")
    return path.with_name(path.name.partition(".")[0] + ".py")


def _class_private_names(node: ast.ClassDef) -> set[str]:
    """Private methods, class attributes and ``__slots__`` entries of a class."""
    names: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(item.name)
            continue
        value: ast.expr | None
        if isinstance(item, ast.Assign):
            targets, value = item.targets, item.value
        elif isinstance(item, ast.AnnAssign):
            targets, value = [item.target], item.value
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            names.add(target.id)
            if target.id == "__slots__" and isinstance(value, ast.Tuple | ast.List):
                names.update(
                    e.value
                    for e in value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                )
    return {name for name in names if _private(name)}


def _defined_private_names(tree: ast.AST, *, classes_only: bool) -> set[str]:
    """Private names a module defines: on its classes, or (not classes_only) anywhere."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            names |= _class_private_names(node)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
            and _private(node.attr)
        ):
            names.add(node.attr)
        if (
            not classes_only
            and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and _private(node.name)
        ):
            names.add(node.name)
    return names


def _names_in(files: list[Path], *, classes_only: bool) -> set[str]:
    names: set[str] = set()
    for path in files:
        names |= _defined_private_names(ast.parse(path.read_text()), classes_only=classes_only)
    return names


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def scan(source: str, path: str, core_private: set[str], own_private: set[str]) -> list[Violation]:
    """Every reference to a private name of hyper-core in ``source`` (see the module doc)."""
    tree = ast.parse(source)
    found: list[Violation] = []
    core_names: set[str] = set()  # local names bound to hyper-core modules or objects

    def report(node: ast.AST, what: str) -> None:
        found.append(Violation(path, getattr(node, "lineno", 0), what))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private_module(alias.name):
                    report(node, f"import {alias.name}")
                if alias.name.split(".")[0] == "hyper_core":
                    core_names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "hyper_core":
                continue
            if _private_module(node.module):
                report(node, f"from {node.module} import ...")
            else:
                for alias in node.names:
                    if _private(alias.name):
                        report(node, f"from {node.module} import {alias.name}")
            core_names.update(alias.asname or alias.name for alias in node.names)

    def chain_root(node: ast.expr) -> ast.expr:
        while isinstance(node, ast.Attribute):
            node = node.value
        return node

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = chain_root(node)
            if isinstance(root, ast.Name) and root.id in ("self", "cls"):
                # Own attributes; only a hyper-core name further down the chain counts.
                if node.attr in core_private and node.attr not in own_private:
                    report(node, ast.unparse(node))
                continue
            if (isinstance(root, ast.Name) and root.id in core_names) or (
                node.attr in core_private and node.attr not in own_private
            ):
                report(node, ast.unparse(node))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ATTR_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and node.args[1].value in core_private
            and node.args[1].value not in own_private
        ):
            report(node, ast.unparse(node))
    return found


@pytest.fixture(scope="module")
def core_private() -> set[str]:
    root = Path(hyper_core.__file__ or "").parent
    return _names_in(sorted(root.rglob("*.py")), classes_only=False)


@pytest.fixture(scope="module")
def checked_files() -> dict[str, list[Path]]:
    return {package: _sources(package) for package in CHECKED}


def test_hyper_util_and_hyper_tls_use_only_public_hyper_core(
    core_private: set[str], checked_files: dict[str, list[Path]]
) -> None:
    every = [path for files in checked_files.values() for path in files]
    for package, files in checked_files.items():
        # Every module on disk was imported and is scanned: nothing escapes.
        top = Path(importlib.import_module(package).__file__ or "").parent
        assert set(files) == set(top.rglob("*.py")), package
    own = _names_in(every, classes_only=True)
    violations = [
        violation
        for path in every
        for violation in scan(path.read_text(), path.name, core_private, own)
    ]
    assert not violations, "private hyper-core names used:\n" + "\n".join(map(str, violations))


def test_the_scanner_finds_each_kind_of_reference(core_private: set[str]) -> None:
    assert {"_from_trusted", "_dispatcher", "_headers_of"} <= core_private
    source = """
import hyper_core.http._headers
import hyper_core.proto.h2 as h2
from hyper_core.proto.h2._common import initiate
from hyper_core.http import Headers, Request
from hyper_core.http._headers import HeaderInit
from hyper_core.ext import _get_on_informational
from hyper_core import ext

def f(conn, request):
    Headers._from_trusted([])
    ext._helper()
    conn._dispatcher._streams.clear()
    getattr(conn, "_dispatcher")
    request._extensions = None
    self._timer = conn._timer
    return Request.method
"""
    found = sorted(v.what for v in scan(source, "x.py", core_private, own_private={"_timer"}))
    assert found == sorted(
        [
            "import hyper_core.http._headers",
            "import hyper_core.proto.h2",
            "from hyper_core.proto.h2._common import ...",
            "from hyper_core.http._headers import ...",
            "from hyper_core.ext import _get_on_informational",
            "Headers._from_trusted",
            "ext._helper",
            "conn._dispatcher._streams",
            "conn._dispatcher",
            "request._extensions",
            "getattr(conn, '_dispatcher')",
        ]
    ), found


def _imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of the modules ``path`` (in ``package``) imports."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            imported.add(base)
            imported.update(f"{base}.{alias.name}" for alias in node.names)
    return imported


def test_http2_does_not_import_http1() -> None:
    """The two protocol packages share only what sits beside them in ``proto``."""
    proto = Path(hyper_core.__file__ or "").parent / "proto"
    for version, other in (("h2", "h1"), ("h1", "h2")):
        for path in sorted((proto / version).glob("*.py")):
            imported = _imported_modules(path, f"hyper_core.proto.{version}")
            crossing = {m for m in imported if m.startswith(f"hyper_core.proto.{other}")}
            assert not crossing, f"{path.name} imports {crossing}"
