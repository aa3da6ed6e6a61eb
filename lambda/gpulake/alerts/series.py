"""Vectorised helpers over one GPU's samples (sorted by time) and over a table's ``extra`` map.

Alert rules ask the same few questions of every GPU: where does a condition hold in runs,
where does a counter rise, which ``extra`` keys does a row carry. Answered with numpy over
whole arrays (and one pass over ``extra`` per table rather than one ``map_lookup`` per key),
they cost microseconds per GPU instead of a Python step per sample.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulake.schema import whole


def typical_step(time: np.ndarray) -> float:
    """The median positive gap between consecutive samples (ms), 0.0 when there is none."""
    if len(time) < 2:
        return 0.0
    diffs = np.diff(time)
    positive = diffs[diffs > 0]
    return float(np.median(positive)) if positive.size else 0.0


def run_bounds(
    time: np.ndarray, hit: np.ndarray, max_gap: float | np.ndarray, breaks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The first and the last index of each run of consecutive hits, as arrays: what per-run sums and peaks
    are reduced over. A gap over ``max_gap`` (one number, or per row: the gap before that row) between two
    hits splits a run, and so does a row where ``breaks`` is True (several series laid end to end)."""
    idx = np.flatnonzero(hit)
    if not idx.size:
        return idx, idx
    after = idx[1:]
    gap = max_gap[after] if isinstance(max_gap, np.ndarray) else max_gap
    new = (after != idx[:-1] + 1) | (time[after] - time[after - 1] > gap)
    if breaks is not None:
        new |= breaks[after]
    return idx[np.concatenate([[True], new])], idx[np.concatenate([new, [True]])]


def runs(time: np.ndarray, hit: np.ndarray, max_gap: float) -> list[tuple[int, int]]:
    """(first, last) index of each run of consecutive hits; a gap over ``max_gap`` between two hits splits a run."""
    first, last = run_bounds(time, hit, max_gap)
    return list(zip(first.tolist(), last.tolist(), strict=True))


def _known(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(~np.isnan(values))
    return idx, values[idx]


def rises(values: np.ndarray, before: float | None = None) -> np.ndarray:
    """True where a counter is above the previous known (non-NaN) value; ``before``: the value known before
    the first sample (the previous object's last), else the first known value never is."""
    out = np.zeros(len(values), dtype=bool)
    idx, known = _known(values)
    previous = np.concatenate([[np.nan if before is None else before], known[:-1]])
    out[idx] = known > previous  # NaN compares false
    return out


def rises_from_zero(values: np.ndarray) -> np.ndarray:
    """True where a windowed counter is above the previous known value (0 before the first): new events."""
    out = np.zeros(len(values), dtype=bool)
    idx, known = _known(values)
    out[idx] = known > np.concatenate([[0.0], known[:-1]])
    return out


def changes_to_nonzero(values: np.ndarray, before: float | None = None) -> np.ndarray:
    """True where a last-value gauge shows a non-zero value different from the previous known one
    (``before`` the first sample: the previous object's last value, else 0)."""
    out = np.zeros(len(values), dtype=bool)
    idx, known = _known(values)
    out[idx] = (known != 0) & (known != np.concatenate([[0.0 if before is None else before], known[:-1]]))
    return out


class ExtraLookup(ABC):
    """Per row, the values of ``extra`` keys: what detection and carried ends read of the map."""

    #: The number of rows.
    rows: int

    @property
    @abstractmethod
    def names(self) -> Collection[str]:
        """Every key present in some row (of those this lookup can answer)."""

    @abstractmethod
    def value(self, key: str) -> np.ndarray:
        """Per row, the first value of ``key`` (NaN where the row has none)."""

    def values(self, keys: tuple[str, ...]) -> np.ndarray:
        """Per row, the value of the first of ``keys`` the row has (NaN where none)."""
        out = np.full(self.rows, np.nan)
        for key in keys:
            out = np.where(np.isnan(out), self.value(key), out)
        return out


class ExtraIndex(ExtraLookup):
    """The ``extra`` map of a table, flattened once so any key's per-row value is one numpy comparison.

    ``values(keys)`` equals, per row, ``map_lookup(extra, key, "first")`` of the first key that has one.
    """

    def __init__(self, extra: pa.Array | pa.ChunkedArray) -> None:
        extra = whole(extra)
        self.rows = len(extra)
        offsets = extra.offsets.to_numpy()  # absolute into keys/items, also for a sliced array
        self.entry_row = np.repeat(np.arange(self.rows, dtype=np.int32), np.diff(offsets))
        size = int(offsets[-1] - offsets[0])
        keys, items = extra.keys.slice(offsets[0], size), extra.items.slice(offsets[0], size)
        if extra.null_count:  # a null map has no entries, whatever its offsets say
            valid = extra.is_valid().to_numpy(zero_copy_only=False)[self.entry_row]
            self.entry_row = self.entry_row[valid]
            keys, items = keys.filter(pa.array(valid)), items.filter(pa.array(valid))
        encoded = pc.dictionary_encode(keys)
        self.codes = encoded.indices.to_numpy(zero_copy_only=False)
        #: Every key present in some row, with its code.
        self.code = {name: code for code, name in enumerate(encoded.dictionary.to_pylist())}
        self.items = items.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)

    @property
    def names(self) -> Collection[str]:
        return self.code.keys()

    def value(self, key: str) -> np.ndarray:
        out = np.full(self.rows, np.nan)
        code = self.code.get(key)
        if code is None:
            return out
        sel = np.flatnonzero(self.codes == code)
        rows = self.entry_row[sel]
        first = np.concatenate([[True], rows[1:] != rows[:-1]]) if rows.size else rows.astype(bool)
        out[rows[first]] = self.items[sel[first]]
        return out


