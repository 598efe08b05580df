"""hyper-core's build backend: setuptools, plus modules compiled by mypyc when a C compiler works.

What belongs here: the PEP 517 hooks (``build-backend = "hyper_build"``,
``backend-path = ["_build"]``) and the decision between the compiled and the
pure-Python wheel. ``setup.py`` asks :func:`setup_arguments` what to build.
The list of compiled modules is ``[tool.hyper-build] compile`` in
``pyproject.toml``; docs/performance.md tells the whole story.

Strategy:

* ``HYPER_COMPILE`` chooses: ``1`` compiles and fails the build when it
  cannot; ``0`` builds pure Python; unset (or ``auto``) compiles when a C
  compiler with the Python headers works and otherwise builds pure Python,
  saying so in ONE line on stderr. An install never fails for want of a
  compiler: if compiling fails anyway in ``auto`` mode, the pure wheel is
  built instead, with one line saying why.
* The Python source is the source of truth: mypyc compiles the same typed
  modules into C extensions, and every module stays in the wheel as
  ``.py`` too (mypyc's extension is what Python imports first).
* Editable installs (``uv sync``, ``pip install -e``) are always pure: a
  compiled module next to its source would shadow the ``.py`` a developer
  edits, and a stale one would run old code.
* mypy (which ships mypyc) and the runtime dependencies (mypyc compiles
  against their type information) are build requirements only when
  compiling, so a pure build downloads nothing more than setuptools.
* Every build writes to a fresh temporary folder (setuptools' ``build/``,
  mypyc's C files, mypy's cache): nothing is left in the source tree, and no
  extension from an earlier compiled build can slip into a pure wheel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
    "setup_arguments",
]

ENV = "HYPER_COMPILE"
# mypyc ships with mypy; the range the compiled modules were tested with.
MYPY = "mypy>=2.4,<3"
ROOT = Path(__file__).resolve().parent.parent

# What setup.py builds; set by build_wheel for the duration of one build.
_state: dict[str, Any] = {"compile": False, "build_base": None, "c_files": None}


def _config() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        document = tomllib.load(f)
    config: dict[str, Any] = document["tool"]["hyper-build"]
    config["name"] = document["project"]["name"]
    config["dependencies"] = document["project"].get("dependencies", [])
    return config


def _mode() -> str:
    value = os.environ.get(ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in ("0", "1"):
        return value
    raise ValueError(f"{ENV}={value!r}: expected 0 (pure Python), 1 (compiled) or auto")


def _say(message: str) -> None:
    print(f"{_config()['name']}: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _quiet() -> Iterator[IO[bytes]]:
    """Send file descriptors 1 and 2 (the compiler's output too) to a file; yield it."""
    with tempfile.TemporaryFile() as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield sink
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def compiler_problem() -> str | None:
    """Why no C extension can be built here (``None`` when a compiler and Python.h work)."""
    # setuptools (imported above) makes ``distutils`` its own copy, on 3.12+ too.
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    with tempfile.TemporaryDirectory(prefix="hyper-build-check-") as tmp:
        source = Path(tmp, "check.c")
        source.write_text("#include <Python.h>\nint main(void) { return !Py_IsNone(Py_None); }\n")
        try:
            compiler = new_compiler()
            customize_compiler(compiler)
            with _quiet():
                compiler.compile(
                    [str(source)], output_dir=tmp, include_dirs=[sysconfig.get_paths()["include"]]
                )
        except Exception as exc:  # whatever failed, this machine cannot compile
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"no working C compiler with the Python headers: {first}"
    return None


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    """The requirements of setuptools, plus mypy and the runtime dependencies when compiling."""
    requires: list[str] = _setuptools.get_requires_for_build_wheel(config_settings)
    if _mode() == "0" or (_mode() == "auto" and compiler_problem() is not None):
        return requires
    return [*requires, MYPY, *_config()["dependencies"]]


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """Build the compiled wheel, or the pure one (see the module docstring for which)."""
    mode = _mode()
    if mode != "0":
        problem = compiler_problem() or _mypyc_problem()
        if problem is None:
            modules = len(_config()["compile"])
            _say(f"compiling {modules} modules with mypyc ({ENV}=0 builds pure Python)")
            try:
                return _build(wheel_directory, config_settings, metadata_directory, compile=True)
            except (Exception, SystemExit) as exc:
                if mode == "1":
                    raise
                problem = f"compiling failed: {str(exc).strip() or type(exc).__name__}"
        if mode == "1":
            raise RuntimeError(f"{ENV}=1, but the compiled build is impossible: {problem}")
        _say(f"building pure Python, which works the same but slower ({problem})")
    return _build(wheel_directory, config_settings, metadata_directory, compile=False)


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """An editable install: always pure Python (a compiled module would shadow its source)."""
    return str(_setuptools.build_editable(wheel_directory, config_settings, metadata_directory))


def _mypyc_problem() -> str | None:
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return f"mypyc is not installed in the build environment ({MYPY})"
    return None


def _build(
    wheel_directory: str,
    config_settings: dict[str, Any] | None,
    metadata_directory: str | None,
    *,
    compile: bool,
) -> str:
    with tempfile.TemporaryDirectory(prefix="hyper-build-") as tmp:
        _state.update({"compile": compile, "build_base": tmp})
        try:
            if not compile:
                return str(
                    _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
                )
            # mypyc's progress and the compiler's command lines are not the
            # user's business unless the build fails.
            with _quiet() as log:
                try:
                    built = _setuptools.build_wheel(
                        wheel_directory, config_settings, metadata_directory
                    )
                    return str(built)
                except (Exception, SystemExit) as exc:
                    error = exc
                    log.seek(0)
                    output = log.read().decode(errors="replace")
            if _mode() == "1":  # the build fails: show why
                print(output[-20000:], file=sys.stderr)
            raise error
        finally:
            if _state.get("c_files"):
                shutil.rmtree(_state["c_files"], ignore_errors=True)
                with contextlib.suppress(OSError):  # only if nothing else is in it
                    (ROOT / "build").rmdir()
            _state.update({"compile": False, "build_base": None, "c_files": None})


def setup_arguments() -> dict[str, Any]:
    """What ``setup.py`` passes to ``setup()`` for the build in progress."""
    base = _state["build_base"]
    if base is None:  # metadata, sdist or editable: nothing compiled, nothing to place
        return {}
    arguments: dict[str, Any] = {"options": {"build": {"build_base": str(Path(base, "build"))}}}
    if not _state["compile"]:
        return arguments
    from mypyc.build import mypycify

    config = _config()
    paths = [f"src/{module}" for module in config["compile"]]
    os.environ["MYPYPATH"] = "src"
    # setuptools wants extension sources relative to setup.py: the C files go
    # in a folder of build/ (ignored by git) that _build removes afterwards.
    (ROOT / "build").mkdir(exist_ok=True)
    c_files = _state["c_files"] = tempfile.mkdtemp(prefix="mypyc-", dir=ROOT / "build")
    arguments["ext_modules"] = mypycify(
        ["--cache-dir", str(Path(base, "mypy-cache")), *paths],
        opt_level="3",
        target_dir=os.path.relpath(c_files, ROOT),
        group_name=config["name"].replace("-", "_"),
    )
    return arguments
