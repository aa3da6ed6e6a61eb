"""Per-GPU temperature limits: what the GPU reports, else the model table, else the configured default.

Reported (``threshold_source = "reported"``), from ``extra``:

- DCGM 158 ``DCGM_FI_DEV_SLOWDOWN_TEMP`` and 159 ``DCGM_FI_DEV_SHUTDOWN_TEMP`` (DCGM 4.6 names
  ``DCGM_FI_DEV_GPU_TEMP_{SLOWDOWN,SHUTDOWN}_CELSIUS``); 152 ``DCGM_FI_DEV_GPU_MAX_OP_TEMP`` and
  151 ``DCGM_FI_DEV_MEM_MAX_OP_TEMP`` (``..._CELSIUS``); ids from dcgm_fields.h, see
  ``shared/fixtures/real/dcgm/counters/DERIVED__NVIDIA__DCGM__dcgm_fields_h__field_ids.csv``.
- DCGM 153 ``DCGM_FI_DEV_GPU_TEMP_LIMIT`` (``DCGM_FI_DEV_GPU_TEMP_MARGIN_CELSIUS``) and nvidia-smi
  ``temperature.gpu.tlimit``: a *margin* (NVML: to the nearest slowdown threshold), so that threshold
  is ``temperature + margin``. ``nvidia-smi -q`` on drivers >= 550 prints the thresholds on that scale:
  "GPU Max Operating T.Limit Temp: 0 C", "GPU Slowdown T.Limit Temp: -2 C", "GPU Shutdown T.Limit
  Temp: -5 C" (L4 550.90.07, L40S 595.80) or -8 C (H100 590.48.01, H200 580.173.02; nvidia_gpu_exporter
  captures). So the margin points at the GPU max operating temperature, slowdown is 2 °C above it and
  shutdown at least 5 °C above it. nvidia-smi has no query-gpu column for the thresholds themselves:
  ``--help-query-gpu`` (590.48.01, 595.80) lists only ``temperature.gpu``, ``temperature.gpu.tlimit``
  and ``temperature.memory``.

NVML's thresholds (nvmlTemperatureThresholds_t): SHUTDOWN = hardware protection, SLOWDOWN =
hardware slowdown begins, GPU_MAX = may throttle below base clock, MEM_MAX = memory software slowdown.
``over_temperature`` warns near the first of them the GPU reaches, :attr:`Limits.warn_c` =
min(slowdown, GPU max operating), and names it (:attr:`Limits.warn_limit`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

SLOWDOWN_KEYS = ("DCGM_FI_DEV_SLOWDOWN_TEMP", "DCGM_FI_DEV_GPU_TEMP_SLOWDOWN_CELSIUS")
SHUTDOWN_KEYS = ("DCGM_FI_DEV_SHUTDOWN_TEMP", "DCGM_FI_DEV_GPU_TEMP_SHUTDOWN_CELSIUS")
GPU_MAX_OP_KEYS = ("DCGM_FI_DEV_GPU_MAX_OP_TEMP", "DCGM_FI_DEV_GPU_MAX_OP_TEMP_CELSIUS")
MEM_MAX_OP_KEYS = ("DCGM_FI_DEV_MEM_MAX_OP_TEMP", "DCGM_FI_DEV_MEMORY_MAX_OP_TEMP_CELSIUS")
MARGIN_KEYS = ("DCGM_FI_DEV_GPU_TEMP_LIMIT", "DCGM_FI_DEV_GPU_TEMP_MARGIN_CELSIUS", "temperature.gpu.tlimit")
#: Slowdown above the max operating temperature, and shutdown above slowdown, when only one is known:
#: "GPU Slowdown T.Limit Temp: -2 C" in every T.Limit capture above; shutdown 3 °C over slowdown in
#: every absolute capture in the model table (A100 89/92, H800 89/92, A10G 95/98, T4 93/96).
SLOWDOWN_OVER_MAX_OP_C = 2.0
SHUTDOWN_OVER_SLOWDOWN_C = 3.0
#: What :attr:`Limits.warn_limit` names, for messages.
LIMIT_NAMES = {
    "slowdown": "slowdown temperature",
    "gpu_max_op": "GPU max operating temperature",
    "tlimit": "T.Limit margin (GPU max operating temperature)",
    "mem_max_op": "memory max operating temperature",
}


class ModelLimits(NamedTuple):
    """One row of the model table: a model token and its limits (°C; None where the source has none)."""

    model: str
    slowdown_c: float
    shutdown_c: float
    gpu_max_c: float | None
    mem_max_c: float | None
    source: str


#: Matched by whole token of the model name (``NVIDIA A100-SXM4-80GB`` -> A100, SXM4, 80GB), so A10
#: never matches A100/A10G, L4 never L40S, H20 never H200, B200 never GB200. Only numbers read from a
#: source are listed. Not found (they use what they report, else the default): B200 and GB200 (no
#: published absolute thresholds; drivers >= 550 print T.Limit offsets only), H20, A10 (only A10G
#: found), and L4, L40S, H200 (captures print T.Limit offsets only, which these GPUs report as a margin).
MODEL_LIMITS = (
    # nvidia-smi -q of an NVIDIA A100-SXM4-80GB, driver 525.60.13 (a public debugging write-up on GitHub):
    # GPU Shutdown Temp 92 C, GPU Slowdown Temp 89 C, GPU Max Operating Temp 85 C, Memory Max Operating Temp 95 C.
    ModelLimits("A100", 89.0, 92.0, 85.0, 95.0, "nvidia-smi -q, A100-SXM4-80GB, driver 525.60.13"),
    # NVIDIA H100 PCIe product brief (as quoted in a public H100 thermal write-up): max operating 87 °C,
    # slowdown 89 °C, shutdown 92 °C, HBM 95 °C. H100 SXM parts report theirs (tlimit), which wins.
    ModelLimits("H100", 89.0, 92.0, 87.0, 95.0, "NVIDIA H100 PCIe product brief"),
    # nvidia-smi -q of an NVIDIA H800 (700 W), driver 525.105.17 (liguodongiot/llm-action,
    # docs/llm-base/nvidia-smi.md): Shutdown 92 C, Slowdown 89 C, Max Operating 87 C, Memory Max Operating 95 C.
    ModelLimits("H800", 89.0, 92.0, 87.0, 95.0, "nvidia-smi -q, H800, driver 525.105.17"),
    # nvidia-smi -q of an NVIDIA A10G (AWS), driver 535.247.01, posted in a public GitHub issue thread
    # (May 2025): Shutdown 98 C, Slowdown 95 C, Max Operating 88 C, Memory Max Operating N/A (GDDR6).
    ModelLimits("A10G", 95.0, 98.0, 88.0, None, "nvidia-smi -q, A10G, driver 535.247.01"),
    # nvidia-smi -q of a Tesla T4, driver 530.30.02 (a public nvidia-smi notes file on GitHub, July 2023):
    # Shutdown 96 C, Slowdown 93 C, Max Operating 85 C, Memory Max Operating N/A.
    ModelLimits("T4", 93.0, 96.0, 85.0, None, "nvidia-smi -q, Tesla T4, driver 530.30.02"),
)


@dataclass(frozen=True)
class Limits:
    """One GPU's limits (°C) and where they came from (reported | model | default)."""

    slowdown_c: float
    shutdown_c: float
    mem_max_c: float
    source: str
    mem_source: str
    gpu_max_c: float | None = None
    #: How the max operating temperature is known: ``gpu_max_op`` (a value) or ``tlimit`` (a margin).
    gpu_max_kind: str = "gpu_max_op"

    @property
    def warn_c(self) -> float:
        """The first temperature at which the GPU slows itself down: min(slowdown, GPU max operating)."""
        return self.slowdown_c if self.gpu_max_c is None else min(self.slowdown_c, self.gpu_max_c)

    @property
    def warn_limit(self) -> str:
        """Which limit :attr:`warn_c` is (a key of :data:`LIMIT_NAMES`)."""
        return "slowdown" if self.gpu_max_c is None or self.slowdown_c < self.gpu_max_c else self.gpu_max_kind


