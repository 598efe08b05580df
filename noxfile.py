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
nox.options.sessions = ["lint", "typecheck", "tests", "fuzz", "docs", "isolated"]
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
        "test_server_exchange",
        "test_h1_parse_policy",
        "test_server_h1_options",
        "test_client_h1_options",
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
def fuzz(session: nox.Session) -> None:
    """The HTTP/1 parser against h11 and llhttp: 100,000 inputs (``-- --inputs N`` for more).

    A fixed seed by default, so that CI is repeatable; ``-- --seed N`` (or
    any other seed) explores new inputs. docs/guides/http1-parsing.md has
    the policy.
    """
    uv_sync(session, "--all-packages", "--group", "test")
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
    for dep in deps[package]:
        session.install(f"./packages/{dep}")
    # hyper-util's httpx transports import httpx, its ``httpx`` extra.
    extras = {"hyper-util": "[httpx]"}
    session.install(f"./packages/{package}{extras.get(package, '')}")
    session.run("python", str(ROOT / "tests" / "isolated_import.py"), package.replace("-", "_"))
    if package == "hyper-core":
        for other in ("hyper_util", "hyper_tls"):
            session.run(
                "python", "-c", f"import importlib.util as u; assert u.find_spec({other!r}) is None"
            )


@nox.session
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks against peer servers (needs wrk and taskset)."""
    uv_sync(session, "--all-packages", "--group", "test", "--group", "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(os.EX_USAGE)
