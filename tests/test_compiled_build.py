"""The compiling build backend: its lists of modules, and the pure fallbacks.

The compiled build itself is tested by ``nox -s tests_compiled`` (the whole
suite on it); here, what every session can check, for each package the
backend builds (hyper-core, and hyper-util with hyper-core's backend): that
each module the build compiles exists (a renamed module would otherwise
only fail the compiled sessions), that none uses the two constructs mypyc
compiles differently from Python (docs/performance.md), that a machine
without a working C compiler gets the pure-Python wheel with one line
saying so, never a failed install, and that hyper-util built where
hyper-core's source is not beside it (from its sdist) never asks for
hyper-core as a build requirement (pip would look for it on PyPI).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compiled_build import COMPILED, compiled_modules, pyproject


def _source(package: str, module: str) -> Path:
    return pyproject(package).parent / "src" / (module.replace(".", "/") + ".py")


@pytest.mark.parametrize("package", COMPILED)
def test_every_compiled_module_exists(package: str) -> None:
    names = compiled_modules(package)
    assert names, f"the compiled build of {package} lists no module"
    for name in names:
        path = _source(package, name)
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


@pytest.mark.parametrize("package", COMPILED)
def test_compiled_modules_avoid_what_mypyc_compiles_differently(package: str) -> None:
    problems = []
    for name in compiled_modules(package):
        path = _source(package, name)
        for line, problem in _miscompiled(ast.parse(path.read_text(), str(path))):
            problems.append(f"{path}:{line}: {problem}")
    assert not problems, "\n".join(problems)


def test_hyper_util_shares_hyper_cores_backend() -> None:
    # One backend, linked: a second copy would drift (see its docstring).
    util, core = pyproject("hyper-util").parent, pyproject("hyper-core").parent
    for name in ("_build/hyper_build.py", "setup.py", "MANIFEST.in"):
        assert (util / name).is_symlink(), name
        assert (util / name).resolve() == (core / name).resolve(), name


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


def _uv_build(
    tmp_path: Path, source: Path, env: dict[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv")
    assert uv is not None, "uv is needed to build the wheel (pip install uv)"
    return subprocess.run(
        [uv, "build", *options, "--out-dir", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
        check=False,
    )


def _pure_wheel(tmp_path: Path, package: str, stderr: str, *why: str) -> None:
    """One pure wheel in tmp_path, and one line of ``package`` on stderr giving ``why``."""
    wheels = list(tmp_path.glob(f"{package.replace('-', '_')}-*.whl"))
    assert [w.name.endswith("-py3-none-any.whl") for w in wheels] == [True], wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
    assert compiled_modules(package)[0].replace(".", "/") + ".py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    lines = [line for line in stderr.splitlines() if line.startswith(f"{package}:")]
    assert len(lines) == 1, lines
    assert "building pure Python" in lines[0]
    for part in why:
        assert part in lines[0]


@pytest.mark.parametrize("package", COMPILED)
def test_without_a_compiler_the_wheel_is_pure_python(tmp_path: Path, package: str) -> None:
    env = {"CC": str(tmp_path / "no-such-compiler"), "HYPER_COMPILE": "auto"}
    done = _uv_build(tmp_path, pyproject(package).parent, env, "--wheel")
    assert done.returncode == 0, done.stderr[-3000:]
    _pure_wheel(tmp_path, package, done.stderr, "no working C compiler")


def test_hyper_util_from_its_sdist_never_asks_for_hyper_core(tmp_path: Path) -> None:
    # An sdist unpacked away from the checkout, compiler or not: hyper-core's
    # source is not beside it, so the wheel is pure Python, with one line
    # saying why. The build constraint fails the build if hyper-core is
    # ever a build requirement, wherever uv would look for it.
    sdists = tmp_path / "sdist"
    done = _uv_build(sdists, pyproject("hyper-util").parent, {"HYPER_COMPILE": "0"}, "--sdist")
    assert done.returncode == 0, done.stderr[-3000:]
    [sdist] = sdists.glob("hyper_util-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    [source] = (tmp_path / "unpacked").iterdir()
    assert not (source / "_build" / "hyper_build.py").is_symlink()  # the file itself
    never = tmp_path / "never.txt"
    never.write_text("hyper-core<0\n")
    env = {"HYPER_COMPILE": "auto"}
    done = _uv_build(tmp_path, source, env, "--wheel", f"--build-constraints={never}")
    assert done.returncode == 0, done.stderr[-3000:]
    _pure_wheel(tmp_path, "hyper-util", done.stderr, "hyper-core's typed source")