def _last(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


@functools.lru_cache(maxsize=1024)  # asked per GPU of every object; a fleet has a handful of model names
def model_row(model: str) -> ModelLimits | None:
    """The model table's row whose model token is one of the name's tokens, or None."""
    tokens = set(re.findall(r"[A-Z0-9]+", model.upper()))
    return next((r for r in MODEL_LIMITS if r.model in tokens), None)


def resolve(
    model: str,
    temp: np.ndarray,
    reported: dict[str, np.ndarray],
    default_slowdown_c: float,
    default_mem_c: float,
) -> Limits:
    """The GPU's limits; ``reported`` maps each key group name to per-sample values (NaN where absent).

    Groups: ``slowdown``, ``shutdown``, ``gpu_max``, ``mem_max`` (values) and ``margin`` (to the max
    operating temperature). A reported limit wins over the model table as a whole; a missing slowdown
    or shutdown next to a reported one is derived with the offsets above.
    """
    slowdown, shutdown = _last(reported.get("slowdown")), _last(reported.get("shutdown"))
    gpu_max, gpu_max_kind = _last(reported.get("gpu_max")), "gpu_max_op"
    margin = reported.get("margin")
    if gpu_max is None and margin is not None:
        derived = (temp + margin)[np.isfinite(temp + margin)]
        gpu_max, gpu_max_kind = (float(np.median(derived)), "tlimit") if derived.size else (None, gpu_max_kind)
    row = model_row(model)
    if slowdown is not None or gpu_max is not None:
        source = "reported"
        slowdown = slowdown if slowdown is not None else gpu_max + SLOWDOWN_OVER_MAX_OP_C  # type: ignore[operator]
        shutdown = shutdown if shutdown is not None else slowdown + SHUTDOWN_OVER_SLOWDOWN_C
    elif row is not None:
        slowdown, shutdown, gpu_max, source = row.slowdown_c, row.shutdown_c, row.gpu_max_c, "model"
    else:
        slowdown, shutdown, source = default_slowdown_c, default_slowdown_c + SHUTDOWN_OVER_SLOWDOWN_C, "default"
    mem = _last(reported.get("mem_max"))
    if mem is not None:
        mem_source = "reported"
    elif row is not None and row.mem_max_c is not None:
        mem, mem_source = row.mem_max_c, "model"
    else:
        mem, mem_source = default_mem_c, "default"
    return Limits(slowdown, float(shutdown), mem, source, mem_source, gpu_max, gpu_max_kind)
