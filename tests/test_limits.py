"""Per-GPU temperature limits: model-name matching, the model table, GPU max operating and T.Limit."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gpulake import formats, schema
from gpulake.alerts import AlertConfig, detect
from gpulake.alerts.limits import model_row
from gpulake.alerts.rules import _gpus
from gpulake.context import SourceContext
from tests.conftest import real_file
from tests.test_alerts import T0, table


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA A100 80GB PCIe", "A100"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA A10", "A10"),  # A10 is inside A100 and A10G
        ("NVIDIA A40", "A40"),
        ("NVIDIA RTX A4000", None),  # A40 is inside A4000
        ("NVIDIA A30", None),
        ("Tesla V100-SXM2-16GB", "V100"),
        ("Tesla V100-PCIE-32GB", "V100"),
        ("Tesla V100S-PCIE-32GB", None),  # V100 is inside V100S, which has no sourced row
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA-H100-80GB-HBM3", "H100"),
        ("NVIDIA H100 NVL", "H100"),
        ("NVIDIA H800", "H800"),
        ("NVIDIA H20", None),  # H20 is inside H200
        ("NVIDIA H200", None),
        ("NVIDIA L4", None),  # L4 is inside L40S
        ("NVIDIA L40S", None),
        ("NVIDIA L40", None),
        ("NVIDIA B200", None),  # B200 is inside GB200
        ("NVIDIA GB200", None),
        ("Tesla T4", "T4"),
        ("NVIDIA GeForce RTX 4090", None),
        ("", None),
    ],
)
def test_model_names_match_whole_tokens(name: str, row: str | None) -> None:
    found = model_row(name)
    assert (found.model if found else None) == row


def _dcgm(model: str, fields: dict[str, float]) -> bytes:
    labels = f'gpu="0",UUID="GPU-1",modelName="{model}",Hostname="n1"'
    lines = [f"# gpulake-scrape {T0}"] + [f"{name}{{{labels}}} {value}" for name, value in fields.items()]
    return ("\n".join(lines) + "\n").encode()


def _alerts(fmt: str, data: bytes) -> list[dict]:
    parsed = formats.get(fmt).parse(data, SourceContext(key="x", object_time_ms=0))
    return detect(pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA))


def test_a_scrape_without_reported_limits_uses_the_model_table() -> None:
    # GIVEN an H800 scrape with no limit fields, 84 °C: within 5 °C of its 87 °C max operating (table row)
    (alert,) = _alerts("dcgm", _dcgm("NVIDIA H800", {"DCGM_FI_DEV_GPU_TEMP": 84}))
    # THEN the alert names the model table and the limit it used
    assert (alert["threshold"], alert["threshold_source"], alert["threshold_limit"]) == (87.0, "model", "gpu_max_op")
    assert "limit 87, GPU max operating temperature" in alert["message"]


@pytest.mark.parametrize(
    ("model", "max_op", "shutdown"),
    [("NVIDIA A10", 91.0, 101.0), ("NVIDIA A40", 88.0, 98.0), ("Tesla V100-SXM2-16GB", 83.0, 90.0)],
)
def test_absolute_rows_reach_the_alert(model: str, max_op: float, shutdown: float) -> None:
    # GIVEN scrapes with no limit fields: 2 °C under the row's max operating, then 1 °C under its shutdown
    (warn,) = _alerts("dcgm", _dcgm(model, {"DCGM_FI_DEV_GPU_TEMP": max_op - 2}))
    (crit,) = _alerts("dcgm", _dcgm(model, {"DCGM_FI_DEV_GPU_TEMP": shutdown - 1}))
    # THEN both name the row's max operating temperature from the model table; only the second is critical
    assert (warn["threshold"], warn["threshold_source"], warn["threshold_limit"], warn["severity"]) == (
        max_op,
        "model",
        "gpu_max_op",
        "warning",
    )
    assert (crit["threshold"], crit["threshold_source"], crit["severity"]) == (max_op, "model", "critical")
    # 1 °C under the shutdown margin is still a warning (the default's 88 °C shutdown would make it critical)
    (below,) = _alerts("dcgm", _dcgm(model, {"DCGM_FI_DEV_GPU_TEMP": shutdown - 3}))
    assert below["severity"] == "warning"


def test_a10_at_85_is_under_its_max_operating_window() -> None:
    # 85 °C is 6 °C under the A10's 91 °C max operating: no alert (the 85 °C default would warn)
    assert _alerts("dcgm", _dcgm("NVIDIA A10", {"DCGM_FI_DEV_GPU_TEMP": 85})) == []


def test_v100_hbm_uses_the_rows_memory_max_operating() -> None:
    # GIVEN a V100 scrape, GPU cool, HBM at 88 °C: over the row's 85 °C memory max operating (default 95)
    fields = {"DCGM_FI_DEV_GPU_TEMP": 40, "DCGM_FI_DEV_MEMORY_TEMP": 88}
    (hbm,) = _alerts("dcgm", _dcgm("Tesla V100-SXM2-16GB", fields))
    assert (hbm["metric"], hbm["threshold"], hbm["threshold_source"], hbm["threshold_limit"]) == (
        "mem_temp_c",
        85.0,
        "model",
        "mem_max_op",
    )


def test_a_b200_without_reported_limits_uses_the_default() -> None:
    # no B200 capture or brief with thresholds was found (T.Limit captures give none, see limits.py),
    # so the table has no row: the configured default
    (alert,) = _alerts("dcgm", _dcgm("NVIDIA B200", {"DCGM_FI_DEV_GPU_TEMP": 84}))
    assert (alert["threshold"], alert["threshold_source"], alert["threshold_limit"]) == (85.0, "default", "slowdown")


def test_field_152_gpu_max_operating_warns_before_slowdown() -> None:
    # GIVEN a B200 reporting slowdown 95 / shutdown 100 (158/159) and GPU max operating 88 (152), at 86 °C
    fields = {
        "DCGM_FI_DEV_GPU_TEMP": 86,
        "DCGM_FI_DEV_SLOWDOWN_TEMP": 95,
        "DCGM_FI_DEV_SHUTDOWN_TEMP": 100,
        "DCGM_FI_DEV_GPU_MAX_OP_TEMP": 88,
    }
    (alert,) = _alerts("dcgm", _dcgm("NVIDIA B200", fields))
    # THEN the warning is within 5 °C of 88 (not of 95) and says which limit that is
    assert (alert["threshold"], alert["threshold_source"], alert["threshold_limit"]) == (88.0, "reported", "gpu_max_op")
    assert alert["severity"] == "warning"
    # without 152 the same scrape is 9 °C under slowdown: no alert
    del fields["DCGM_FI_DEV_GPU_MAX_OP_TEMP"]
    assert _alerts("dcgm", _dcgm("NVIDIA B200", fields)) == []
    # a max operating above slowdown does not move the warning: slowdown comes first
    hot = {**fields, "DCGM_FI_DEV_GPU_TEMP": 91, "DCGM_FI_DEV_GPU_MAX_OP_TEMP": 97}
    (late,) = _alerts("dcgm", _dcgm("NVIDIA B200", hot))
    assert (late["threshold"], late["threshold_limit"]) == (95.0, "slowdown")


def test_tlimit_margin_is_the_max_operating_point_with_slowdown_and_shutdown_above_it() -> None:
    # 80 °C with 4 °C of T.Limit left: max operating 84, slowdown 86 (-2 C), shutdown 89 (-5 C), critical from 87
    tlimit = {"temperature.gpu.tlimit": 4.0}
    (warn,) = detect(table([{"t": 0, "temp": 80}], "NVIDIA B200", tlimit))
    assert (warn["threshold"], warn["threshold_limit"], warn["severity"]) == (84.0, "tlimit", "warning")
    (crit,) = detect(table([{"t": 0, "temp": 87}], "NVIDIA B200", {"temperature.gpu.tlimit": -3.0}))
    assert (crit["threshold"], crit["severity"]) == (84.0, "critical")


def test_a_real_t4_log_without_limit_columns_uses_the_model_table() -> None:
    # GIVEN the real VirtualClient nvidia-smi log of 4 Tesla T4 (no tlimit column)
    path = real_file(
        "nvidia_smi/microsoft__VirtualClient__src_VirtualClient_VirtualClient.Monitors."
        "UnitTests_Examples_nvidia-smi_query-gpu-4xT4.csv"
    )
    parsed = formats.get("nvidia-smi").parse(path.read_bytes(), SourceContext(key="x", object_time_ms=0))
    gpus = _gpus(pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA))
    limits = {(g.limits(AlertConfig()).warn_c, g.limits(AlertConfig()).source) for g in gpus}
    # THEN every GPU has the T4 row's max operating temperature (85 °C), from the model table
    assert len(gpus) == 4 and limits == {(85.0, "model")}
