"""dcgm-exporter scrapes published by others (1.x to 4.x): values read by hand from each file."""

from __future__ import annotations

from tests.conftest import real_file
from tests.formats.helpers import parse_file, rows, utc

DCGM = "dcgm/"


def by_gpu(path: str, **kwargs: object) -> tuple[dict[str, dict], object]:
    result = parse_file(real_file(DCGM + path), **kwargs)
    return {r["gpu"]: r for r in rows(result)}, result


def test_datadog_t4_scrapes_two_drivers_and_unlabelled_dummies() -> None:
    result = parse_file(real_file(DCGM + "DataDog__integrations-core__dcgm_tests_fixtures_metrics.txt"))
    table = {r["node"]: r for r in rows(result)}
    assert set(table) == {"424773df46e0", "551bdf382151", "ip-11111"}
    first = table["424773df46e0"]
    assert (first["gpu"], first["gpu_model"], first["gpu_uuid"]) == (
        "0",
        "Tesla T4",
        "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e",
    )
    assert first["gpu_temp_c"] == 25.0
    assert first["power_w"] == 8.969
    assert (first["sm_clock_mhz"], first["mem_clock_mhz"], first["fb_used_mib"]) == (300.0, 405.0, 0.0)
    assert first["extra"]["DCGM_FI_DEV_FB_FREE"] == 15109.0
    assert first["extra"]["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"] == 128996013.0
    assert first["labels"]["DCGM_FI_DRIVER_VERSION"] == "460.106.00"
    second = table["551bdf382151"]
    assert second["throttle_reasons"] == 1  # CLOCK_THROTTLE_REASONS 1 = GPU idle
    assert second["extra"]["DCGM_FI_DEV_FB_USED_PERCENT"] == 0.000008
    assert second["labels"]["DCGM_FI_DEV_SERIAL"] == "1565220008176"
    a10g = table["ip-11111"]
    assert a10g["gpu_model"] == "NVIDIA A10G"
    assert a10g["labels"]["namespace"] == "ray-llm"
    # the unlabelled dummy samples belong to no GPU: quarantined with a reason, not dropped
    assert len(result.bad_rows) == 14
    assert all("no gpu or UUID label" in b.reason for b in result.bad_rows)
    assert result.bad_rows[0].raw == "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS 0"


def test_h100x8_4x_labels_differ_between_series() -> None:
    gpus, result = by_gpu("NVIDIA__aicr__evidence_accelerator-metrics_md__H100x8_4.x_filtered.prom")
    assert sorted(gpus) == [str(i) for i in range(8)]
    assert not result.bad_rows
    zero, one = gpus["0"], gpus["1"]
    assert zero["node"] == "ip-10-0-171-111.ec2.internal"
    assert zero["gpu_model"] == "NVIDIA H100 80GB HBM3"
    assert (zero["gpu_temp_c"], zero["power_w"], zero["util_pct"]) == (30.0, 113.611, 0.0)
    assert zero["labels"]["pod"].startswith("vllm-agg-0-")
    assert zero["labels"]["pci_bus_id"] == "00000000:53:00.0"
    assert (one["gpu_temp_c"], one["power_w"]) == (29.0, 68.347)
    assert "pod" not in one["labels"]
    # the excerpt is cut off after GPU 5's MEM_COPY_UTIL
    assert "DCGM_FI_DEV_MEM_COPY_UTIL" in gpus["5"]["extra"]
    assert "DCGM_FI_DEV_MEM_COPY_UTIL" not in gpus["6"]["extra"]


def test_a100_mig_rows_are_separate_instances_of_one_gpu() -> None:
    gpus, _ = by_gpu("NVIDIA__cloud-native-docs__gpu-telemetry_dcgm-exporter_rst__A100_MIG_2.x.prom")
    assert sorted(gpus) == ["0", "0/13"]
    whole, mig = gpus["0"], gpus["0/13"]
    assert whole["gpu_uuid"] == mig["gpu_uuid"] == "GPU-34319582-d595-d1c7-d1d2-179bcfa61660"
    assert (whole["gpu_temp_c"], whole["mem_temp_c"], whole["power_w"]) == (61.0, 69.0, 409.692)
    assert (whole["sm_clock_mhz"], whole["fb_used_mib"]) == (1215.0, 4845.0)
    assert mig["labels"]["GPU_I_PROFILE"] == "1g.5gb"
    assert mig["extra"]["DCGM_FI_PROF_DRAM_ACTIVE"] == 0.800339
    assert mig["gpu_temp_c"] is None


def test_quickstart_sentinel_becomes_null_and_time_is_object_time() -> None:
    gpus, _ = by_gpu("NVIDIA__dcgm-exporter__README_quickstart_excerpt.prom", node="from-context")
    row = gpus["0"]
    assert row["mem_temp_c"] is None  # 9223372036854775794 = DCGM_INT64_NOT_SUPPORTED
    assert (row["sm_clock_mhz"], row["mem_clock_mhz"]) == (139.0, 405.0)
    assert row["node"] == "from-context"  # no Hostname label in this scrape
    assert utc(row) == "2025-11-13T02:13:20.000Z"


def test_v1_lowercase_names_and_exponent_floats() -> None:
    gpus, _ = by_gpu("NVIDIA__gpu-monitoring-tools__v1__prometheus-dcgm_README_sample_1.x.prom")
    row = gpus["0"]
    assert row["gpu_uuid"] == "GPU-8f640a3c-7e9a-608d-02a3-f4372d72b323"
    assert (row["gpu_temp_c"], row["power_w"], row["sm_clock_mhz"], row["util_pct"]) == (34.0, 31.737, 135.0, 0.0)
    assert row["extra"]["dcgm_total_energy_consumption"] == 7824041.0


def test_v1_pod_exporter_labels() -> None:
    gpus, _ = by_gpu("NVIDIA__gpu-monitoring-tools__v1__pod-gpu-metrics-exporter_README_sample_1.x.prom")
    assert (gpus["0"]["gpu_temp_c"], gpus["1"]["gpu_temp_c"]) == (33.0, 34.0)
    assert gpus["1"]["mem_clock_mhz"] == 810.0
    assert gpus["0"]["labels"] == {"container_name": "pod1-ctr", "pod_name": "pod1", "pod_namespace": "default"}
    assert gpus["0"]["extra"]["dcgm_low_util_violation"] == 0.0


def test_k80_empty_pod_labels_are_not_kept() -> None:
    gpus, _ = by_gpu("DevSecOpsSamples__eks-gpu-autoscaling__README_md__response_example_K80.prom")
    assert sorted(gpus) == ["0", "1", "2"]
    assert {r["gpu_model"] for r in gpus.values()} == {"Tesla K80"}
    assert gpus["2"]["labels"] == {"device": "nvidia2"}
    assert gpus["0"]["util_pct"] == 0.0
