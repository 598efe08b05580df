"""hyper-core's build: the list of compiled modules, and the pure fallback without a compiler.

The compiled build itself is tested by ``nox -s tests_compiled`` (the whole
suite on it); here, what every session can check: that each module the
build compiles exists (a renamed module would otherwise only fail the
compiled sessions), and that a machine without a working C compiler gets
the pure-Python wheel with one line saying so, never a failed install.
"""

from __future__ import annotations

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
