"""hyper-core's build: the list of compiled modules, and the pure fallback without a compiler.

The compiled build itself is tested by ``nox -s tests_compiled`` (the whole
suite on it); here, what every session can check: that each module the
build compiles exists (a renamed module would otherwise only fail the
compiled sessions), that none uses the two constructs mypyc compiles
differently from Python (docs/performance.md), and that a machine without a
working C compiler gets the pure-Python wheel with one line saying so,
never a failed install.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compiled_build import PYPROJECT, compiled_modules

CORE = PYPROJECT.parent


def test_every_compiled_module_exists() -> None:
    names = compiled_modules()
    assert names, "the compiled build lists no module"
    for name in names:
        path = CORE / "src" / (name.replace(".", "/") + ".py")
        assert path.is_file(), f"{name} is listed in [tool.hyper-build] but {path} is missing"


def _miscompiled(tree: ast.Module) -> list[tuple[int, str]]:
    """Lines mypyc would compile into something else than Python runs."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.cause is not None:
            call = node.exc
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "caused"
            ):
                found.append((node.lineno, "`raise ... from` without caused(): the cause is lost"))
        if isinstance(node, ast.Try | ast.TryStar):
            found.extend(
                (inner.lineno, "an await in `finally`: may re-raise another task's error")
                for statement in node.finalbody
                for inner in ast.walk(statement)
                if isinstance(inner, ast.Await | ast.AsyncWith | ast.AsyncFor)
            )
    return sorted(found)


def test_compiled_modules_avoid_what_mypyc_compiles_differently() -> None:
    problems = []
    for name in compiled_modules():
        path = CORE / "src" / (name.replace(".", "/") + ".py")
        for line, problem in _miscompiled(ast.parse(path.read_text(), str(path))):
            problems.append(f"{path.relative_to(CORE)}:{line}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_check_finds_both_constructs() -> None:
    source = """
async def f():
    try:
        pass
    except ValueError as exc:
        raise KeyError("k") from exc
    finally:
        await g()
"""
    assert [line for line, _ in _miscompiled(ast.parse(source))] == [6, 8]


def test_without_a_compiler_the_wheel_is_pure_python(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None, "uv is needed to build the wheel (pip install uv)"
    env = {**os.environ, "CC": str(tmp_path / "no-such-compiler"), "HYPER_COMPILE": "auto"}
    done = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(CORE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = list(tmp_path.glob("hyper_core-*.whl"))
    assert [w.name.endswith("-py3-none-any.whl") for w in wheels] == [True], wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
    assert "hyper_core/proto/h1/_parse.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    lines = [line for line in done.stderr.splitlines() if line.startswith("hyper-core:")]
    assert len(lines) == 1, lines
    assert "building pure Python" in lines[0]
    assert "no working C compiler" in lines[0]
