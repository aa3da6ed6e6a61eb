"""Thermal event CSVs: ``node,timestamp,gpu_id,temp,avg_temp,reason,date``.

Column names vary between the scripts that write these files, so each field is
found through a list of aliases (see ``ALIASES``, extend it there). ``reason`` is
``Throttled`` (mapped onto the NVML SwThermal bit, 0x20) or ``Thermally Failed``
(``extra['thermal_failed'] = 1``); some files have no ``avg_temp`` column, and
``timestamp`` may hold a date only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulake.context import SourceContext
from gpulake.errors import InputRejected
from gpulake.formats._table import read_sections, split_header, table_columns
from gpulake.formats._tabular import SectionRows, finish, normalise_name, pick
from gpulake.formats._values import read_columns, trim
from gpulake.formats.base import Format, ParseResult
from gpulake.timeutil import local_to_utc_ms

ALIASES: dict[str, tuple[str, ...]] = {
    "node": ("node", "host", "hostname", "node_name", "server"),
    "time": ("timestamp", "time", "ts", "datetime", "date_time"),
    "gpu": ("gpu_id", "gpu", "gpu_index", "gpu_idx", "index"),
    "temp": ("temp", "temperature", "temp_c", "gpu_temp", "temperature_c"),
    "avg_temp": ("avg_temp", "average_temp", "avg_temperature", "temp_avg"),
    "reason": ("reason", "status", "event"),
    "date": ("date", "day"),
}
THROTTLED = 0x20  # NVML SwThermalSlowdown


class ThermalCsvFormat(Format):
    name = "thermal-csv"

    def sniff(self, head: str) -> bool:
        first = next((line for line in head.splitlines() if line.strip()), "")
        cells = {normalise_name(c) for c in first.split(",")}
        return all(cells & set(ALIASES[key]) for key in ("node", "gpu", "temp"))

    def parse_text(self, text: bytes, ctx: SourceContext) -> ParseResult:
        first = next((line for line in text[:65536].splitlines() if line.strip()), b"")
        result = ParseResult()
        sections = read_sections(text, split_header(first)[0], result.bad_rows, ctx.key)
        if not sections:
            raise InputRejected(ctx.key, "no thermal CSV header line found", 1)
        for section in sections:
            if section.num_rows:
                result.batches.append(finish(section, self._rows(section.table, ctx), ctx.key, result.bad_rows))
        return result

    def _rows(self, table: pa.Table, ctx: SourceContext) -> SectionRows:
        columns = table_columns(table)
        found = {key: pick(columns, names) for key, names in ALIASES.items()}
        time_col = found["time"] or found["date"]
        if found["temp"] is None or time_col is None:
            raise InputRejected(ctx.key, "thermal CSV needs a temperature and a timestamp (or date) column", 1)
        identity_cols = {found[k] for k in ("node", "time", "gpu", "reason", "date") if found[k]}
        read = read_columns({c: v for c, v in columns.items() if c not in identity_cols}, {found["temp"]})
        n = table.num_rows
        reason = trim(columns[found["reason"]]) if found["reason"] else pa.nulls(n, pa.string())
        reason_key = pc.utf8_lower(reason)
        failed = pc.fill_null(pc.equal(reason_key, "thermally failed"), False)
        throttled = pc.fill_null(pc.equal(reason_key, "throttled"), False)
        extra = {k: v for k, v in read.numbers.items() if k != found["temp"]}
        extra["thermal_failed"] = pa.array(
            np.where(failed.to_numpy(zero_copy_only=False), 1.0, np.nan), from_pandas=True
        )
        labels = dict(read.text)
        labels.update({name: trim(columns[found[name]]) for name in ("reason", "date") if found[name]})
        gpu_raw = trim(columns[found["gpu"]]) if found["gpu"] else None
        if gpu_raw is not None:
            labels["gpu_id"] = gpu_raw
        node = trim(columns[found["node"]]) if found["node"] else None
        return SectionRows(
            time_ms=local_to_utc_ms(columns[time_col], ctx.tz),
            identity={
                "node": pc.fill_null(node, ctx.node) if node is not None else ctx.node,
                "gpu": _gpu_index(gpu_raw) if gpu_raw is not None else "0",
                "source": self.name,
            },
            canonical={"gpu_temp_c": read.numbers[found["temp"]]},
            extra=extra,
            labels=labels,
            throttle_reasons=pc.if_else(throttled, THROTTLED, pa.scalar(None, pa.int64())),
            bad_column=read.bad_column,
        )


def _gpu_index(raw: pa.Array) -> pa.Array:
    """``GPU_28`` / ``gpu-3`` / ``7`` -> ``28`` / ``3`` / ``7``; anything else stays as written."""
    digits = pc.extract_regex(raw, r"^(?i:gpu)?[_\- ]?(?P<idx>\d+)$")
    index = pc.struct_field(digits, "idx")
    return pc.fill_null(pc.if_else(pc.fill_null(digits.is_valid(), False), index, raw), "0")
