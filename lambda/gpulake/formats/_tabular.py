"""The second half shared by the table formats: from read columns to a canonical batch.

Each table format maps its own header names; this module does what is common:
drop rows with bad cells, impossible readings (``schema.PHYSICAL_RANGE``) or
impossible times into quarantine, then assemble.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulake import schema
from gpulake.formats._table import Section
from gpulake.formats._values import impossible, in_time_range, outside
from gpulake.formats.base import BadRow


def normalise_name(name: str) -> str:
    """Header name as a lookup key: case, degree signs and spacing do not matter."""
    return " ".join(name.replace("°", "").replace("\ufffd", "").lower().split())


def pick_all(columns: dict[str, pa.Array], candidates: tuple[str, ...]) -> list[str]:
    """Every one of ``candidates`` present among ``columns``, in preference order."""
    by_key = {normalise_name(name): name for name in columns}
    return [by_key[c] for c in candidates if c in by_key]


def pick(columns: dict[str, pa.Array], candidates: tuple[str, ...]) -> str | None:
    """The first of ``candidates`` (normalised names) present among ``columns``."""
    found = pick_all(columns, candidates)
    return found[0] if found else None


def coalesce(numbers: dict[str, pa.Array], names: list[str]) -> pa.Array:
    """Per row, the first non-null of several columns (``power.draw`` else ``.average``...)."""
    return pc.coalesce(*[numbers[n] for n in names]) if len(names) > 1 else numbers[names[0]]


@dataclass
class SectionRows:
    """One section's rows in canonical terms, before bad rows are taken out."""

    time_ms: pa.Array
    identity: dict[str, object]
    canonical: dict[str, pa.Array]
    extra: dict[str, pa.Array]
    labels: dict[str, pa.Array]
    throttle_reasons: pa.Array | None = None
    #: Row -> the first column whose cell is not a number (rows without one are absent).
    bad_column: dict[int, str] = field(default_factory=dict)


def _rows(indices: Iterable[int], n: int) -> np.ndarray:
    """A boolean mask of ``n`` rows, true at ``indices``."""
    mask = np.zeros(n, dtype=bool)
    mask[list(indices)] = True
    return mask


def _impossible_readings(readings: dict[str, pa.Array | None]) -> dict[int, str]:
    """Row -> the reason of its first canonical reading or bitmask outside its range (rows without one are absent)."""
    reasons: dict[int, str] = {}
    ranges = {**schema.PHYSICAL_RANGE, "throttle_reasons": schema.THROTTLE_RANGE}
    for name, col in readings.items():
        if not isinstance(col, pa.Array):
            continue
        low, high = ranges[name]
        mask = outside(col, low, high)
        if name == "throttle_reasons" and pa.types.is_floating(col.type):
            arr = col.to_numpy(zero_copy_only=False)
            mask |= ~np.isnan(arr) & (np.floor(arr) != arr)  # a bitmask is a whole number
        if mask.any():
            values = col.to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(mask).tolist():
                reasons.setdefault(i, f"{name}: {impossible(float(values[i]), low, high)}")
    return reasons


def finish(section: Section, rows: SectionRows, source_object: str, bad_rows: list[BadRow]) -> pa.RecordBatch:
    """Quarantine rows with a bad cell or an unusable time; assemble the rest."""
    n = section.num_rows
    time_ok = in_time_range(rows.time_ms).to_numpy(zero_copy_only=False)
    unphysical = _impossible_readings({**rows.canonical, "throttle_reasons": rows.throttle_reasons})
    good = time_ok & ~_rows(rows.bad_column, n) & ~_rows(unphysical, n)
    if not good.all():
        lines = section.row_lines()
        times = rows.time_ms.to_pylist()
        for i in np.flatnonzero(~good).tolist():
            line, raw = lines[i]
            if i in rows.bad_column:
                reason = f"column {rows.bad_column[i]!r} does not hold a number"
            elif i in unphysical:
                reason = unphysical[i]
            elif times[i] is None:
                reason = "missing or unreadable timestamp"
            else:
                reason = "timestamp outside 2000-01-01..2100-01-01"
            bad_rows.append(BadRow(line, reason, raw))
    mask = None if good.all() else pa.array(good)  # every row kept: no copy of every column

    def keep(col: object) -> object:
        return pc.filter(col, mask) if mask is not None and isinstance(col, pa.Array) else col

    kept = int(good.sum())
    return schema.assemble(
        kept,
        time_ms=keep(rows.time_ms),
        identity={k: keep(v) for k, v in rows.identity.items()},
        canonical={k: keep(v) for k, v in rows.canonical.items()},
        throttle_reasons=keep(rows.throttle_reasons),
        extra=schema.numeric_map(kept, {k: keep(v) for k, v in rows.extra.items()}),
        labels=schema.string_map(kept, {k: keep(v) for k, v in rows.labels.items()}),
        source_object=source_object,
    )
