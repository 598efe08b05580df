"""Sphinx configuration for the hyper for Python documentation site.

What belongs here: the settings of the one docs build, and the small
extensions that make the API reference render and link up: the
``api-module`` directive, a ``missing-reference`` handler and a docstring
hook.

Strategy: autodoc imports the workspace packages (their ``src`` folders come
first on ``sys.path``, so the pages always describe the tree being built),
napoleon reads the Google style docstrings, and MyST reads the Markdown
pages. The build runs with ``-W -n`` (every warning fails it, every
cross-reference must resolve) and without network, so there is no
intersphinx: names from outside the project (typing, anyio, h11, h2, ...)
are listed by module in ``nitpick_ignore_regex`` and render as plain text.

Names inside the project must resolve, and each is described once. Public
classes live in private modules (``hyper_core.http._headers``) and packages
re-export names from each other (``hyper_core.Request``), so the API pages
use ``api-module``, which runs ``automodule`` on a module's own names and
links the rest to their home page; the ``missing-reference`` handler sends
references made through a private module or a re-export to that home too,
and shows the names that have no page by design (type variables, type
aliases, private and internal names) as plain text. The docstring hook
keeps napoleon from mistaking a colon in an attribute's summary for a type.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import types
import typing
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parent.parent
_DISTRIBUTIONS = ("hyper_core", "hyper_util", "hyper_tls")
for _package in ("hyper-core", "hyper-util", "hyper-tls"):
    sys.path.insert(0, str(ROOT / "packages" / _package / "src"))

import hyper_core  # noqa: E402  (needs the path set up above)

# -- Project -----------------------------------------------------------------

project = "hyper for Python"
author = "The hyper for Python contributors"
copyright = "the hyper for Python contributors"
release = hyper_core.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "py:obj"

# -- MyST --------------------------------------------------------------------

# Anchors for headings down to level 3, so pages can link to `page.md#section`.
myst_heading_anchors = 3
# Definition lists, for the glossary-style lists on the guide index.
myst_enable_extensions = ["deflist"]

# -- autodoc / napoleon ------------------------------------------------------

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- Nitpicky references -----------------------------------------------------

# Without intersphinx, names from outside the project cannot resolve.
# Builtins and bare ``typing`` names need nothing here: Sphinx's own
# resolver already accepts them. What remains is ignored by the module it
# comes from, never wholesale, so a typo in a reference to one of our own
# names still fails the build.
_EXTERNAL_MODULES = (
    # The standard library modules our annotations and docstrings name.
    "typing|typing_extensions|collections\\.abc|types|enum|contextlib|ssl|socket|os|asyncio"
    # The libraries the three distributions build on or adapt to.
    "|anyio|sniffio|h11|h2|hpack|hyperframe|trio|httpx|truststore|wsproto|gunicorn"
)
# "more than one target found": a docstring that says ``http1.Builder``
# inside hyper-util is ambiguous to Sphinx's fuzzy search (client and server
# both have one), though the signature beside it links to the right one.
suppress_warnings = ["ref.python"]

nitpick_ignore_regex = [
    (r"py:(class|obj|exc|data|func|meth|attr|mod)", rf"({_EXTERNAL_MODULES})(\..+)?"),
    # Napoleon reads a "Raises:" entry written as a sentence ("Whatever
    # ``io.send`` raises.") as an exception type. A target with a space in it
    # can never be a Python name, so ignoring these cannot hide a broken
    # reference to a real one.
    (r"py:exc", r".*\s.*"),
    # A signature that names a class through a private module alias
    # (``_client.ClientConnection``) points at an implementation detail.
    (r"py:(class|obj)", r"_[a-z0-9_]+\..+"),
    # wsproto's extension base class, as a signature of hyper_util.ws names it.
    (r"py:class", r"Extension"),
]


# -- One description per name -----------------------------------------------

# The modules that have a reference page, in the order the reference lists
# them. A name exported by several of them is described once, in its home.
API_MODULES = [
    "hyper_core",
    "hyper_core.http",
    "hyper_core.body",
    "hyper_core.rt",
    "hyper_core.service",
    "hyper_core.server.conn",
    "hyper_core.server.conn.http1",
    "hyper_core.server.conn.http2",
    "hyper_core.client.conn",
    "hyper_core.client.conn.http1",
    "hyper_core.client.conn.http2",
    "hyper_core.upgrade",
    "hyper_core.ext",
    "hyper_core.error",
    "hyper_core.testing",
    "hyper_util",
    "hyper_util.rt",
    "hyper_util.server.conn.auto",
    "hyper_util.server.graceful",
    "hyper_util.server",
    "hyper_util.client.legacy.connect",
    "hyper_util.client.legacy",
    "hyper_util.ws",
    "hyper_util.asgi",
    "hyper_util.asgi.gunicorn",
    "hyper_tls",
]


_INTERNAL_PACKAGES = ("hyper_core.proto",)


def _public_part(module_name: str) -> str:
    """``hyper_core.body._body`` -> ``hyper_core.body``."""
    parts = module_name.split(".")
    return ".".join(itertools.takewhile(lambda part: not part.startswith("_"), parts))


def _is_internal(module_name: str) -> bool:
    """Whether a module is not public API: private, or in an internal package."""
    if _public_part(module_name) != module_name:
        return True
    return any(
        module_name == package or module_name.startswith(package + ".")
        for package in _INTERNAL_PACKAGES
    )


def _exports(module_name: str, name: str, value: object) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    return name in getattr(module, "__all__", ()) and getattr(module, name, None) is value


def _home_of(module_name: str, name: str) -> str:
    """The reference page that describes ``module_name.name``.

    Where it is defined, if that module (minus its private tail) has a page
    and exports it; otherwise the first page whose module exports it.
    """
    value = getattr(importlib.import_module(module_name), name)
    defined_in = getattr(value, "__module__", None)
    if isinstance(defined_in, str):
        public = _public_part(defined_in)
        if public in API_MODULES and _exports(public, name, value):
            return public
    for candidate in API_MODULES:
        if _exports(candidate, name, value):
            return candidate
    return module_name


class ApiModuleDirective(SphinxDirective):
    """``.. api-module:: hyper_core.http``: ``automodule`` with ``:members:``, once.

    Packages re-export names defined elsewhere (``hyper_core.Request`` is
    ``hyper_core.http.Request``; ``TrySendError`` is exported by three client
    modules). autodoc documents every name in ``__all__``, so each would be
    described on several pages, and every reference to it would become
    ambiguous. This runs ``automodule`` with the names whose home
    (:func:`_home_of`) is another page excluded, and lists them with a link
    to their one description. Both come from ``__all__`` at build time, so
    the pages never go stale.
    """

    required_arguments = 1
    option_spec: typing.ClassVar[dict[str, Any]] = {
        "show-inheritance": directives.flag,
        "special-members": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        elsewhere = [
            (name, home)
            for name in getattr(module, "__all__", [])
            if not name.startswith("__") and (home := _home_of(module_name, name)) != module_name
        ]
        lines = [f".. automodule:: {module_name}", "   :members:"]
        lines += [f"   :{option}: {value or ''}".rstrip() for option, value in self.options.items()]
        if elsewhere:
            lines.append(f"   :exclude-members: {', '.join(name for name, _ in elsewhere)}")
            lines += ["", f"``{module_name}`` also exports, described on their own pages:", ""]
            lines += [f"* :py:obj:`{home}.{name}`" for name, home in elsewhere]
        container = nodes.container()
        source = self.get_source_info()[0]
        self.state.nested_parse(StringList(lines, source=source), self.content_offset, container)
        return list(container.children)


# -- Resolving references to our own names ----------------------------------

_TYPE_ALIAS_TYPES: tuple[type, ...] = tuple(
    alias for alias in [getattr(typing, "TypeAliasType", None)] if isinstance(alias, type)
)


def _is_type_helper(module: types.ModuleType, name: str) -> bool:
    """Whether ``module.name`` is a type variable or a type alias."""
    value = getattr(module, name, None)
    # `X: TypeAlias = "A | B"` (a string alias) is known by its annotation, in
    # the module or in the private submodule a package re-exports it from.
    homes = [module] + [
        sys.modules[loaded]
        for loaded in sorted(sys.modules)
        if loaded.startswith(module.__name__ + "._")
    ]
    for home in homes:
        annotation = getattr(home, "__annotations__", {}).get(name)
        if annotation in ("TypeAlias", typing.TypeAlias) and getattr(home, name, None) is value:
            return True
    if isinstance(value, typing.TypeVar | typing.ParamSpec | typing.TypeVarTuple):
        return True
    # `X: TypeAlias = A | B` is a union object; `type X = ...` (Python 3.12+)
    # a TypeAliasType; `X: TypeAlias = list[int]` a generic alias.
    return isinstance(value, (types.UnionType, *_TYPE_ALIAS_TYPES)) or (
        typing.get_origin(value) is not None and not isinstance(value, type)
    )


def _lookup(target: str, context_module: str | None) -> tuple[types.ModuleType, str] | None:
    """The module that holds ``target`` (dotted, or bare in the context module).

    A bare name is looked up in the module being documented and then in its
    private submodules, where annotations of its re-exported names were
    written.
    """
    module_name, _, name = target.rpartition(".")
    candidates = [module_name] if module_name else []
    if not module_name and context_module:
        candidates.append(context_module)
        candidates.extend(
            loaded for loaded in sorted(sys.modules) if loaded.startswith(context_module + "._")
        )
    for candidate in candidates:
        if not candidate.startswith(_DISTRIBUTIONS):
            continue
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            continue
        if hasattr(module, name) or name in getattr(module, "__annotations__", {}):
            return module, name
    return None


def _resolve_own_name(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.reference | nodes.TextElement | None:
    """Resolve what Sphinx could not, for names of the three distributions.

    1. A public name reached through the private module that defines it
       (``hyper_core.http._headers.Headers``) or through a module that
       re-exports it (``Protocol`` in ``hyper_core.client.conn.http2``)
       links to its one description (:func:`_home_of`).
    2. A type variable, a type alias, a private name (``_Pending``) or a
       name from an internal module (private, or under ``hyper_core.proto``)
       has no page by design: it is shown as plain text.
    Anything else stays unresolved, and the nitpicky build fails on it.
    """
    if node.get("refdomain") != "py":
        return None
    target: str = node.get("reftarget", "")
    context_module: str | None = node.get("py:module")
    if node["reftype"] == "mod":
        return contnode if target.startswith(_DISTRIBUTIONS) and _is_internal(target) else None
    found = _lookup(target, context_module)
    if found is None:
        return None
    module, name = found
    if _is_type_helper(module, name):
        return contnode
    value = getattr(module, name, None)
    home = None
    if name in getattr(module, "__all__", ()) and not _is_internal(module.__name__):
        home = _home_of(module.__name__, name)
    elif isinstance(getattr(value, "__module__", None), str):
        public = _public_part(value.__module__)
        if public in API_MODULES and _exports(public, name, value):
            home = public
    if home is not None:
        domain: Any = env.get_domain("py")
        resolved: nodes.reference | None = domain.resolve_xref(
            env,
            node.get("refdoc", ""),
            app.builder,
            node["reftype"],
            f"{home}.{name}",
            node,
            contnode,
        )
        if resolved is not None:
            return resolved
    defined_in = getattr(value, "__module__", None) or module.__name__
    if name.startswith("_") or (isinstance(defined_in, str) and _is_internal(defined_in)):
        return contnode
    return None


# -- Docstrings ---------------------------------------------------------------


def _plain_attribute_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Keep napoleon from reading an attribute's first line as ``type: text``.

    Napoleon takes the text before the first colon of a property, attribute
    or data docstring as its type. Here types come from annotations, never
    from docstrings, so a colon in a summary ("Whether the method is safe
    (read-only): GET, ...", "``host:port``: the target of CONNECT") is prose.
    An empty reST comment as the first line gives napoleon no type to find (a
    blank line would not do: napoleon skips those first); the docstring then
    passes through unchanged, and the comment renders as nothing.
    """
    if what in ("property", "attribute", "data") and lines and ":" in lines[0]:
        lines[0:0] = ["..", ""]


def setup(app: Sphinx) -> dict[str, Any]:
    # Before napoleon, which listens at the default priority of 500.
    app.connect("autodoc-process-docstring", _plain_attribute_docstring, priority=400)
    app.connect("missing-reference", _resolve_own_name)
    app.add_directive("api-module", ApiModuleDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# -- HTML --------------------------------------------------------------------

html_theme = "furo"
html_title = f"hyper for Python {release}"
html_static_path: list[str] = []
html_theme_options = {"navigation_with_keys": True}
