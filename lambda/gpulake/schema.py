"""The canonical ``metrics`` schema: the contract every other part binds to.

One row per GPU (or MIG instance) per sample time. Loaders, Terraform's Glue
table and the report all read this module's column list, so changing a column
here is a breaking change (see ``docs/adr/0001-canonical-schema.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SOURCES = ("dcgm", "gpuz", "nvidia-smi", "thermal-csv")

#: Canonical numeric columns, in schema order, with their unit.
CANONICAL_UNITS: dict[str, str] = {
    "gpu_temp_c": "°C",
    "mem_temp_c": "°C",
    "power_w": "W",
    "util_pct": "%",
    "sm_clock_mhz": "MHz",
    "mem_clock_mhz": "MHz",
    "fb_used_mib": "MiB",
}
CANONICAL_COLUMNS = tuple(CANONICAL_UNITS)
#: Readings a GPU can physically produce, per canonical column in its unit (bounds included).
#: A value outside is impossible (a broken sensor, a flipped byte, a unit mix-up): the line
#: or row carrying it goes to quarantine, in every format (docs/formats.md, "Values").
PHYSICAL_RANGE: dict[str, tuple[float, float]] = {
    "gpu_temp_c": (-273.15, 1000.0),
    "mem_temp_c": (-273.15, 1000.0),
    "power_w": (0.0, 100_000.0),
    "util_pct": (0.0, 100.0),
    "sm_clock_mhz": (0.0, 100_000.0),
    "mem_clock_mhz": (0.0, 100_000.0),
    "fb_used_mib": (0.0, float(2**30)),
}
#: ``throttle_reasons`` is an NVML bitmask: a non-negative whole number exact in a double.
THROTTLE_RANGE = (0.0, float(2**53))
#: The range of any other number (``extra``, ``throttle_reasons``): finite. ``inf`` and
#: overflowing spellings such as ``1e309`` are impossible readings too; NaN means "no value".
FINITE_RANGE = (-1.7976931348623157e308, 1.7976931348623157e308)
IDENTITY_COLUMNS = ("node", "gpu", "gpu_uuid", "gpu_model", "source")

#: Control characters (C0 and DEL) are not stored in any string of the table: PostgreSQL
#: text cannot hold NUL, InfluxDB line protocol cannot hold a newline or tab in a tag, and
#: they are invisible in Grafana. Each becomes U+FFFD, so the value stays recognisably damaged.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
CONTROL_REPLACEMENT = "\ufffd"

EXTRA_TYPE = pa.map_(pa.string(), pa.float64())
LABELS_TYPE = pa.map_(pa.string(), pa.string())
TIME_TYPE = pa.timestamp("ms", tz="UTC")

METRICS_SCHEMA = pa.schema(
    [
        pa.field("time", TIME_TYPE, nullable=False),
        pa.field("node", pa.string(), nullable=False),
        pa.field("gpu", pa.string(), nullable=False),
        pa.field("gpu_uuid", pa.string()),
        pa.field("gpu_model", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        *[pa.field(name, pa.float64()) for name in CANONICAL_COLUMNS],
        pa.field("throttle_reasons", pa.int64()),
        pa.field("extra", EXTRA_TYPE),
        pa.field("labels", LABELS_TYPE),
        pa.field("source_object", pa.string(), nullable=False),
    ]
)

ColumnLike = pa.Array | pa.ChunkedArray | Sequence | np.ndarray | str | None


def whole(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array, without a copy when it is one chunk already.

    ``combine_chunks`` copies even a single chunk: for the ``extra`` map of a 1 GB dcgm
    object that is ~130 MB more at the peak, once per reader.
    """
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks() if column.num_chunks else pa.array([], column.type)


