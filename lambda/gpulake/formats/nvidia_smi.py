"""``nvidia-smi --query-gpu=... --format=csv[,nounits]`` logs.

Quirks handled: units inside values (``45 W``, ``1024 MiB``, ``22 %``), ``[N/A]``,
``N/A``, ``[Not Supported]``, hex ``clocks_event_reasons.active`` (or the older
``clocks_throttle_reasons.active``) and the per-reason ``Active``/``Not Active``
columns, the header repeated before every row (a ``-l`` loop appending calls),
no ``index`` column (GPUs told apart by ``pci.bus_id``, else ``uuid``, else by their
position in each sampling round, see ``_rounds``), no ``timestamp``
column (the object's time is used), ``YYYY/MM/DD HH:MM:SS.mmm`` local time.
A header-less log (``--format=csv,noheader``) is rejected: its columns are unknowable.
"""

from __future__ import annotations

import re

import pyarrow as pa

from gpulake.context import SourceContext
from gpulake.errors import InputRejected
from gpulake.formats._rounds import gpu_by_position
from gpulake.formats._table import read_sections, split_header, table_columns
from gpulake.formats._tabular import SectionRows, coalesce, finish, pick, pick_all
from gpulake.formats._values import bits_from_flags, read_columns, trim
from gpulake.formats.base import Format, ParseResult
from gpulake.timeutil import local_to_utc_ms

CANONICAL = {
    "gpu_temp_c": ("temperature.gpu",),
    "mem_temp_c": ("temperature.memory",),
    "power_w": ("power.draw", "power.draw.average", "power.draw.instant"),
    "util_pct": ("utilization.gpu",),
    "sm_clock_mhz": ("clocks.current.sm", "clocks.sm"),
    "mem_clock_mhz": ("clocks.current.memory", "clocks.mem"),
    "fb_used_mib": ("memory.used",),
}
REASON_MASK = ("clocks_event_reasons.active", "clocks_throttle_reasons.active")
REASON_BITS = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
}
IDENTITY = {"timestamp", "index", "uuid", "name"}
_QUERY_FIELD = re.compile(
    r"^[a-z_][a-z0-9_]*(\.[A-Za-z0-9_]+)+( \[[^\]]*\])?$|^(timestamp|name|index|uuid|count|serial|pstate)$"
)
_DATE_FIRST = re.compile(r"^\s*\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}")


def field_name(header: str) -> str:
    """``utilization.gpu [%]`` -> ``utilization.gpu`` (the query field, lower case)."""
    return header.split(" [", 1)[0].strip().lower()


def _first_line(head: str) -> str:
    for line in head.splitlines():
        if line.strip():
            return line
    return ""


class NvidiaSmiFormat(Format):
    name = "nvidia-smi"

    def sniff(self, head: str) -> bool:
        first = _first_line(head)
        if _DATE_FIRST.match(first):
            return True
        cells = [c.strip() for c in first.split(",")]
        return len(cells) >= 2 and sum(bool(_QUERY_FIELD.match(c)) for c in cells) >= max(2, len(cells) // 2)

    def parse_text(self, text: bytes, ctx: SourceContext) -> ParseResult:
        first = _first_line(text[:65536].decode("utf-8", "replace"))
        if _DATE_FIRST.match(first):
            raise InputRejected(
                ctx.key,
                "nvidia-smi CSV without a header line (--format=csv,noheader): its columns cannot be "
                "known; log with --format=csv (units or nounits) so the first line names the fields",
                1,
            )
        result = ParseResult()
        first_cell = split_header(first.encode())[0]
        for section in read_sections(text, first_cell, result.bad_rows, ctx.key):
            if section.num_rows:
                result.batches.append(finish(section, self._rows(section.table, ctx), ctx.key, result.bad_rows))
        return result

    def _rows(self, table: pa.Table, ctx: SourceContext) -> SectionRows:
        by_field = {field_name(c): c for c in table.column_names if c}
        columns = table_columns(table)
        fields_view = {field_name(c): col for c, col in columns.items()}
        chosen = {canon: pick_all(fields_view, names) for canon, names in CANONICAL.items()}
        mask_field = pick(fields_view, REASON_MASK)
        numeric = {by_field[f] for fs in chosen.values() for f in fs} | (
            {by_field[mask_field]} if mask_field else set()
        )
        values = {c: col for c, col in columns.items() if field_name(c) not in IDENTITY}
        read = read_columns(values, numeric)
        n = table.num_rows

        def text(field: str) -> pa.Array | None:
            return columns[by_field[field]] if field in by_field else None

        stamp = text("timestamp")
        time_ms = (
            local_to_utc_ms(stamp, ctx.tz) if stamp is not None else pa.array([ctx.object_time_ms] * n, pa.int64())
        )
        gpu = text("index") or read.text.get(by_field.get("pci.bus_id", "")) or text("uuid")
        used = {by_field[fs[0]] for fs in chosen.values() if fs}
        return SectionRows(
            time_ms=time_ms,
            identity={
                "node": ctx.node,
                "gpu": _trimmed(gpu) if gpu is not None else gpu_by_position(time_ms),
                "gpu_uuid": _trimmed(text("uuid")),
                "gpu_model": _trimmed(text("name")),
                "source": self.name,
            },
            canonical={canon: coalesce(read.numbers, [by_field[f] for f in fs]) for canon, fs in chosen.items() if fs},
            extra={k: v for k, v in read.numbers.items() if k not in used},
            labels=read.text,
            throttle_reasons=self._reasons(read.numbers, by_field, mask_field, n),
            bad_column=read.bad_column,
        )

    @staticmethod
    def _reasons(
        numbers: dict[str, pa.Array], by_field: dict[str, str], mask_field: str | None, n: int
    ) -> pa.Array | None:
        if mask_field:
            return numbers[by_field[mask_field]]  # float64: checked against THROTTLE_RANGE, then stored as int64
        flags = {}
        for prefix in ("clocks_event_reasons.", "clocks_throttle_reasons."):
            for reason, bit in REASON_BITS.items():
                column = by_field.get(prefix + reason)
                if column in numbers:
                    flags[bit] = numbers[column]
        return bits_from_flags(flags, n) if flags else None


def _trimmed(col: pa.Array | None) -> pa.Array | None:
    return trim(col) if col is not None else None
