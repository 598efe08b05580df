"""pytest setup for hyper-util: the helper modules' folder on ``sys.path``.

What belongs here: nothing but that (pytest's importlib mode does not put
test folders on ``sys.path``). The ASGI test helpers live in
``asgi_helpers.py``, the test applications in ``asgi_apps.py``, the httpx
transport tests share ``httpx_helpers.py``, and the WebSocket client tests
``ws_helpers.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