def codes(column: pa.Array | pa.ChunkedArray) -> tuple[list[str | None], np.ndarray]:
    """A string column as its distinct values and, per row, the index of the row's value (a null's is the
    index of a ``None`` listed last, when the column has nulls).

    Rows grouped by integers in numpy (runs, per-group maxima) instead of an Arrow ``group_by``,
    whose first call starts Arrow's query engine (tens of ms) for a few thousand rows.
    """
    encoded = pc.dictionary_encode(whole(column))
    distinct: list[str | None] = encoded.dictionary.to_pylist()
    indices = encoded.indices
    if indices.null_count:
        indices = pc.fill_null(indices, len(distinct))
        distinct.append(None)
    return distinct, indices.to_numpy(zero_copy_only=False)


def gpu_identity_codes(table: pa.Table) -> tuple[list[str | None], np.ndarray]:
    """:func:`codes` of each row's GPU identity: its UUID when known, else its ``gpu`` (what the episodes and
    the carried gauges key a GPU by)."""
    uuid = pc.fill_null(table.column("gpu_uuid"), "")
    return codes(pc.if_else(pc.equal(uuid, ""), table.column("gpu"), uuid))


def _column(value: ColumnLike, n: int, type_: pa.DataType) -> pa.Array:
    """Broadcast a scalar or convert a sequence to an Arrow array of ``type_`` (None and NaN become null)."""
    if value is None or isinstance(value, str):
        return pa.repeat(pa.scalar(value, type_), n) if value is not None else pa.nulls(n, type_)
    if isinstance(value, pa.ChunkedArray):
        value = whole(value)
    if isinstance(value, pa.Array):
        return value if value.type == type_ else value.cast(type_)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return pa.array(value, type=type_, mask=np.isnan(value))  # NaN is null: an explicit mask
    return pa.array(value, type=type_, from_pandas=True)


def _non_empty(matrix: np.ndarray) -> np.ndarray:
    return (matrix != None) & (matrix != "")  # noqa: E711 - element-wise on an object array


def _map(n: int, columns: Mapping[str, ColumnLike], map_type: pa.MapType) -> pa.MapArray:
    """Stack named columns into one map column, keeping each row's present entries.

    Keys come out in sorted order so the same input always gives the same bytes.
    """
    names = sorted(columns)
    numeric = pa.types.is_floating(map_type.item_type)
    matrix = np.empty((n, len(names)), dtype=np.float64 if numeric else object)
    for j, name in enumerate(names):
        value = columns[name]
        numpy_floats = numeric and isinstance(value, np.ndarray) and value.dtype.kind == "f"
        matrix[:, j] = value if numpy_floats else _column(value, n, map_type.item_type).to_numpy(zero_copy_only=False)
    return matrix_map(names, matrix, map_type)


def matrix_map(names: list[str], matrix: np.ndarray, map_type: pa.MapType) -> pa.MapArray:
    """The map of a rows x ``names`` matrix (names sorted): per row, its present entries in name order.

    Present: not NaN (numbers), neither None nor empty (texts). Built with boolean masks, so besides
    the map itself only the mask, a running count and one key index per entry are allocated.
    """
    rows, width = matrix.shape
    if not rows or not width:
        empty = pa.array(np.zeros(rows + 1, dtype=np.int32))
        return pa.MapArray.from_arrays(empty, pa.array([], pa.string()), pa.array([], map_type.item_type))
    keep = ~np.isnan(matrix) if matrix.dtype.kind == "f" else _non_empty(matrix)
    # running count of kept entries, read at each row's end (a per-row sum over few columns is 10x slower)
    offsets = np.zeros(rows + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(keep.ravel(), dtype=np.int32)[width - 1 :: width]
    items = pa.array(matrix[keep], map_type.item_type)  # row-major: each row's entries in name order
    key_index = np.broadcast_to(np.arange(width, dtype=np.int32), matrix.shape)[keep]
    del keep
    keys = pa.array(names, pa.string()).take(pa.array(key_index))
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), keys, items)


def numeric_map(n: int, columns: Mapping[str, ColumnLike]) -> pa.MapArray:
    """``map<string,double>`` of each row's non-null numbers (the ``extra`` column)."""
    return _map(n, columns, EXTRA_TYPE)


