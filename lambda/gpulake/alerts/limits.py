"""Per-GPU temperature limits: what the GPU reports, else the model table, else the configured default.

Reported (``threshold_source = "reported"``), from ``extra``:

- DCGM 158 ``DCGM_FI_DEV_SLOWDOWN_TEMP`` and 159 ``DCGM_FI_DEV_SHUTDOWN_TEMP`` (DCGM 4.6 names
  ``DCGM_FI_DEV_GPU_TEMP_{SLOWDOWN,SHUTDOWN}_CELSIUS``); 152 ``DCGM_FI_DEV_GPU_MAX_OP_TEMP`` and
  151 ``DCGM_FI_DEV_MEM_MAX_OP_TEMP`` (``..._CELSIUS``); ids from dcgm_fields.h, see
  ``shared/fixtures/real/dcgm/counters/DERIVED__NVIDIA__DCGM__dcgm_fields_h__field_ids.csv``.
- DCGM 153 ``DCGM_FI_DEV_GPU_TEMP_LIMIT`` (``DCGM_FI_DEV_GPU_TEMP_MARGIN_CELSIUS``) and nvidia-smi
  ``temperature.gpu.tlimit``: a *margin* to the nearest slowdown threshold, so the slowdown
  temperature is ``temperature + margin`` (an H100 capture of nvidia_gpu_exporter, driver 590.48.01,
  reads 59 °C with tlimit 26).

NVML's thresholds (nvmlTemperatureThresholds_t): SHUTDOWN = hardware protection, SLOWDOWN =
hardware slowdown begins, GPU_MAX = may throttle below base clock, MEM_MAX = memory software slowdown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLOWDOWN_KEYS = ("DCGM_FI_DEV_SLOWDOWN_TEMP", "DCGM_FI_DEV_GPU_TEMP_SLOWDOWN_CELSIUS")
SHUTDOWN_KEYS = ("DCGM_FI_DEV_SHUTDOWN_TEMP", "DCGM_FI_DEV_GPU_TEMP_SHUTDOWN_CELSIUS")
GPU_MAX_OP_KEYS = ("DCGM_FI_DEV_GPU_MAX_OP_TEMP", "DCGM_FI_DEV_GPU_MAX_OP_TEMP_CELSIUS")
MEM_MAX_OP_KEYS = ("DCGM_FI_DEV_MEM_MAX_OP_TEMP", "DCGM_FI_DEV_MEMORY_MAX_OP_TEMP_CELSIUS")
MARGIN_KEYS = ("DCGM_FI_DEV_GPU_TEMP_LIMIT", "DCGM_FI_DEV_GPU_TEMP_MARGIN_CELSIUS", "temperature.gpu.tlimit")

#: (model substring, slowdown °C, shutdown °C, HBM max operating °C, source); first match wins.
#: Only numbers read from a source are listed; other models (B200, GB200, H20, L40S, L4, A10 ...)
#: report their limits (DCGM 158/159, tlimit on drivers >= 550) or use the configured default.
MODEL_LIMITS = (
    # nvidia-smi -q of an NVIDIA A100-SXM4-80GB, driver 525.60.13 (a public debugging write-up on GitHub):
    # GPU Shutdown Temp 92 C, GPU Slowdown Temp 89 C, GPU Max Operating Temp 85 C, Memory Max Operating Temp 95 C.
    ("A100", 89.0, 92.0, 95.0, "nvidia-smi -q, A100-SXM4-80GB, driver 525.60.13"),
    # NVIDIA H100 PCIe product brief (as quoted in a public H100 thermal write-up): max operating 87 °C,
    # slowdown 89 °C, shutdown 92 °C, HBM 95 °C. H100 SXM parts report theirs (tlimit), which wins.
    ("H100", 89.0, 92.0, 95.0, "NVIDIA H100 PCIe product brief"),
)


@dataclass(frozen=True)
class Limits:
    slowdown_c: float
    shutdown_c: float
    mem_max_c: float
    source: str  # reported | model | default
    mem_source: str


def _last(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


def model_row(model: str) -> tuple[str, float, float, float, str] | None:
    """The model table's row for a GPU model name (first substring match), or None."""
    return next((r for r in MODEL_LIMITS if r[0] in model), None)


def resolve(
    model: str,
    temp: np.ndarray,
    reported: dict[str, np.ndarray],
    default_slowdown_c: float,
    default_mem_c: float,
    shutdown_gap_c: float = 3.0,
) -> Limits:
    """The GPU's limits; ``reported`` maps each key group name to per-sample values (NaN where absent)."""
    slowdown, shutdown = _last(reported.get("slowdown")), _last(reported.get("shutdown"))
    margin = reported.get("margin")
    if slowdown is None and margin is not None:
        derived = (temp + margin)[np.isfinite(temp + margin)]
        slowdown = float(np.median(derived)) if derived.size else None
    mem = _last(reported.get("mem_max"))
    row = model_row(model)
    if slowdown is not None:
        source = "reported"
        shutdown = shutdown if shutdown is not None else slowdown + shutdown_gap_c
    elif row is not None:
        slowdown, shutdown, source = row[1], row[2], "model"
    else:
        slowdown, shutdown, source = default_slowdown_c, default_slowdown_c + shutdown_gap_c, "default"
    if mem is not None:
        mem_source = "reported"
    elif row is not None:
        mem, mem_source = row[3], "model"
    else:
        mem, mem_source = default_mem_c, "default"
    return Limits(slowdown, float(shutdown), mem, source, mem_source)
