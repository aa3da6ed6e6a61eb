"""TechPowerUp GPU-Z "Sensor Log" files.

Quirks handled (all seen in real logs): cp1252 or UTF-8 degree signs, space
padded cells, a trailing `` ,`` on every line, NUL padding after the header,
the header repeated after each logging restart (with other columns), duplicate
column names, ``-`` for a missing reading, local time without a zone, and
``PerfCap Reason`` as an NVAPI bitmask (1 Pwr, 2 Thrm, 4 VRel, 8 VOp, 16 Util, 32 SLI).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from gpulake.context import SourceContext
from gpulake.errors import InputRejected
from gpulake.formats._cells import local_times
from gpulake.formats._table import read_sections
from gpulake.formats._tabular import SectionRows, coalesce, finish, pick, pick_all
from gpulake.formats._values import read_columns
from gpulake.formats.base import Format, ParseResult

CANONICAL = {
    "gpu_temp_c": ("gpu temperature [c]",),
    "mem_temp_c": ("memory temperature [c]",),
    "power_w": ("board power draw [w]", "gpu power [w]", "gpu chip power draw [w]"),
    "util_pct": ("gpu load [%]",),
    "sm_clock_mhz": ("gpu clock [mhz]", "gpu core clock [mhz]"),
    "mem_clock_mhz": ("memory clock [mhz]", "gpu memory clock [mhz]"),
    "fb_used_mib": (
        "memory used [mb]",
        "memory used (dedicated) [mb]",
        "memory usage [mb]",
        "memory usage (dedicated) [mb]",
    ),
}
PERFCAP = ("perfcap reason []",)
#: GPU-Z PerfCap bit -> NVML clock event reason bit (VRel and VOp have none; kept raw in ``extra``).
PERFCAP_TO_NVML = {1: 0x4, 2: 0x20, 16: 0x1, 32: 0x10}
_HEADER = re.compile(r"^\s*Date\s*,", re.M)


#: The mapped PerfCap bits, and the NVML bitmask of every combination of them (one lookup per row).
_PERFCAP_BITS = sum(PERFCAP_TO_NVML)
_NVML_OF = np.array(
    [sum(nvml for gpuz, nvml in PERFCAP_TO_NVML.items() if combo & gpuz) for combo in range(_PERFCAP_BITS + 1)],
    dtype=np.int64,
)


def perfcap_to_nvml(perfcap: pa.Array) -> pa.Array:
    """Map GPU-Z PerfCap bitmasks onto the NVML clock-event-reason bitmask."""
    raw = perfcap.to_numpy(zero_copy_only=False)
    valid = ~np.isnan(raw)
    bits = np.where(valid, raw, 0).astype(np.int64)
    return pa.array(_NVML_OF[bits & _PERFCAP_BITS], pa.int64(), mask=~valid)


class GpuzFormat(Format):
    name = "gpuz"

    def sniff(self, head: str) -> bool:
        return bool(_HEADER.match(head.replace("\x00", "")))

    def parse_text(self, text: bytes, ctx: SourceContext) -> ParseResult:
        text = text.replace(b"\x00", b"\n")
        result = ParseResult()
        sections = read_sections(text, "Date", result.bad_rows, ctx.key)
        if not sections:
            raise InputRejected(ctx.key, "no GPU-Z header line (starting with 'Date ,') found", 1)
        for section in sections:
            if section.num_rows == 0:
                continue
            columns = section.named_columns()
            date = columns.pop("Date")
            chosen = {canon: pick_all(columns, names) for canon, names in CANONICAL.items()}
            perfcap = pick(columns, PERFCAP)
            read = read_columns(columns, {c for cs in chosen.values() for c in cs} | ({perfcap} if perfcap else set()))
            used = {cs[0] for cs in chosen.values() if cs}
            rows = SectionRows(
                time_ms=local_times(date, ctx.tz),
                identity={"node": ctx.node, "gpu": "0", "source": self.name},
                canonical={canon: coalesce(read.numbers, cs) for canon, cs in chosen.items() if cs},
                extra={normalise_label(k): v for k, v in read.numbers.items() if k not in used},
                labels={normalise_label(k): v for k, v in read.text.items()},
                throttle_reasons=perfcap_to_nvml(read.numbers[perfcap]) if perfcap else None,
                bad_column=read.bad_column,
            )
            result.batches.append(finish(section, rows, ctx.key, result.bad_rows))
        return result


def normalise_label(name: str) -> str:
    """Source column name as kept in ``extra``/``labels`` (the degree sign spelled one way)."""
    return name.replace("\ufffd", "°")
