"""setuptools entry point: what to build comes from the backend in ``_build/hyper_build.py``."""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).absolute().parent / "_build"))

import hyper_build

setup(**hyper_build.setup_arguments())
