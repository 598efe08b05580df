"""What each distribution tells an installer: metadata, license, dependencies.

Each of the three distributions is built (wheel and sdist, with ``uv build``,
as a release would be) and its metadata checked: a summary, the MIT license
expression with the LICENSE file inside both archives (the same text as the
repository's), Python 3.11 to 3.14 in the classifiers (every classifier a
real one), the project URLs, and a ``Requires-Dist`` for every third-party
module its source imports. The interpreters the classifiers name are run by
``nox -s pythons`` wherever they are installed.
"""

from __future__ import annotations

import ast
import email.message
import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from trove_classifiers import classifiers as KNOWN_CLASSIFIERS

ROOT = Path(__file__).parent.parent
DISTRIBUTIONS = ["hyper-core", "hyper-util", "hyper-tls"]
PYTHONS = ["3.11", "3.12", "3.13", "3.14"]
URLS = {"Homepage", "Documentation", "Repository", "Issues", "Changelog"}
#: Modules a distribution imports only if they are installed, and why.
OPTIONAL_IMPORTS = {
    # The command line's HTTPS; without it, one line says what to install
    # (tests/isolated_cli.py, run by `nox -s isolated`).
    "hyper-util": {"hyper_tls"},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    assert uv is not None, "uv is required to build the distributions (pip install uv)"
    out = tmp_path_factory.mktemp("dist")
    # Pure Python: what is checked here (metadata, files, imports) is the
    # same in the compiled build, and compiling (tens of seconds, in every
    # test worker that runs this module) would be timed as this test's setup.
    env = {**os.environ, "HYPER_COMPILE": "0"}
    for name in DISTRIBUTIONS:
        subprocess.run(
            [uv, "build", "--quiet", "--package", name, "--out-dir", str(out)],
            cwd=ROOT,
            check=True,
            timeout=300,
            env=env,
        )
    return out


def archives(dist: Path, name: str) -> tuple[Path, Path]:
    stem = name.replace("-", "_")
    (wheel,) = dist.glob(f"{stem}-*.whl")
    (sdist,) = dist.glob(f"{stem}-*.tar.gz")
    return wheel, sdist


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(path).decode())


def imported_top_level(name: str) -> set[str]:
    """Third-party top-level modules the distribution's source imports, anywhere."""
    found: set[str] = set()
    for path in (ROOT / "packages" / name / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {name.replace("-", "_")}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_metadata_is_complete(built: Path, name: str) -> None:
    meta = wheel_metadata(archives(built, name)[0])
    assert meta["Name"] == name
    assert meta["Summary"]
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Description-Content-Type"] == "text/markdown"
    classifiers = meta.get_all("Classifier") or []
    unknown = set(classifiers) - KNOWN_CLASSIFIERS
    assert not unknown, unknown
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639: expression only"
    for version in PYTHONS:
        assert f"Programming Language :: Python :: {version}" in classifiers
    urls = {entry.partition(",")[0] for entry in meta.get_all("Project-URL") or []}
    assert urls == URLS


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_license_file_ships_in_the_wheel_and_the_sdist(built: Path, name: str) -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert (ROOT / "packages" / name / "LICENSE").read_text() == text
    wheel, sdist = archives(built, name)
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(path).decode() == text
    with tarfile.open(sdist) as archive:
        (member,) = [m for m in archive.getmembers() if m.name.endswith("/LICENSE")]
        handle = archive.extractfile(member)
        assert handle is not None
        assert handle.read().decode() == text


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_every_imported_module_is_a_declared_dependency(built: Path, name: str) -> None:
    meta = wheel_metadata(archives(built, name)[0])
    requirements = [Requirement(line) for line in meta.get_all("Requires-Dist") or []]
    # Unconditional ones; an extra's (``Requires-Dist: x; extra == "reload"``)
    # may be imported too, where the code guards the import.
    declared = {canonicalize_name(r.name) for r in requirements if r.marker is None}
    extras = {canonicalize_name(r.name) for r in requirements if r.marker is not None}
    imported = imported_top_level(name) - OPTIONAL_IMPORTS.get(name, set())
    # Import names are the distribution names here (hyper_core is hyper-core).
    missing = {m for m in imported if canonicalize_name(m) not in declared | extras}
    assert not missing, f"{name} imports undeclared {missing}"
    unused = {d for d in declared if d.replace("-", "_") not in imported}
    assert not unused, f"{name} declares dependencies it never imports: {unused}"
