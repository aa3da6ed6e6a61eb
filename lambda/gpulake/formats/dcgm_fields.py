"""Which dcgm-exporter metric names feed which canonical column, across versions.

One DCGM field id can appear under several names: the 1.x lowercase names
(``dcgm_gpu_temp``), the 2.x-4.5 names (``DCGM_FI_DEV_GPU_TEMP``) and the
DCGM 4.6 names (``DCGM_FI_DEV_GPU_TEMP_CELSIUS``). ``tests/formats/dcgm`` checks
this table against the field ids in the real ``dcgm_fields.h`` derived list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CanonicalField:
    """A canonical column, the DCGM field id it comes from and its metric names."""

    column: str
    field_id: int
    names: tuple[str, ...]
    #: Multiply by this to reach the canonical unit (``*_RATIO`` fields are 0..1).
    scale_by_name: tuple[tuple[str, float], ...] = ()


FIELDS = (
    CanonicalField("gpu_temp_c", 150, ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_TEMP_CELSIUS", "dcgm_gpu_temp")),
    CanonicalField(
        "mem_temp_c", 140, ("DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_MEMORY_TEMP_CELSIUS", "dcgm_memory_temp")
    ),
    CanonicalField("power_w", 155, ("DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_BOARD_POWER_WATTS", "dcgm_power_usage")),
    CanonicalField(
        "util_pct",
        203,
        ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_UTIL_RATIO", "dcgm_gpu_utilization"),
        scale_by_name=(("DCGM_FI_DEV_GPU_UTIL_RATIO", 100.0),),
    ),
    CanonicalField("sm_clock_mhz", 100, ("DCGM_FI_DEV_SM_CLOCK", "dcgm_sm_clock")),
    CanonicalField("mem_clock_mhz", 101, ("DCGM_FI_DEV_MEM_CLOCK", "dcgm_memory_clock")),
    CanonicalField("fb_used_mib", 252, ("DCGM_FI_DEV_FB_USED", "dcgm_fb_used")),
    CanonicalField(
        "throttle_reasons",
        112,
        ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "dcgm_clock_throttle_reasons"),
    ),
)

#: metric name -> (canonical column, scale)
BY_NAME: dict[str, tuple[str, float]] = {
    name: (f.column, dict(f.scale_by_name).get(name, 1.0)) for f in FIELDS for name in f.names
}

#: Labels that identify the GPU row (folded into canonical columns, not ``labels``).
NODE_LABELS = ("Hostname", "hostname")
GPU_LABELS = ("gpu",)
UUID_LABELS = ("UUID", "uuid", "gpu_uuid")
MODEL_LABELS = ("modelName", "model_name")
MIG_INSTANCE_LABEL = "GPU_I_ID"
#: Labels that tell apart several series of one metric on one GPU; they join the ``extra`` key.
SERIES_LABELS = ("clock_event", "xid")

#: Metric names (as kept in ``extra``) of double-bit ECC error counters and the last-XID gauge.
ECC_DBE_NAMES = (
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
    "dcgm_ecc_dbe_volatile_total",
    "dcgm_ecc_dbe_aggregate_total",
)
XID_NAMES = ("DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_XID_ERROR", "dcgm_xid_errors")
