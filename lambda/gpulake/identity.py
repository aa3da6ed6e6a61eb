"""Row identity: one row per node, GPU, source and time, in the lake as in every database.

PostgreSQL is unique on ``(node, gpu, source, time)`` and InfluxDB identifies a point
by its tags and time, so a second row with the same identity silently replaces the
first there. This module makes the lake agree and says when it happens:

- within one object, :func:`drop_duplicate_times` keeps the last row in file order
  (what the databases keep) and returns the replaced rows for quarantine, reason
  ``duplicate_timestamp``;
- a row with no finite value at all (every column null) is quarantined, reason
  ``no_values``: InfluxDB cannot store a point without a field, so keeping it would
  leave the lake and InfluxDB disagreeing;
- across the objects of one run, :class:`CollisionCheck` reports two inputs that
  write rows for the same node, GPU and source over overlapping times (two files
  given the same node name), which would overwrite each other in the databases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulake.schema import CANONICAL_COLUMNS, codes, whole
from gpulake.timeutil import ms_to_iso

DUPLICATE_REASON = "duplicate_timestamp"
NO_VALUES_REASON = "no_values"
#: The columns one row is identified by (``source`` is constant within an object).
KEY_COLUMNS = ("node", "gpu", "source", "time")
#: The order of rows in a metrics object (a stable sort, so rows of one identity keep their file order).
SORT_KEYS = [("node", "ascending"), ("gpu", "ascending"), ("time", "ascending")]


def sort_rows(table: pa.Table) -> pa.Table:
    """``table`` stably sorted by :data:`SORT_KEYS`, without a copy when it is sorted already (dcgm's are)."""
    order = pc.sort_indices(table, SORT_KEYS)
    if np.array_equal(order.to_numpy(), np.arange(table.num_rows)):
        return table
    return table.take(order)


def _same_as_next(table: pa.Table) -> pa.Array:
    """Per row of a table stably sorted by identity (at least 2 rows): whether the next row has the same identity."""
    n = table.num_rows
    same = None
    for name in KEY_COLUMNS:
        column = whole(table[name])
        if pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.int64())
        current, following = column.slice(0, n - 1), column.slice(1)
        both_null = pc.and_(pc.is_null(current), pc.is_null(following))
        equal = pc.or_(pc.fill_null(pc.equal(current, following), False), both_null)
        same = equal if same is None else pc.and_(same, equal)
    return pa.concat_arrays([same, pa.array([False])])


def drop_duplicate_times(table: pa.Table, source_object: str) -> tuple[pa.Table, list[dict[str, object]]]:
    """Keep the last row per identity of a table stably sorted by node, GPU and time; quarantine the others.

    The quarantine record carries the replaced row's identity and values as JSON in
    ``raw`` (the parsers no longer know its line).
    """
    if table.num_rows < 2:
        return table, []
    replaced = _same_as_next(table)
    if not pc.any(replaced).as_py():
        return table, []
    records = [_quarantine(row, source_object, DUPLICATE_REASON) for row in table.filter(replaced).to_pylist()]
    return table.filter(pc.invert(replaced)), records


def _describe(row: dict[str, object]) -> dict[str, object]:
    """A replaced row for people: identity, ISO time and the values that were set."""
    described = {k: v for k, v in row.items() if v is not None and k not in ("extra", "labels", "source_object")}
    described["time"] = str(row["time"])
    return described


def has_values(table: pa.Table) -> np.ndarray:
    """Per row: whether any canonical column, ``throttle_reasons`` or ``extra`` entry holds a finite value."""
    found = np.zeros(table.num_rows, dtype=bool)
    for name in (*CANONICAL_COLUMNS, "throttle_reasons"):
        column = whole(table[name])
        valid = pc.is_valid(column) if pa.types.is_integer(column.type) else pc.is_finite(column)
        found |= pc.fill_null(valid, False).to_numpy(zero_copy_only=False)
    extra = whole(table["extra"])
    if len(extra.items):
        offsets = extra.offsets.to_numpy()  # absolute into ``items``, also for a sliced array
        finite = pc.fill_null(pc.is_finite(extra.items), False).to_numpy(zero_copy_only=False)[: offsets[-1]]
        filled = offsets[1:] > offsets[:-1]  # rows with entries: each one's run to the next one's start
        if filled.any():  # per row, not per entry: a cumulative count would be an int64 per entry
            found[filled] |= np.logical_or.reduceat(finite, offsets[:-1][filled])
    return found


