"""pytest setup for hyper-tls: the helper module's folder and the session certificates.

What belongs here: fixtures only; helpers live in ``tls_helpers.py``.
Strategy: trustme makes the CA and leaf once per session (key generation is
the slow part).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tls_helpers import CertFiles, make_certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))
