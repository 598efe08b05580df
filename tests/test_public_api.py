"""Each public module's ``__all__`` is exactly what users get from it.

A public module is any module of the three distributions with no
underscore-prefixed part in its dotted name. For each one: every name in
``__all__`` exists, and every public attribute that is not in ``__all__`` is a
submodule (or the ``annotations`` future flag), so nothing leaks out of a
private module by accident and nothing promised is missing.
"""

from __future__ import annotations
import __future__

import importlib
import pkgutil
import types

import pytest

DISTRIBUTIONS = ["hyper_core", "hyper_util", "hyper_tls"]


def public_modules() -> list[str]:
    names: list[str] = []
    for dist in DISTRIBUTIONS:
        names.append(dist)
        package = importlib.import_module(dist)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{dist}."):
            parts = info.name.split(".")
            if any(part.startswith("_") for part in parts):
                continue
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", public_modules())
def test_all_is_exactly_the_public_surface(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what the module lacks: {missing}"
    extra = [
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and attr not in exported
        and not isinstance(value, types.ModuleType)
        and value is not __future__.annotations
    ]
    assert not extra, f"{name} exposes names missing from __all__: {extra}"


def test_public_modules_found() -> None:
    # Guards the walk itself: an empty walk would make the check above vacuous.
    assert {"hyper_core", "hyper_util", "hyper_tls", "hyper_core.error"} <= set(public_modules())
