"""Importing the handlers never imports pandas, even where pandas is installed (pyarrow would, on any pa.array)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed here")
def test_handlers_import_without_pandas() -> None:
    code = (
        "import sys, gpulake.handlers.ingest, loaders.handler, gpulake.formats; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas' or m == 'pyarrow.pandas_compat'))"
    )
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'lambda'}:{ROOT}", "GPULAKE_PROCESSED_BUCKET": "import-test"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    assert run.stdout.strip() == "[]"