def string_map(n: int, columns: Mapping[str, ColumnLike]) -> pa.MapArray:
    """``map<string,string>`` of each row's non-empty texts (the ``labels`` column)."""
    return _map(n, columns, LABELS_TYPE)


def _has_control(col: pa.Array) -> bool:
    """Whether any byte of a string array's data is a control character (a byte scan, no regex).

    In UTF-8 the bytes 0x00-0x1F and 0x7F only ever encode those characters. A sliced
    array's buffer may hold bytes outside the slice: at worst the regex then runs for nothing.
    """
    data = col.buffers()[2]
    if data is None or data.size == 0:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    return any(_control_byte(raw[start : start + _SCAN_STEP]) for start in range(0, len(raw), _SCAN_STEP))


#: Bytes compared per step in :func:`_has_control`: the comparison's temporary stays this small
#: (whole, it was twice the data: 170 MB for the ``extra`` keys of a 1 GB dcgm object).
_SCAN_STEP = 1 << 20


def _control_byte(raw: np.ndarray) -> bool:
    return bool((raw < 0x20).any() or (raw == 0x7F).any())


def clean_text(col: pa.Array) -> pa.Array:
    """A string column with every control character replaced (see ``CONTROL_CHARACTERS``)."""
    if not _has_control(col):
        return col
    return pc.replace_substring_regex(col, CONTROL_CHARACTERS, CONTROL_REPLACEMENT)


def clean_name(value: str) -> str:
    """One string as :func:`clean_text` stores it (control characters replaced)."""
    return re.sub(CONTROL_CHARACTERS, CONTROL_REPLACEMENT, value)


def _text_column(value: ColumnLike, n: int) -> pa.Array:
    """A cleaned string column; a scalar (the object's node, source, key) is cleaned once, then broadcast."""
    if isinstance(value, str):
        return _column(clean_name(value), n, pa.string())
    return clean_text(_column(value, n, pa.string()))


def _clean_map(col: pa.MapArray) -> pa.MapArray:
    """A map column with control characters replaced in its keys (and items, if strings)."""
    if col.offset:
        col = pa.concat_arrays([col])  # unsliced, so offsets, keys and items line up
    raw_keys, raw_items = col.keys, col.items
    keys = clean_text(raw_keys)
    items = clean_text(raw_items) if pa.types.is_string(raw_items.type) else raw_items
    if keys is raw_keys and items is raw_items:
        return col
    return pa.MapArray.from_arrays(col.offsets, keys, items)


def assemble(
    n: int,
    *,
    time_ms: ColumnLike,
    identity: Mapping[str, ColumnLike],
    canonical: Mapping[str, ColumnLike],
    throttle_reasons: ColumnLike = None,
    extra: pa.MapArray | None = None,
    labels: pa.MapArray | None = None,
    source_object: str,
) -> pa.RecordBatch:
    """Assemble one canonical ``metrics`` batch from per-column pieces.

    Formats hand over only what they have; everything missing becomes null, so
    every format's output has exactly :data:`METRICS_SCHEMA`. This is also where the
    control-character rule is applied, once for every format.
    """
    unknown = set(canonical) - set(CANONICAL_COLUMNS)
    if unknown:
        raise ValueError(f"not canonical columns: {sorted(unknown)}")
    time = _column(time_ms, n, pa.int64()).cast(TIME_TYPE)
    arrays = [time]
    for name in IDENTITY_COLUMNS:
        arrays.append(_text_column(identity.get(name), n))
    arrays.extend(_column(canonical.get(name), n, pa.float64()) for name in CANONICAL_COLUMNS)
    arrays.append(_column(throttle_reasons, n, pa.int64()))
    arrays.append(_clean_map(extra if extra is not None else numeric_map(n, {})))
    arrays.append(_clean_map(labels if labels is not None else string_map(n, {})))
    arrays.append(_text_column(source_object, n))
    return pa.RecordBatch.from_arrays(arrays, schema=METRICS_SCHEMA)


def empty_metrics() -> pa.Table:
    """A zero-row table with the canonical schema."""
    return METRICS_SCHEMA.empty_table()
