#!/usr/bin/env python3
"""gpulake's command line from a checkout: ``python automated_pipeline.py --help``.

The implementation is the installed ``gpulake_cli`` package (``make install`` or
``pip install '.[cli]'``), the same code as the ``gpulake`` console script.
"""

from __future__ import annotations

import sys

try:
    from gpulake_cli.main import main
except ModuleNotFoundError as exc:  # run from a checkout that was never installed
    sys.exit(f"error: {exc.name} is not installed; run `make install` (or `pip install '.[cli]'`) first")

if __name__ == "__main__":
    sys.exit(main())
