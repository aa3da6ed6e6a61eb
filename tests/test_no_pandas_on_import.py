"""Importing the handlers never imports pandas, even where pandas is installed (pyarrow would, on any pa.array)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import real_file

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


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed here")
def test_processing_a_dcgm_file_never_imports_pandas(tmp_path: Path) -> None:
    # GIVEN an interpreter where pandas is installed, and a real dcgm-exporter scrape
    scrape = real_file("dcgm/NVIDIA__aicr__evidence_accelerator-metrics_md__H100x8_4.x_filtered.prom")
    code = (
        "import sys; from pathlib import Path; from gpulake.local import LocalOptions, process_file; "
        f"r = process_file(Path({str(scrape)!r}), Path({str(tmp_path)!r}), LocalOptions()); "
        "assert r.rows and not r.failed, r; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas' or m == 'pyarrow.pandas_compat'))"
    )
    env = os.environ | {"PYTHONPATH": f"{ROOT / 'lambda'}:{ROOT}"}
    # WHEN a whole `process` of it runs (parse, alerts, episodes, Parquet)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    # THEN pandas was never imported (pyarrow asks for it on its first pa.array of a list or numpy array)
    assert run.stdout.strip() == "[]"