class ExtraColumns(ExtraLookup):
    """The values of the ``extra`` keys a reader needs, kept as one float per row while the maps themselves
    are written and dropped slice by slice (a large object's map keys are ~100 MB per GB of dcgm text).

    Answers :meth:`value` as :class:`ExtraIndex` on the whole column would, for every key ``wanted`` accepts.
    """

    def __init__(self, wanted: Callable[[str], bool]) -> None:
        self.wanted = wanted
        self.rows = 0
        #: Per kept key, the slices it appears in: (first row, values of the slice's rows).
        self._pieces: dict[str, list[tuple[int, np.ndarray]]] = {}

    def add(self, extra: pa.Array | pa.ChunkedArray) -> None:
        """Keep the wanted keys of the next rows' ``extra`` map."""
        index = ExtraIndex(extra)
        for name in index.names:
            if self.wanted(name):
                self._pieces.setdefault(name, []).append((self.rows, index.value(name)))
        self.rows += index.rows

    @property
    def names(self) -> Collection[str]:
        return self._pieces.keys()

    def value(self, key: str) -> np.ndarray:
        out = np.full(self.rows, np.nan)
        for start, values in self._pieces.get(key, ()):
            out[start : start + len(values)] = values
        return out


def window_counts(hit: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per window ``[first, last]`` (inclusive), how many samples are hits."""
    total = np.concatenate([[0], np.cumsum(hit, dtype=np.int64)])
    return total[last + 1] - total[first]


def window_reduce(ufunc: np.ufunc, values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per ordered, disjoint window ``[first, last]`` (inclusive), ``ufunc`` reduced over ``values`` in one call.

    With ``np.fmax``/``np.fmin`` NaN is skipped (NaN only for a window without a number).
    """
    if not first.size:
        return np.empty(0, dtype=values.dtype)
    bounds = np.empty(2 * first.size, dtype=np.intp)
    bounds[0::2], bounds[1::2] = first, last + 1
    padded = np.append(values, values[:1])  # ``last + 1`` may be the end: reduceat needs an index inside
    return ufunc.reduceat(padded, bounds)[0::2]
