"""The build backend of hyper-core and hyper-util: setuptools, plus mypyc when a C compiler works.

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

One file for both packages: ``packages/hyper-util/_build/hyper_build.py``
(and ``setup.py``) are symbolic links to hyper-core's. A link, not a
second copy (which would drift) and not a shared build package (which
would have to be published, or fetched from outside the source tree, which
``backend-path`` forbids). Everything package-specific comes from the
``pyproject.toml`` of the tree being built (``ROOT``: the link's folder's
parent, never the resolved target's). An sdist holds the file itself
(setuptools follows the link), so one builds anywhere; ``uv build`` and
``pip wheel``, from the directory and from the sdist, were checked.

Workspace dependencies (hyper-util's ``[tool.hyper-build]
workspace-dependencies = ["hyper-core"]``): mypyc must read the types of
the hyper-core that hyper-util's compiled modules call, but hyper-core is
never a build requirement: pip would look for it on PyPI (where it is not
published, and where a package of that name may belong to someone else);
only uv would take it from the workspace (``tool.uv.sources``; tried, even
from the sdist). The backend reads it from
its source beside this tree instead (``../hyper-core/src``, this
checkout's own, when its ``pyproject.toml`` names it and its version is in
the range we require), or from an installed copy in the build environment
(a build without isolation). Its dependencies (PyPI packages) become build
requirements, to be type-checked too. Neither found (an sdist built
elsewhere) means the pure wheel, with one line saying so. Its classes are
not native to our compiled modules (another compilation unit): they are
called through Python's object protocol, so a hyper-core built differently
(pure or compiled) at run time is fine; only ``Final`` literals are copied
in, which is why the source read must be in our range (in a checkout, it is
the very hyper-core installed beside us).
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
# Checks a workspace dependency's version against our range.
PACKAGING = "packaging>=24"
# Not resolve(): hyper-util's copy is a symbolic link to hyper-core's, and
# ROOT is the tree being built.
ROOT = Path(__file__).absolute().parent.parent

# What setup.py builds; set by build_wheel for the duration of one build.
_state: dict[str, Any] = {"compile": False, "build_base": None, "c_files": None}


def _project(root: Path) -> dict[str, Any]:
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _config() -> dict[str, Any]:
    document = _project(ROOT)
    config: dict[str, Any] = document["tool"]["hyper-build"]
    config["name"] = document["project"]["name"]
    config["dependencies"] = document["project"].get("dependencies", [])
    config.setdefault("workspace-dependencies", [])
    return config


def _name(requirement: str) -> str:
    """The normalised project name a PEP 508 requirement starts with."""
    end = len(requirement)
    for mark in "<>=!~;[ @(":
        if mark in requirement:
            end = min(end, requirement.index(mark))
    return requirement[:end].strip().lower().replace("_", "-").replace(".", "-")


def _workspace_sources(*, check: bool = True) -> tuple[list[Path], list[str]] | str:
    """Where mypyc reads the workspace dependencies, and what they need; or why it cannot.

    Returns the ``src`` folders to put on ``MYPYPATH`` (none for an
    installed copy, which mypy finds by itself) and the dependencies of
    those projects (build requirements, for their types). ``check=False``
    skips the version ranges (before ``packaging`` is installed).
    """
    config = _config()
    wanted = {_name(r): r for r in config["dependencies"]}
    paths: list[Path] = []
    requires: list[str] = []
    for name in config["workspace-dependencies"]:
        requirement = wanted[name]
        sibling = ROOT.parent / name
        try:
            project = _project(sibling)["project"]
        except OSError:
            project = None
        if project is not None and _name(project["name"]) == name:
            version = project["version"]
            if check and not _satisfies(requirement, version):
                return f"{name} {version} beside this tree is not {requirement}"
            paths.append(sibling / "src")
            requires += project.get("dependencies", [])
            continue
        installed = _installed_version(name)
        if installed is None:
            return f"{name}'s typed source is neither beside this tree nor installed"
        if check and not _satisfies(requirement, installed):
            return f"the installed {name} {installed} is not {requirement}"
    return paths, requires


def _satisfies(requirement: str, version: str) -> bool:
    # Deferred: a build requirement when compiling (packaging), not for a pure build.
    from packaging.requirements import Requirement

    return Requirement(requirement).specifier.contains(version, prereleases=True)


def _installed_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


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
    """The requirements of setuptools, plus mypy and the runtime dependencies when compiling.

    Never a workspace dependency itself (see the module docstring): its
    dependencies instead, when its source is found.
    """
    requires: list[str] = _setuptools.get_requires_for_build_wheel(config_settings)
    if _mode() == "0" or (_mode() == "auto" and compiler_problem() is not None):
        return requires
    config = _config()
    if not config["workspace-dependencies"]:
        return [*requires, MYPY, *config["dependencies"]]
    found = _workspace_sources(check=False)
    if isinstance(found, str):  # build_wheel says why, and builds pure Python
        return requires
    ours = [r for r in config["dependencies"] if _name(r) not in config["workspace-dependencies"]]
    return [*requires, MYPY, PACKAGING, *ours, *found[1]]


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """Build the compiled wheel, or the pure one (see the module docstring for which)."""
    mode = _mode()
    if mode != "0":
        problem = compiler_problem() or _workspace_problem() or _mypyc_problem()
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


def _workspace_problem() -> str | None:
    if not _config()["workspace-dependencies"]:
        return None
    try:
        found = _workspace_sources()
    except ImportError:
        return f"{PACKAGING} is not installed in the build environment"
    return found if isinstance(found, str) else None


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
    found = _workspace_sources() if config["workspace-dependencies"] else ([], [])
    assert not isinstance(found, str), found  # build_wheel checked
    os.environ["MYPYPATH"] = os.pathsep.join(["src", *map(str, found[0])])
    # setuptools wants extension sources relative to setup.py: the C files go
    # in a folder of build/ (ignored by git) that _build removes afterwards.
    (ROOT / "build").mkdir(exist_ok=True)
    c_files = _state["c_files"] = tempfile.mkdtemp(prefix="mypyc-", dir=ROOT / "build")
    # The compiled modules are checked whole; the modules they import are
    # read for their types only, without the errors of optional imports
    # (trio, aioquic, hyper-tls) that are not build requirements.
    arguments["ext_modules"] = mypycify(
        ["--cache-dir", str(Path(base, "mypy-cache")), "--follow-imports=silent", *paths],
        opt_level="3",
        target_dir=os.path.relpath(c_files, ROOT),
        group_name=config["name"].replace("-", "_"),
    )
    return arguments
