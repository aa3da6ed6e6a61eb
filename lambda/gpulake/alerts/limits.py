"""Per-GPU temperature limits: what the GPU reports, else the model table, else the configured default.

Reported (``threshold_source = "reported"``), from ``extra``:

- DCGM 158 ``DCGM_FI_DEV_SLOWDOWN_TEMP`` and 159 ``DCGM_FI_DEV_SHUTDOWN_TEMP`` (DCGM 4.6 names
  ``DCGM_FI_DEV_GPU_TEMP_{SLOWDOWN,SHUTDOWN}_CELSIUS``); 152 ``DCGM_FI_DEV_GPU_MAX_OP_TEMP`` and
  151 ``DCGM_FI_DEV_MEM_MAX_OP_TEMP`` (``..._CELSIUS``); ids from dcgm_fields.h, see
  ``shared/fixtures/real/dcgm/counters/DERIVED__NVIDIA__DCGM__dcgm_fields_h__field_ids.csv``.
- DCGM 153 ``DCGM_FI_DEV_GPU_TEMP_LIMIT`` (``DCGM_FI_DEV_GPU_TEMP_MARGIN_CELSIUS``) and nvidia-smi
  ``temperature.gpu.tlimit``: a *margin* (NVML nvmlDeviceGetMarginTemperature: "distance to nearest
  slowdown threshold"), so that threshold is ``temperature + margin``. ``nvidia-smi -q`` prints Ada and
  later GPUs' thresholds on that scale (drivers >= 550; an L20 already on 535.161.08): "GPU Max Operating
  T.Limit Temp: 0 C", "GPU Slowdown T.Limit Temp: -2 C", "GPU Shutdown T.Limit Temp: -5 C" (L4 550.90.07,
  L40S 550.127.05 and 595.80, L20 535.161.08) or -8 C (H100 565.57.01 and 590.48.01, H100 NVL 550.54.14,
  H200 550.90.12 and 580.173.02, GH200 550.127.05). So the margin points at the GPU max operating
  temperature, slowdown is 2 °C above it and shutdown at least 5 °C above it; Ampere and Volta keep
  absolute lines on 550 drivers (A10, A40, V100 below). nvidia-smi has no query-gpu column for the
  thresholds themselves: ``--help-query-gpu`` (590.48.01, 595.80) lists only ``temperature.gpu``,
  ``temperature.gpu.tlimit`` and ``temperature.memory``.

  ``temperature + margin`` is the max operating temperature only approximately, which is why the model
  table takes no row from T.Limit captures: an H800 on 525.105.17 prints both scales (current 35 +
  T.Limit 51 = 86, "GPU Max Operating Temp: 87 C"); eight idle H100 SXM on 565.57.01 sum to 87 seven
  times and 83 once; under load the sum falls (H100 590.48.01: 41+46 = 87 idle, 59+26 = 85 loaded; the
  same GPU in MIG mode 53+24 = 77), so the margin is read from a sensor other than ``temperature.gpu``;
  and Hopper's "-8 C" shutdown offset (87+8 = 95) disagrees with the absolute 92 °C of the H800 capture
  and the H100 PCIe product brief. :func:`resolve` therefore derives the threshold from every sample of
  a GPU that reports its margin (the median), never from a model row.

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
#: every absolute capture in the model table (A100 89/92, H800 89/92, A10G 95/98, T4 93/96, A10 98/101,
#: A40 95/98, V100 87/90).
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
#: never matches A100/A10G, A40 never RTX A4000, L4 never L40S, H20 never H200, B200 never GB200, V100
#: never V100S. Only numbers read from an absolute source are listed (see the module docstring for why
#: T.Limit captures give none). Not found (they use what they report, else the default): B200, GB200,
#: H20 and L40 (no nvidia-smi -q capture or product brief with thermal limits found), H200, GH200, L4,
#: L40S and L20 (captures print T.Limit offsets only, which these GPUs report as a margin).
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
    # nvidia-smi -q of an NVIDIA A10, driver 550.90.12 (thamada/gls, gls/A10_smi.py), the same in a second
    # public A10 capture (driver 550.127.05, a Go test fixture on GitHub): Shutdown 101 C, Slowdown 98 C,
    # Max Operating 91 C, Memory Max Operating N/A (GDDR6).
    ModelLimits("A10", 98.0, 101.0, 91.0, None, "nvidia-smi -q, A10, drivers 550.90.12 and 550.127.05"),
    # nvidia-smi -q of ten NVIDIA A40, driver 550.127.05 (thamada/nvidia-smi, nvsim/A40x10_smi.py; GPUs 0
    # and 1 read, alike): Shutdown 98 C, Slowdown 95 C, Max Operating 88 C, Memory Max Operating N/A (GDDR6).
    ModelLimits("A40", 95.0, 98.0, 88.0, None, "nvidia-smi -q, A40, driver 550.127.05"),
    # nvidia-smi -q of a Tesla V100-SXM2-16GB, driver 550.127.05 (thamada/gls, gls/V100_x8_smi.py), the same
    # for a Tesla V100-PCIE-32GB, driver 470.129.06 (a public nvidia-smi notes page on GitHub): Shutdown 90 C,
    # Slowdown 87 C, Max Operating 83 C, Memory Max Operating 85 C (HBM2).
    ModelLimits("V100", 87.0, 90.0, 83.0, 85.0, "nvidia-smi -q, V100-SXM2-16GB 550.127.05, V100-PCIE-32GB 470.129.06"),
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
