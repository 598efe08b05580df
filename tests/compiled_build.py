"""Check which build of hyper-core and hyper-util is installed (run by nox's compiled sessions).

Every module that a package's ``pyproject.toml`` lists under
``[tool.hyper-build] compile`` must import from a C extension built by mypyc,
so that a session meant for the compiled build can never test the pure one
by mistake. ``--report`` only prints which build of each installed package
is there (``nox -s isolated``, where pip chose by itself).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
from pathlib import Path

PACKAGES = Path(__file__).resolve().parent.parent / "packages"
#: The distributions built by the compiling backend (``_build/hyper_build.py``).
COMPILED = ["hyper-core", "hyper-util"]


def pyproject(package: str) -> Path:
    return PACKAGES / package / "pyproject.toml"


def compiled_modules(package: str) -> list[str]:
    with pyproject(package).open("rb") as f:
        paths: list[str] = tomllib.load(f)["tool"]["hyper-build"]["compile"]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def main(argv: list[str]) -> int:
    failed = False
    for package in COMPILED:
        names = compiled_modules(package)
        if "--report" in argv and importlib.util.find_spec(package.replace("-", "_")) is None:
            continue  # not installed in this session
        pure = [
            name for name in names if (importlib.import_module(name).__file__ or "").endswith(".py")
        ]
        if "--report" in argv:
            build = "pure Python" if pure else "compiled"
            print(f"{package}: the {build} build is installed ({len(names)} modules listed)")
        elif pure:
            print(f"{package}: not compiled: {', '.join(pure)}", file=sys.stderr)
            failed = True
        else:
            print(f"{package}: {len(names)} modules compiled by mypyc")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
