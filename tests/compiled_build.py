"""Check which build of hyper-core is installed (run by nox's compiled sessions).

Every module that ``packages/hyper-core/pyproject.toml`` lists under
``[tool.hyper-build] compile`` must import from a C extension built by mypyc,
so that a session meant for the compiled build can never test the pure one
by mistake. ``--report`` only prints which build is installed (``nox -s
isolated``, where pip chose by itself).
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "packages" / "hyper-core" / "pyproject.toml"


def compiled_modules() -> list[str]:
    with PYPROJECT.open("rb") as f:
        paths: list[str] = tomllib.load(f)["tool"]["hyper-build"]["compile"]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def main(argv: list[str]) -> int:
    names = compiled_modules()
    pure = [
        name for name in names if (importlib.import_module(name).__file__ or "").endswith(".py")
    ]
    if "--report" in argv:
        build = "pure Python" if pure else "compiled"
        print(f"hyper-core: the {build} build is installed ({len(names)} modules listed)")
        return 0
    if pure:
        print(f"hyper-core: not compiled: {', '.join(pure)}", file=sys.stderr)
        return 1
    print(f"hyper-core: {len(names)} modules compiled by mypyc")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
