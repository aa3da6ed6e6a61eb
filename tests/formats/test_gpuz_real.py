"""GPU-Z sensor logs published by others: values read by hand from each file."""

from __future__ import annotations

from collections import Counter

from tests.conftest import real_file
from tests.formats.helpers import parse_file, rows, utc

GPUZ = "gpuz/"


def load(name: str, **kwargs: object) -> tuple[list[dict], object]:
    result = parse_file(real_file(GPUZ + name), **kwargs)
    return rows(result), result


def test_galacticviper_board_power_perfcap_and_local_zone() -> None:
    out, result = load("GalacticViper__ObsidianGitTest__GPU-Z_Sensor_Log__first2000lines.txt", tz="Europe/Berlin")
    assert len(out) == 1999 and not result.bad_rows
    first = out[0]
    assert utc(first) == "2023-06-16T08:17:08.000Z"  # 10:17:08 CEST
    assert (first["sm_clock_mhz"], first["mem_clock_mhz"], first["gpu_temp_c"]) == (1995.0, 1767.5, 63.0)
    assert (first["power_w"], first["util_pct"], first["fb_used_mib"]) == (224.3, 99.0, 7469.0)
    assert first["throttle_reasons"] == 0x1  # PerfCap 16 (Util) -> NVML GpuIdle
    assert first["extra"]["Hot Spot [°C]"] == 76.4
    assert first["extra"]["GPU Chip Power Draw [W]"] == 178.6
    assert first["extra"]["PerfCap Reason []"] == 16.0
    assert (first["node"], first["gpu"], first["source"]) == ("node-x", "0", "gpuz")


def test_amd_log_with_twelve_headers_and_duplicate_columns() -> None:
    out, result = load("MateusRodriguesCosta__AMDdebug__GPU-Z_Sensor_Log.txt")
    assert len(out) == 1673 and not result.bad_rows
    first = out[0]
    assert utc(first) == "2020-03-16T17:13:05.000Z"
    assert first["extra"]["UVD Clock [MHz]"] == 105.0
    assert first["extra"]["UVD Clock [MHz] #2"] == 102.0
    assert first["power_w"] == 8.0  # only GPU Chip Power Draw exists on this card
    assert first["fb_used_mib"] == 534.0
    assert first["throttle_reasons"] is None  # no PerfCap column on AMD
    assert utc(out[-1]).startswith("2020-03-18")


def test_bm1_throttling_bits_counted_across_the_log() -> None:
    out, _ = load("T2xic__GPU-Z-grapher__GPU-Z_Sensor_Log_bm1.txt")
    counts = Counter(r["throttle_reasons"] for r in out)
    assert counts == {0x1: 922, 0x4: 158, 0x20: 87, 0x24: 13, 0: 2}


def test_nul_padded_log_with_header_glued_to_first_row() -> None:
    out, result = load("rleaderjoon__GPU_DashBoard__GPU-Z_Sensor_Log.txt")
    assert len(out) == 47 and not result.bad_rows
    first = out[0]
    assert utc(first) == "2024-04-11T14:43:15.000Z"
    assert (first["gpu_temp_c"], first["power_w"], first["sm_clock_mhz"]) == (47.0, 0.0, 99.8)
    assert "GPU Voltage [V]" not in first["extra"]  # '-' on every row: no reading, not zero


def test_utf8_degree_sign_and_board_power_preferred() -> None:
    (row,), _ = load("az3__gpuz-exporter__README_md__head-2_gpuz_txt.txt")
    assert (row["gpu_temp_c"], row["mem_temp_c"], row["power_w"]) == (48.7, 58.0, 114.3)
    assert row["extra"]["GPU Chip Power Draw [W]"] == 28.2
    assert row["extra"]["Hot Spot [°C]"] == 64.1


def test_old_header_names_lf_only() -> None:
    out, _ = load("sabbir360__GpuCheckForOpenHWMonitor__GPU-Z_Sensor_Log.txt")
    assert [r["gpu_temp_c"] for r in out] == [50.0, 51.0, 50.0]
    assert (out[0]["sm_clock_mhz"], out[0]["mem_clock_mhz"], out[0]["fb_used_mib"]) == (300.0, 933.3, 213.0)
    out, _ = load("Turgon-Aran-Gondolin__Documents__GPU-Z_Sensor_Log__first2000lines.txt")
    assert len(out) == 1999
    assert {r["throttle_reasons"] for r in out} == {0, 0x1, 0x4}
    assert out[0]["extra"]["VDDC [V]"] == 0.781


def test_power_capped_card_and_small_log() -> None:
    out, _ = load("richardtokar__python_work__GPU-Z_Sensor_Log.txt")
    assert len(out) == 356 and {r["throttle_reasons"] for r in out} == {0x4}
    assert out[0]["sm_clock_mhz"] == 2490.0
    out, _ = load("gokayge__First__GPU-Z_Sensor_Log.txt")
    assert len(out) == 9 and out[0]["gpu_temp_c"] == 67.0
    out, _ = load("T2xic__GPU-Z-grapher__GPU-Z_Sensor_Log_bm4.txt")
    assert len(out) == 1029 and {r["throttle_reasons"] for r in out} == {0x1, 0x4}
