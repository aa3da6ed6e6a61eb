"""Normalisation of cell values shared by the table formats (one place, not per parser).

Handles what vendors print instead of numbers: ``N/A``, ``[N/A]``,
``[Not Supported]``, ``-``, units inside values (``45 W``, ``1024 MiB``, ``22 %``),
hex bitmasks (``0x0000000000000004``) and ``Active``/``Not Active`` style flags.
Value rule (the same as dcgm's): NaN in any spelling means "no value" (null); ``inf`` and
numbers too large for a double (``1e309``) are impossible readings, like text in a number
column, so their row goes to quarantine. Everything here is vectorised with
pyarrow.compute: it runs once per column, not per cell.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulake.formats._cells import CELL_ABSENT as _CELL_ABSENT
from gpulake.formats._cells import CELL_NUMBER as _CELL_NUMBER
from gpulake.formats._cells import CELL_OTHER as _CELL_OTHER
from gpulake.formats._cells import CellColumn, _number_cells_c

#: Whether the compiled cell reader is in use (else the reference reads every cell).
COMPILED = _number_cells_c is not None

#: tokens that mean "no value"; made an Arrow array on first use, not at import: any ``pa.array``
#: call makes pyarrow import pandas when it is installed (1.6 s), so the module level has none
NULL_TOKENS = ("", "-", "N/A", "n/a", "NA", "nan", "NaN", "Unknown")


@functools.cache
def _null_tokens() -> pa.Array:
    return pa.array(NULL_TOKENS, pa.string())


FLAG_VALUES = {
    "Active": 1.0,
    "Not Active": 0.0,
    "Enabled": 1.0,
    "Disabled": 0.0,
    "Yes": 1.0,
    "No": 0.0,
}
_NUMBER = r"^(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>%|[A-Za-z]+)?$"
_HEX = r"^0[xX][0-9A-Fa-f]{1,16}$"
_NAN = r"^[-+]?nan$"

#: Earliest and latest sample times accepted; rows outside go to quarantine.
MIN_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z


@dataclass(frozen=True)
class NumericColumn:
    """A column read as numbers: ``values`` (float64, null where absent) and ``bad``
    (true where the cell held something that is neither a number nor a known
    'no value' token)."""

    values: pa.Array
    bad: pa.Array


def impossible(value: float, low: float, high: float) -> str:
    """Quarantine reason for a reading outside its physical range."""
    return f"impossible value {value:g} (possible: {low:g}..{high:g})"


def trim(col: pa.Array) -> pa.Array:
    """Trim padding and turn 'no value' tokens (``N/A``, ``[...]``, NaN in any case or sign) into nulls."""
    col = pc.utf8_trim_whitespace(col.cast(pa.string()))
    bracketed = pc.and_(pc.starts_with(col, "["), pc.ends_with(col, "]"))
    nan = pc.match_substring_regex(col, _NAN, ignore_case=True)
    absent = pc.or_(pc.or_(pc.is_in(col, value_set=_null_tokens()), bracketed), nan)
    return pc.if_else(pc.fill_null(absent, False), pa.scalar(None, pa.string()), col)


def _clean_numbers(col: pa.Array) -> NumericColumn | None:
    """Fast path for a column of plain numbers (the common case): one cast, no regex."""
    try:
        values = col.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pc.any(pc.is_inf(values)).as_py() or pc.any(pc.is_nan(values)).as_py():
        return None  # "inf"/"nan" spellings: the regex path decides what they are
    return NumericColumn(values=values, bad=pa.array(np.zeros(len(col), dtype=bool)))


def to_numbers_python(col: pa.Array) -> NumericColumn:
    """Read a string column as float64, reporting cells that are not numbers: the reference rule."""
    col = trim(col)
    clean = _clean_numbers(col)
    if clean is not None:
        return clean
    parts = pc.extract_regex(col, _NUMBER)
    matched = pc.fill_null(parts.is_valid(), False)
    number = pc.if_else(matched, pc.struct_field(parts, "num"), pa.scalar(None, pa.string()))
    values = number.cast(pa.float64())
    flags = pc.fill_null(pc.is_in(col, value_set=pa.array(list(FLAG_VALUES))), False)
    if pc.any(flags).as_py():
        flag_values = pa.array([FLAG_VALUES.get(v) for v in col.to_pylist()], pa.float64())
        values = pc.if_else(flags, flag_values, values)
    hexes = pc.fill_null(pc.match_substring_regex(col, _HEX), False)
    if pc.any(hexes).as_py():
        hex_values = pa.array(
            [float(int(v, 16)) if ok else None for v, ok in zip(col.to_pylist(), hexes.to_pylist())],
            pa.float64(),
        )
        values = pc.if_else(hexes, hex_values, values)
    finite = pc.fill_null(pc.is_finite(values), True)
    values = pc.if_else(finite, values, pa.scalar(None, pa.float64()))
    unreadable = pc.and_(col.is_valid(), pc.invert(pc.or_(pc.or_(matched, flags), hexes)))
    bad = pc.or_(pc.fill_null(unreadable, False), pc.invert(finite))
    return NumericColumn(values=values, bad=bad)


def to_numbers_compiled(col: pa.Array) -> NumericColumn:
    """:func:`to_numbers_python`'s result in one compiled pass over the cells (``_number_cells_c``).

    The compiled code reads only the unambiguous cells (a plain number, ``""``, ``-``); the
    others (units, hex, flags, NaN/inf spellings, Unicode spaces, text) go to the reference,
    so the two paths agree by construction. A column that is not plain ``string`` (none from
    the CSV reader) is read by the reference alone.
    """
    if not COMPILED or col.type != pa.string():
        return to_numbers_python(col)
    n = len(col)
    values = np.zeros(n, dtype=np.float64)
    kinds = np.zeros(n, dtype=np.uint8)
    _, offsets, data = col.buffers()
    if n:
        offset_view = np.frombuffer(offsets, dtype=np.int32, count=n + 1, offset=col.offset * 4)
        others = _number_cells_c.classify(offset_view, data if data is not None else b"", values, kinds)
    else:
        others = 0
    if col.null_count:
        kinds[~col.is_valid().to_numpy(zero_copy_only=False)] = _CELL_ABSENT
    bad = np.zeros(n, dtype=bool)
    if others:
        rest_at = np.flatnonzero(kinds == _CELL_OTHER)
        rest = to_numbers_python(col.take(pa.array(rest_at)))
        rest_values = rest.values.to_numpy(zero_copy_only=False)
        values[rest_at] = np.nan_to_num(rest_values, nan=0.0)
        kinds[rest_at] = np.where(np.isnan(rest_values), _CELL_ABSENT, _CELL_NUMBER)
        bad[rest_at] = rest.bad.to_numpy(zero_copy_only=False)
    return _numeric(values, kinds, bad)


def _numeric(values: np.ndarray, kinds: np.ndarray, bad: np.ndarray) -> NumericColumn:
    absent = kinds != _CELL_NUMBER
    return NumericColumn(values=pa.array(values, mask=absent if absent.any() else None), bad=pa.array(bad))


def cell_numbers(col: CellColumn) -> NumericColumn:
    """:func:`to_numbers` of a column of a split section, read in place when every cell is unambiguous.

    A column with any other cell (units, flags, text...) is made Arrow strings and read by
    :func:`to_numbers` as a whole, so the answer is the rule's by construction.
    """
    values, kinds, others = col.section.numbers
    if others[col.index]:
        return to_numbers(col.strings())
    return _numeric(values[col.index], kinds[col.index], np.zeros(len(col), dtype=bool))


#: Read a string column as float64 (null where absent), with the cells that are not numbers:
#: compiled when the extension is built, else the reference.
to_numbers = to_numbers_compiled if COMPILED else to_numbers_python


def outside(values: pa.Array, low: float, high: float) -> np.ndarray:
    """True where a number lies outside ``low..high`` (nulls are inside: no reading)."""
    arr = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)  # a float64 column as it is
    return (arr < low) | (arr > high)  # NaN (null) compares false both ways


def in_time_range(time_ms: pa.Array) -> pa.Array:
    """True where a sample time is plausible (2000 <= t < 2100)."""
    ok = pc.and_(pc.greater_equal(time_ms, MIN_TIME_MS), pc.less(time_ms, MAX_TIME_MS))
    return pc.fill_null(ok, False)


def bits_from_flags(flags: dict[int, pa.Array], n: int) -> pa.Array:
    """OR per-bit 0/1 columns into one int64 bitmask (null where no flag is known)."""
    mask = np.zeros(n, dtype=np.int64)
    known = np.zeros(n, dtype=bool)
    for bit, col in flags.items():
        arr = col.to_numpy(zero_copy_only=False).astype(np.float64)
        valid = ~np.isnan(arr)
        known |= valid
        mask |= np.where(valid & (arr > 0), bit, 0)
    return pa.array(mask, pa.int64(), mask=~known)


@dataclass
class ReadColumns:
    """Columns of one table section sorted into numbers and text, plus bad rows."""

    numbers: dict[str, pa.Array]
    text: dict[str, pa.Array]
    #: Row -> the first column whose cell was not a number (rows whose cells all are, absent).
    bad_column: dict[int, str]


def read_columns(columns: dict[str, pa.Array | CellColumn], numeric: set[str]) -> ReadColumns:
    """Read every column as numbers where it holds numbers, as text otherwise.

    Columns in ``numeric`` (the canonical ones) must be numbers: a cell that is
    not marks its row bad. Other columns are numbers when at least half their
    non-empty cells are; the rest of their cells then mark rows bad too. Columns
    of names, ids and versions stay text, so nothing is dropped.
    """
    bad_column: dict[int, str] = {}
    numbers: dict[str, pa.Array] = {}
    text: dict[str, pa.Array] = {}
    for name, col in columns.items():
        parsed = cell_numbers(col) if isinstance(col, CellColumn) else to_numbers(col)
        bad_count = pc.sum(parsed.bad).as_py() or 0
        present = pc.sum(parsed.values.is_valid()).as_py() or 0
        if name in numeric or bad_count == 0 or present >= bad_count:
            numbers[name] = parsed.values
            if bad_count:
                for i in np.flatnonzero(parsed.bad.to_numpy(zero_copy_only=False)).tolist():
                    bad_column.setdefault(i, name)
        else:
            text[name] = trim(col.strings() if isinstance(col, CellColumn) else col)
    return ReadColumns(numbers, text, bad_column)
