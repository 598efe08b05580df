"""pytest setup for hyper-util: the helper modules' folder on ``sys.path``.

What belongs here: nothing but that; the ASGI test helpers live in
``asgi_helpers.py`` and the test applications in ``asgi_apps.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
