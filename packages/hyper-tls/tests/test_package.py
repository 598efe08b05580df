"""hyper-tls as a distribution: its version and what it builds on.

The TLS connector and acceptor arrive with their own issue; until then these
pin the packaging facts that hyper-tls users and the other packages rely on.
"""

from __future__ import annotations

import importlib.metadata

from packaging.requirements import Requirement

import hyper_tls


def test_version_matches_the_distribution() -> None:
    assert hyper_tls.__version__ == importlib.metadata.version("hyper-tls")


def test_depends_on_hyper_util_and_the_os_trust_store() -> None:
    requires = {Requirement(line).name for line in importlib.metadata.requires("hyper-tls") or []}
    assert {"hyper-util", "truststore", "certifi"} <= requires