def drop_rows_without_values(table: pa.Table, source_object: str) -> tuple[pa.Table, list[dict[str, object]]]:
    """Quarantine rows that carry no value (reason ``no_values``): no database point could hold them."""
    keep = has_values(table)
    if keep.all():
        return table, []
    records = [_quarantine(row, source_object, NO_VALUES_REASON) for row in table.filter(pa.array(~keep)).to_pylist()]
    return table.filter(pa.array(keep)), records


class InOrder:
    """:func:`drop_rows_without_values`, then :func:`drop_duplicate_times`, over rows handed over in slices in
    table order (:data:`SORT_KEYS`): the same rows kept and quarantined, in the same order, as on the whole table.

    A slice is held until the next one's first row is known: one with the same identity replaces the held
    slice's last row (within a slice, duplicates are dropped as on a whole table).
    """

    def __init__(self, source_object: str) -> None:
        self.source_object = source_object
        #: Quarantine records of rows without values, then of replaced rows (as the whole-table functions give).
        self.empty: list[dict[str, object]] = []
        self.replaced: list[dict[str, object]] = []
        self._held: pa.Table | None = None

    def rows(self, slices: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """The kept rows of ``slices``, slice by slice (one behind: the last comes when ``slices`` end)."""
        for table in slices:
            ready = self._add(table)
            if ready is not None and ready.num_rows:
                yield ready
        held, self._held = self._held, None
        if held is not None:
            yield held

    def _add(self, table: pa.Table) -> pa.Table | None:
        """Hold the next slice; the previous one (without a row this one replaces) is final."""
        table, empty = drop_rows_without_values(table, self.source_object)
        self.empty += empty
        if not table.num_rows:
            return None
        held = self._held
        if held is not None:
            last = held.slice(held.num_rows - 1)
            if _same_as_next(pa.concat_tables([last, table.slice(0, 1)]))[0].as_py():
                self.replaced.append(_quarantine(last.to_pylist()[0], self.source_object, DUPLICATE_REASON))
                held = held.slice(0, held.num_rows - 1)
        self._held, replaced = drop_duplicate_times(table, self.source_object)
        self.replaced += replaced
        return held


class EarlierWindows:
    """Rows of a window whose identity an earlier window of the same object wrote (ADR 0008).

    Windows are cut at scrape markers, which only move forward in what the collector writes, so this finds
    nothing there; a hostile object (a scrape time repeated a window later) has those rows quarantined as
    ``duplicate_timestamp``. The earlier row stays, as it is written: one row per identity, as everywhere.
    """

    def __init__(self, source_object: str) -> None:
        self.source_object = source_object
        self.replaced: list[dict[str, object]] = []
        #: Per (node, GPU), the sorted times earlier windows wrote (8 bytes a row).
        self._written: dict[tuple[str | None, str | None], np.ndarray] = {}

    def rows(self, table: pa.Table) -> pa.Table:
        """``table`` (a slice of the window) without the rows an earlier window wrote."""
        if not self._written or not table.num_rows:
            return table
        drop = np.zeros(table.num_rows, dtype=bool)
        times = pc.cast(table["time"], pa.int64()).to_numpy()
        for key, rows in _by_gpu(table):
            earlier = self._written.get(key)
            if earlier is not None and times[rows].min() <= earlier[-1]:
                drop[rows] = np.isin(times[rows], earlier)
        if not drop.any():
            return table
        self.replaced += [
            _quarantine(row, self.source_object, DUPLICATE_REASON) for row in table.filter(drop).to_pylist()
        ]
        return table.filter(pa.array(~drop))

    def add(self, window: pa.Table) -> None:
        """Remember what a finished window wrote (its kept rows)."""
        times = pc.cast(window["time"], pa.int64()).to_numpy()
        for key, rows in _by_gpu(window):
            before = self._written.get(key)
            written = times[rows] if before is None else np.concatenate([before, times[rows]])
            self._written[key] = np.sort(written)


def _by_gpu(table: pa.Table) -> Iterator[tuple[tuple[str | None, str | None], np.ndarray]]:
    """Per (node, GPU) of ``table``, the indices of its rows."""
    nodes, node = codes(table["node"])
    gpus, gpu = codes(table["gpu"])
    combined = node.astype(np.int64) * len(gpus) + gpu
    for value in np.unique(combined).tolist():
        yield (nodes[value // len(gpus)], gpus[value % len(gpus)]), np.flatnonzero(combined == value)


def _quarantine(row: dict[str, object], source_object: str, reason: str) -> dict[str, object]:
    """A quarantine record for a row ingest took out (no line number: the parsers no longer know it)."""
    return {
        "source_object": source_object,
        "line": None,
        "reason": reason,
        "raw": json.dumps(_describe(row), ensure_ascii=False, sort_keys=True, default=str),
        "raw_truncated": False,
    }


@dataclass(frozen=True)
class Span:
    """The time range one object covers for one node, GPU and source (epoch ms, inclusive)."""

    node: str
    gpu: str
    source: str
    first_ms: int
    last_ms: int


def spans(table: pa.Table) -> list[Span]:
    """Per node, GPU and source of ``table``, the first and last sample time (in order of first appearance)."""
    if table.num_rows == 0:
        return []
    ms = pc.cast(table["time"], pa.int64()).to_numpy()
    keys = [codes(table[name]) for name in ("node", "gpu", "source")]
    new = np.zeros(table.num_rows, dtype=bool)
    new[0] = True
    for _, rows in keys:  # runs of one identity: rows are sorted by it (any order still works: runs merge below)
        new[1:] |= rows[1:] != rows[:-1]
    starts = np.flatnonzero(new)
    return merge_spans(
        Span(*(values[rows[start]] for values, rows in keys), first, last)
        for start, first, last in zip(
            starts.tolist(), np.minimum.reduceat(ms, starts).tolist(), np.maximum.reduceat(ms, starts).tolist()
        )
    )


def merge_spans(found: Iterable[Span]) -> list[Span]:
    """One span per node, GPU and source (in order of first appearance): the runs of one table, or an object's
    windows, which cover each in turn (ADR 0008)."""
    merged: dict[tuple[str, str, str], Span] = {}
    for span in found:
        key = (span.node, span.gpu, span.source)
        earlier = merged.get(key)
        merged[key] = (
            span
            if earlier is None
            else Span(*key, min(earlier.first_ms, span.first_ms), max(earlier.last_ms, span.last_ms))
        )
    return list(merged.values())


@dataclass
class CollisionCheck:
    """Remembers which object covered which identity when, across one run (``process`` of many files)."""

    _seen: dict[tuple[str, str, str], list[tuple[int, int, str]]] = field(default_factory=dict)

    def add(self, source_object: str, covered: list[Span]) -> list[str]:
        """Record an object's spans; one message per earlier object of the run whose rows it would overwrite."""
        messages = []
        for span in covered:
            key = (span.node, span.gpu, span.source)
            for first, last, other in self._seen.get(key, []):
                if other != source_object and first <= span.last_ms and span.first_ms <= last:
                    messages.append(
                        f"identity collision: {source_object} and {other} both have {span.source} rows for node "
                        f"{span.node!r} GPU {span.gpu!r} between {ms_to_iso(max(first, span.first_ms))} and "
                        f"{ms_to_iso(min(last, span.last_ms))}; the databases keep one row per node, GPU, source "
                        "and time, so one would overwrite the other (give each input its own node: folder or --node)"
                    )
            self._seen.setdefault(key, []).append((span.first_ms, span.last_ms, source_object))
        return messages
