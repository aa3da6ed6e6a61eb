"""A CSV section split into cells in place by the compiled reader, instead of Arrow's CSV reader.

Arrow's reader copies every cell into string columns, which the table formats then read
again as numbers and times. ``_number_cells_c.split`` instead records where each cell lies
in the section's text (a rows x (columns + 1) int32 matrix, no copy); columns are read from
there as numbers (``_values``) or times (:func:`local_times`) in one compiled pass each, and
become Arrow strings (``CellColumn.strings``) only when they hold something else. The split
reads exactly what Arrow's reader reads and declines text where the two could differ
(quotes, non-ASCII bytes, a lone carriage return): that text, and every section when the
extension is not built, goes to Arrow's reader, the reference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from gpulake.timeutil import local_to_utc_ms, naive_to_utc_ms

try:  # optional (built by setup.py when a compiler is present); without it Arrow's reader splits
    from gpulake.formats import _number_cells_c
except ImportError:
    _number_cells_c = None

#: Whether sections are split by the compiled reader (tests turn it off to compare with Arrow's).
SPLIT = _number_cells_c is not None

#: The longest section the split takes: its bounds are int32 (Arrow's reader has the same limit per block).
_MAX_TEXT = (1 << 31) - 1
#: A cell's kind as the compiled reader writes it (see _number_cells_c.c).
CELL_NUMBER, CELL_ABSENT, CELL_OTHER = 0, 1, 2


@dataclass
class SplitSection:
    """A section's text, its rows' cell bounds, and the (start, end) of rows of another cell count."""

    text: memoryview
    bounds: np.ndarray
    rejected: list[tuple[int, int]]

    @functools.cached_property
    def numbers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every cell read as ``_number_cells_c.classify`` reads it, in one pass over the rows.

        (values float64, kinds uint8), each columns x rows, and each column's count of
        ``CELL_OTHER`` cells (those the Python rule must read).
        """
        rows, ncols = len(self.bounds), self.bounds.shape[1] - 1
        values = np.empty((ncols, rows), dtype=np.float64)
        kinds = np.empty((ncols, rows), dtype=np.uint8)
        others = np.empty(ncols, dtype=np.int64)
        _number_cells_c.classify_rows(self.bounds, ncols, self.text, values, kinds, others)
        return values, kinds, others


def split(data: bytes, start: int, end: int, ncols: int, drop_first: str | None) -> SplitSection | None:
    """Cell bounds of the rows in ``data[start:end]`` (rows whose trimmed first cell is ``drop_first`` left out).

    None when the compiled reader is not there or declines the text: Arrow's reader reads it.
    """
    if not SPLIT or end - start >= _MAX_TEXT:
        return None
    text = memoryview(data)[start:end]
    lines = _number_cells_c.lines(text)
    bounds = np.empty((lines, ncols + 1), dtype=np.int32)  # pages are touched only for rows written
    rejected = np.empty(2 * lines, dtype=np.int32)
    drop = drop_first.encode() if drop_first is not None else b""
    counts = _number_cells_c.split(text, ncols, drop, bounds, rejected)
    if counts is None:
        return None
    rows, bad = counts
    pairs = rejected[: 2 * bad].reshape(-1, 2).tolist()
    return SplitSection(text, bounds[:rows], [(a, b) for a, b in pairs])


@dataclass
class CellColumn:
    """One column of a split section: read in place, made Arrow strings only when needed."""

    section: SplitSection
    index: int

    def __len__(self) -> int:
        return len(self.section.bounds)

    def strings(self) -> pa.Array:
        """The column as Arrow's CSV reader gives it: untrimmed cells, ``string``, no nulls."""
        bounds = self.section.bounds
        n, ncols = len(bounds), bounds.shape[1] - 1
        if n == 0:
            return pa.array([], pa.string())
        size = int((bounds[:, self.index + 1] - 1 - bounds[:, self.index]).sum())
        data = bytearray(size)
        offsets = np.empty(n + 1, dtype=np.int32)
        _number_cells_c.gather(bounds, ncols, self.index, self.section.text, data, offsets)
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def local_times(col: pa.Array | CellColumn, tz: str) -> pa.Array:
    """:func:`timeutil.local_to_utc_ms` of a column; compiled when every cell is ``YYYY-MM-DD HH:MM:SS``.

    The compiled reader takes only those cells (the Python rule gives them the same instant);
    a column with any other cell is read by the rule as a whole.
    """
    if not isinstance(col, CellColumn):
        return local_to_utc_ms(col, tz)
    n = len(col)
    naive = np.empty(n, dtype=np.int64)
    kinds = np.empty(n, dtype=np.uint8)
    bounds = col.section.bounds
    if n and _number_cells_c.read_times(bounds, bounds.shape[1] - 1, col.index, col.section.text, naive, kinds):
        return local_to_utc_ms(col.strings(), tz)
    return naive_to_utc_ms(pa.array(naive, pa.timestamp("ms")), tz)
