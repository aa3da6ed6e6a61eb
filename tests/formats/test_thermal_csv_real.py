"""Thermal CSVs published by others (both variants, with and without avg_temp)."""

from __future__ import annotations

from tests.conftest import real_file
from tests.formats.helpers import parse_file, rows, utc


def test_thermally_failed_rows() -> None:
    out = rows(parse_file(real_file("thermal_csv/tyee-ai__gpu_thermal__deploy_sh_heredoc__sample_thermal_failed.csv")))
    assert [(r["node"], r["gpu"], r["gpu_temp_c"]) for r in out] == [("10.4.21.8", "28", t) for t in (44.0, 45.0, 45.0)]
    assert utc(out[0]) == "2025-03-17T00:00:00.000Z"
    assert out[0]["extra"] == {"avg_temp": 28.08, "thermal_failed": 1.0}
    assert out[0]["labels"] == {"date": "2025-03-17", "gpu_id": "GPU_28", "reason": "Thermally Failed"}
    assert out[0]["throttle_reasons"] is None


def test_throttled_rows_without_avg_temp() -> None:
    out = rows(parse_file(real_file("thermal_csv/tyee-ai__gpu_thermal__deploy_sh_heredoc__sample_throttled.csv")))
    got = sorted((r["node"], r["gpu"], r["gpu_temp_c"], r["throttle_reasons"]) for r in out)
    assert got == [
        ("10.4.21.62", "22", 91.31, 0x20),
        ("10.4.21.8", "28", 86.24, 0x20),
        ("10.4.21.8", "28", 91.23, 0x20),
    ]
    assert all("avg_temp" not in r["extra"] for r in out)
