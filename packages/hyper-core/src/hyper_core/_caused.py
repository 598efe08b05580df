"""``caused``: ``raise ... from ...`` that the compiled build keeps.

What belongs here: one helper for the modules mypyc compiles
(docs/performance.md), which runs ``raise E(...) from exc`` as a plain
``raise E(...)``: the cause is dropped (and ``from None`` does not hide the
context). Those modules write ``raise caused(E(...), exc) from exc``;
``from exc`` stays for the pure build and for readers.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["caused"]

_E = TypeVar("_E", bound=BaseException)


def caused(error: _E, cause: BaseException | None) -> _E:
    """Give ``error`` its cause, as ``raise error from cause`` does; return it.

    Setting ``__cause__`` (``None`` included) also hides the context in a
    traceback, as ``from`` does.
    """
    error.__cause__ = cause
    return error
