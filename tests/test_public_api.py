"""Each public module's ``__all__`` is exactly what users get from it.

A public module is any module of the three distributions with no
underscore-prefixed part in its dotted name. For each one: every name in
``__all__`` exists, and every public attribute that is not in ``__all__`` was
merely imported for the module's own use (a submodule, a typing helper, a
class defined in another public module). What the module itself defines, or
pulls up from its private submodules, is in ``__all__`` or has a leading
underscore: nothing leaks out by accident and nothing promised is missing.
"""

from __future__ import annotations
import __future__

import importlib
import pkgutil
import types
import typing
from typing import Any, TypeVar

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


def owned_by(module_name: str, value: Any) -> bool:
    """Whether ``value`` is defined by the module or by one of its private parts."""
    if isinstance(value, types.ModuleType | TypeVar) or value is __future__.annotations:
        return False
    if value is typing.TYPE_CHECKING or id(value) in PUBLIC_OBJECTS:
        return False
    origin = getattr(value, "__module__", None)
    if not isinstance(origin, str) or isinstance(value, int | str | bytes | float):
        # Plain constants carry no origin: count them as the module's own.
        return True
    if origin == module_name or origin.startswith(f"{module_name}._"):
        return True
    # A name taken from a private module elsewhere in the project, and not
    # exported by any public module, is an implementation detail on show.
    root = module_name.split(".")[0]
    return origin.startswith(f"{root}.") and any(p.startswith("_") for p in origin.split("."))


def exported_objects() -> set[int]:
    ids: set[int] = set()
    for name in public_modules():
        module = importlib.import_module(name)
        for item in getattr(module, "__all__", ()):
            value = getattr(module, item, None)
            if not isinstance(value, int | str | bytes | float):
                ids.add(id(value))
    return ids


PUBLIC_OBJECTS = exported_objects()


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
        if not attr.startswith("_") and attr not in exported and owned_by(name, value)
    ]
    assert not extra, f"{name} exposes names missing from __all__: {extra}"


def test_public_modules_found() -> None:
    # Guards the walk itself: an empty walk would make the check above vacuous.
    assert {"hyper_core", "hyper_util", "hyper_tls", "hyper_core.error"} <= set(public_modules())
