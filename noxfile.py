"""Every check a person or CI runs: ``nox`` runs them all.

Sessions install from the workspace lock with uv, so a run on a new machine
needs only Python, pip, nox and uv.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "tests_compiled",
    "fuzz",
    "fuzz_compiled",
    "docs",
    "isolated",
]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PACKAGES = ["hyper-core", "hyper-util", "hyper-tls"]
H1_SUITES = [
    f"packages/hyper-core/tests/{name}.py"
    for name in (
        "test_h1_codec",
        "test_server_h1_ported",
        "test_server_h1_behaviour",
        "test_server_h1_robustness",
        "test_client_h1_wire",
        "test_server_h1_fast_paths",
        "test_h1_parse_policy",
    )
] + ["packages/hyper-util/tests/test_client_h1_fast_io.py"]


def uv_sync(session: nox.Session, *args: str) -> None:
    """Install the locked workspace into the session's virtualenv."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        *args,
        f"--python={session.virtualenv.location}",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


def uv_sync_compiled(session: nox.Session, *args: str) -> None:
    """Install the workspace with hyper-core compiled by mypyc (not editable), and check it.

    ``HYPER_COMPILE=1`` makes the build fail rather than fall back to pure
    Python, so this session can never test the pure build by mistake. Every
    workspace package is rebuilt: a non-editable install is a copy, and uv
    would otherwise reuse a wheel built from older source.
    """
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        "--no-editable",
        *(f"--reinstall-package={package}" for package in PACKAGES),
        *args,
        f"--python={session.virtualenv.location}",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location, "HYPER_COMPILE": "1"},
    )
    session.run("python", str(ROOT / "tests" / "compiled_build.py"))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite; every async test runs on asyncio and on trio."""
    # mypy too: two tests type-check snippets to prove IO and Service shapes.
    uv_sync(session, "--all-packages", "--group", "test", "--group", "lint")
    session.run("pytest", *session.posargs)
    if not session.posargs:
        # The HTTP/1 suites again on the reference codec over h11.Connection,
        # so the codec seam is proven by two implementations.
        session.run("pytest", *H1_SUITES, env={"HYPER_CORE_H1_CODEC": "h11"})


@nox.session
def tests_compiled(session: nox.Session) -> None:
    """The whole suite on the compiled build (mypyc; docs/performance.md), every backend.

    Once, without the h11-codec rerun of ``tests``: that proves the codec
    seam, which compiling does not change.
    """
    uv_sync_compiled(session, "--all-packages", "--group", "test", "--group", "lint")
    session.run("pytest", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The HTTP/1 parser against h11 and llhttp: 100,000 inputs (``-- --inputs N`` for more).

    A fixed seed by default, so that CI is repeatable; ``-- --seed N`` (or
    any other seed) explores new inputs. docs/guides/http1-parsing.md has
    the policy.
    """
    uv_sync(session, "--all-packages", "--group", "test")
    run_fuzz(session)


@nox.session
def fuzz_compiled(session: nox.Session) -> None:
    """The differential fuzz harness on the compiled build (as ``fuzz``)."""
    uv_sync_compiled(session, "--all-packages", "--group", "test")
    run_fuzz(session)


def run_fuzz(session: nox.Session) -> None:
    args = list(session.posargs)
    if "--inputs" not in args:
        args += ["--inputs", "100000"]
    if "--seed" not in args:
        args += ["--seed", "1"]
    fuzz_dir = ROOT / "packages" / "hyper-core" / "tests" / "fuzz"
    session.run("python", "-m", "h1diff.run", *args, env={"PYTHONPATH": str(fuzz_dir)})


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    uv_sync(session, "--only-group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over each package with its tests."""
    uv_sync(session, "--all-packages", "--group", "test", "--group", "lint", "--group", "bench")
    for package in PACKAGES:
        src = f"packages/{package}/src"
        session.run("mypy", src, env={"MYPYPATH": src})
        session.run("mypy", f"packages/{package}/tests")
    extras = [d for d in ("examples", "benchmarks", "tests") if any((ROOT / d).rglob("*.py"))]
    session.run("mypy", *extras, env={"MYPYPATH": "packages/hyper-core/src"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site; any warning is an error."""
    uv_sync(session, "--all-packages", "--group", "docs")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session(venv_backend="venv")
@nox.parametrize("package", PACKAGES)
def isolated(session: nox.Session, package: str) -> None:
    """Each distribution installs alone with pip and imports every public module."""
    # pip, not uv sync: this is what a user does, and it resolves the
    # distribution's own declared dependencies, not the workspace's.
    deps = {
        "hyper-core": [],
        "hyper-util": ["hyper-core"],
        "hyper-tls": ["hyper-core", "hyper-util"],
    }
    # hyper-core as a dependency is built pure (HYPER_COMPILE=0): compiling
    # it is hyper-core's own session's job, and costs a minute each time.
    for dep in deps[package]:
        session.install(f"./packages/{dep}", env={"HYPER_COMPILE": "0"})
    session.install(f"./packages/{package}")
    session.run("python", str(ROOT / "tests" / "isolated_import.py"), package.replace("-", "_"))
    # pip built hyper-core as a user's pip does (compiled when a C compiler
    # works, else pure Python with one line saying so): say which.
    session.run("python", str(ROOT / "tests" / "compiled_build.py"), "--report")
    if package == "hyper-core":
        for other in ("hyper_util", "hyper_tls"):
            session.run(
                "python", "-c", f"import importlib.util as u; assert u.find_spec({other!r}) is None"
            )


@nox.session
def bench(session: nox.Session) -> None:
    """Side-by-side HTTP/1 benchmarks against peer servers, pure build (needs wrk, taskset)."""
    uv_sync(session, "--all-packages", "--group", "test", "--group", "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def bench_compiled(session: nox.Session) -> None:
    """The same on the compiled build (``-- --only hyper`` measures hyper alone)."""
    uv_sync_compiled(session, "--all-packages", "--group", "test", "--group", "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(os.EX_USAGE)
