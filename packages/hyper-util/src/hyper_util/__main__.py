"""``python -m hyper_util``: the command line (see :mod:`hyper_util.cli`)."""

from __future__ import annotations

import sys

from hyper_util.cli import main

if __name__ == "__main__":
    sys.exit(main())
