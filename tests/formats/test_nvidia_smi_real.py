"""nvidia-smi --query-gpu CSV logs published by others: values read by hand from each file."""

from __future__ import annotations

from collections import Counter

import pytest

from gpulake import formats
from gpulake.errors import InputRejected
from tests.conftest import real_file
from tests.formats.helpers import parse_file, rows, utc

SMI = "nvidia_smi/"
CAPTURE = "utkuozdemir__nvidia_gpu_exporter__captures__"
VC = "microsoft__VirtualClient__src_VirtualClient_VirtualClient.Monitors.UnitTests_Examples_nvidia-smi_query-gpu-"


def load(name: str, **kwargs: object) -> tuple[list[dict], object]:
    result = parse_file(real_file(SMI + name), **kwargs)
    return rows(result), result


def test_header_repeated_before_every_row() -> None:
    out, result = load("AkshayRoyal__gpu-usage__gpu_usage.csv")
    assert len(out) == 224 and not result.bad_rows
    first = out[0]
    assert utc(first) == "2023-06-22T18:56:56.252Z"
    assert (first["util_pct"], first["fb_used_mib"], first["gpu_model"]) == (22.0, 841.0, "NVIDIA GeForce RTX 2070")
    assert first["extra"]["utilization.memory [%]"] == 6.0
    assert first["labels"]["pci.bus_id"] == "00000000:01:00.0"
    out, _ = load("AkshayRoyal__gpu-usage__gpu_usage1.csv", tz="Asia/Kolkata")
    assert len(out) == 232 and utc(out[0]) == "2023-06-22T13:23:36.635Z"


def test_headerless_log_is_rejected_with_the_fix() -> None:
    path = real_file(SMI + "NormanTUD__OmniOpt__.tests__plot_example_runs_multiple_results_0_gpu_usage__i8035.csv")
    with pytest.raises(InputRejected, match=r"without a header line.*--format=csv") as exc:
        parse_file(path)
    assert exc.value.line == 1


def test_full_text_capture_is_rejected_with_the_fix() -> None:
    path = real_file(SMI + CAPTURE + "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01__FULL_CAPTURE.txt")
    with pytest.raises(InputRejected, match="--query-gpu"):
        formats.detect(path.read_bytes(), path.name)


def test_bare_and_bracketed_na_and_power_fallback() -> None:
    (row,), _ = load(VC + "1xT4-NA.csv")
    assert row["mem_temp_c"] is None  # bare N/A
    assert row["power_w"] == 9.31  # power.draw.average is [N/A]; instant is used
    assert (row["gpu_temp_c"], row["sm_clock_mhz"], row["fb_used_mib"]) == (26.0, 300.0, 100.0)
    assert row["labels"]["pstate"] == "P8"


def test_no_index_column_gpus_told_apart_by_bus_id() -> None:
    out, _ = load(VC + "4xT4.csv")
    assert [r["gpu"] for r in out] == [f"0000000{i}:00:00.0" for i in range(1, 5)]
    assert out[0]["gpu_temp_c"] == 48.0 and out[1]["gpu_temp_c"] == 51.0


def test_padded_h100_fixture_keeps_all_eight_rows() -> None:
    out, _ = load(VC + "8xH100.csv")
    assert sorted(r["gpu"] for r in out) == [str(i) for i in range(8)]
    zero = next(r for r in out if r["gpu"] == "0")
    assert (zero["power_w"], zero["mem_temp_c"], zero["mem_clock_mhz"]) == (70.89, 35.0, 2619.0)
    assert zero["extra"]["power.draw.instant [W]"] == 70.68


def test_no_timestamp_column_uses_object_time() -> None:
    (row,), _ = load("netdata__netdata__src_go_plugin_go.d_modules_nvidia_smi_testdata_tesla-p100.csv")
    assert utc(row) == "2025-11-13T02:13:20.000Z"
    assert row["gpu"] == row["gpu_uuid"] == "GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6"
    assert (row["power_w"], row["gpu_temp_c"], row["mem_clock_mhz"]) == (28.16, 37.0, 715.0)
    assert "fan.speed [%]" not in row["extra"]


def test_full_query_h100_mig_under_load() -> None:
    (row,), _ = load(CAPTURE + "linux-x86_64__nvidia-h100-mig__590.48.01__load_query-gpu.csv")
    assert (row["gpu_temp_c"], row["mem_temp_c"], row["power_w"]) == (53.0, 59.0, 433.78)
    assert (row["sm_clock_mhz"], row["fb_used_mib"], row["throttle_reasons"]) == (1980.0, 11125.0, 0)
    assert row["util_pct"] is None  # [N/A] in MIG mode
    assert row["extra"]["power.limit [W]"] == 700.0
    assert row["extra"]["mig.mode.current"] == 1.0  # Enabled


def test_hex_reason_mask_of_an_idle_power_capped_card() -> None:
    (row,), _ = load(CAPTURE + "linux-x86_64__nvidia-geforce-rtx-2080-super__595.71.05__idle_query-gpu.csv")
    assert row["throttle_reasons"] == 0x4
    assert row["extra"]["clocks_event_reasons.sw_power_cap"] == 1.0
    assert row["extra"]["clocks_event_reasons.supported"] == 0x1FF


@pytest.mark.parametrize(
    "gpu",
    [
        "h100-80gb-hbm3__590.48.01",
        "h200__590.48.01",
        "l40s__595.80",
        "geforce-rtx-4080-super__595.71.05",
        "h200-mig__590.48.01",
    ],
)
def test_every_capture_parses_one_row(gpu: str) -> None:
    for state in ("idle", "load"):
        (row,), result = load(f"{CAPTURE}linux-x86_64__nvidia-{gpu}__{state}_query-gpu.csv")
        assert not result.bad_rows
        assert row["gpu_model"].startswith("NVIDIA") and row["gpu_temp_c"] > 20


def test_windows_captures() -> None:
    for version in ("591.86", "610.62"):
        (idle,), _ = load(f"{CAPTURE}windows-x86_64__nvidia-geforce-rtx-2080-super__{version}__idle_query-gpu.csv")
        assert idle["throttle_reasons"] == 0x1 and idle["labels"]["driver_model.current"] == "WDDM"


def test_high_rate_power_logs() -> None:
    out, _ = load("PranavDani__Flame__nvidia-smi.csv")
    assert len(out) == 73 and out[0]["power_w"] == 22.89 and out[1]["power_w"] == 22.73
    out, _ = load("yqg9651__cuda_test__a100_250w_pcie_fp16_burst__burst_fp16_half_maxpower.csv")
    assert len(out) == 2938 and out[0]["power_w"] == 64.07 and out[1]["extra"]["power.draw.instant [W]"] == 63.40
    assert min(r["sm_clock_mhz"] for r in out) == 1230.0
    out, _ = load("yqg9651__cuda_test__h100_350_pcie_fp8_burst__burst_fp_e4m3_bf16_normal_maxpower__first2000lines.csv")
    assert len(out) == 1999 and max(r["power_w"] for r in out) == 359.59
    assert max(r["extra"]["power.draw.instant [W]"] for r in out) == 391.09


def test_h800_reason_counts() -> None:
    out, _ = load("yqg9651__cuda_test__power_data_h800_700w_sxm_dvfs__random_gemm_bf16.csv")
    assert Counter(r["throttle_reasons"] for r in out) == {0x0: 585, 0x1: 786, 0x4: 147}
    assert out[0]["gpu_uuid"] == "GPU-deb3f1bc-44cc-a622-e825-35a2cfa67c22"
