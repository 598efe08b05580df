"""pytest setup for hyper-util: the helper modules' folder on ``sys.path``.

pytest's importlib mode does not put test folders on ``sys.path``; the
httpx transport tests share ``httpx_helpers.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
