"""pytest setup for hyper-util: the helper modules' folder on ``sys.path``.

What belongs here: nothing but that; the ASGI test helpers live in
``asgi_helpers.py``, the test applications in ``asgi_apps.py``, and the
httpx transport tests share ``httpx_helpers.py`` (pytest's importlib mode
does not put test folders on ``sys.path``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
