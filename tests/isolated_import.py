"""Import every module of one installed distribution (run by ``nox -s isolated``).

Walks the package on disk, so a module that imports a sibling distribution,
or a dependency it does not declare, fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


def main(name: str) -> None:
    package = importlib.import_module(name)
    assert "site-packages" in (package.__file__ or ""), package.__file__
    count = 1
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
        importlib.import_module(info.name)
        count += 1
    print(f"{name}: imported {count} modules from {package.__file__}")


if __name__ == "__main__":
    main(sys.argv[1])
