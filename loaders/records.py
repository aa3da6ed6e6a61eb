"""Reading processed objects into Arrow, and the vectorized encoders the targets share."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gpulake.errors import InputRejected
from gpulake.identity import SORT_KEYS, drop_duplicate_times
from gpulake.schema import METRICS_SCHEMA

ALERTS_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("node", pa.string()),
        ("gpu", pa.string()),
        ("gpu_model", pa.string()),
        ("metric", pa.string()),
        ("start", pa.timestamp("ms", tz="UTC")),
        ("end", pa.timestamp("ms", tz="UTC")),
        ("samples", pa.int64()),
        ("peak", pa.float64()),
        ("threshold", pa.float64()),
        ("source", pa.string()),
        ("source_object", pa.string()),
        ("message", pa.string()),
        ("episode_id", pa.string()),
        ("threshold_source", pa.string()),
    ]
)
#: A closed episode (``episodes/date=…/<id>.json``, ADR 0005): the alert fields plus its lifecycle.
EPISODES_SCHEMA = (
    ALERTS_SCHEMA.append(pa.field("state", pa.string()))
    .append(pa.field("notifications", pa.int64()))
    .append(pa.field("objects", pa.int64()))
    .append(pa.field("resolution", pa.string()))
)


def read_metrics(data: bytes, key: str) -> pa.Table:
    """A metrics Parquet object as a table in the canonical schema, one row per identity, as the databases store it.

    Ingest writes one row per node, GPU, source and time; an object written before that
    rule may repeat one, and then the last row in file order is kept (what an upsert or
    an InfluxDB overwrite would keep), so ``sync`` counts the rows it stores.
    """
    try:
        table = pq.read_table(io.BytesIO(data), partitioning=None)
        table = table.select(METRICS_SCHEMA.names).cast(METRICS_SCHEMA)
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise InputRejected(key, f"not a readable metrics Parquet file ({exc}); reprocess its raw object") from exc
    return drop_duplicate_times(table.sort_by(SORT_KEYS), key)[0]


def read_alerts(data: bytes, key: str) -> pa.Table:
    """An alerts JSON Lines object as a table."""
    rows = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputRejected(key, f"invalid JSON ({exc.msg})", number) from exc
        rows.append(record)
    return _table(rows, ALERTS_SCHEMA)


def read_episode(data: bytes, key: str) -> pa.Table:
    """A closed episode JSON object as a one-row table (``alert_id`` = ``episode_id``)."""
    try:
        record = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputRejected(key, f"invalid JSON ({exc.msg})") from exc
    return _table([{**record, "alert_id": record.get("episode_id"), "source_object": key}], EPISODES_SCHEMA)


def _table(records: list[dict], schema: pa.Schema) -> pa.Table:
    """Records as a table of ``schema`` (absent fields null, ISO times parsed)."""
    columns = [[r.get(f.name) for r in records] for f in schema]
    arrays = [
        _iso_ms(values) if pa.types.is_timestamp(f.type) else pa.array(values, f.type)
        for f, values in zip(schema, columns)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _iso_ms(values: list[str | None]) -> pa.Array:
    """``2026-11-02T08:00:00.000Z`` (the alerts' format) -> timestamp[ms, UTC]."""
    return pc.cast(pa.array(values, pa.string()), pa.timestamp("ms", tz="UTC"))


def escape_json_string(values: pa.Array) -> pa.Array:
    """JSON string bodies (without the quotes) of ``values``: backslash, quote and control characters escaped."""
    out = pc.replace_substring(values, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    if len(out) and pc.any(pc.match_substring_regex(out, "[\\x00-\\x1f]")).as_py():
        for code in range(0x20):
            out = pc.replace_substring(out, chr(code), json.dumps(chr(code))[1:-1])
    return out


def map_to_json(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A ``map<string, double|string>`` column as JSON object text, vectorized (null map -> null)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    keys = escape_json_string(array.keys)
    items = array.items
    if pa.types.is_floating(items.type):
        finite = pc.is_finite(items)
        value_text = pc.if_else(pc.and_kleene(finite, pc.is_valid(items)), pc.cast(items, pa.string()), "null")
    else:
        quoted = pc.binary_join_element_wise('"', escape_json_string(items), '"', "")
        value_text = pc.if_else(pc.is_valid(items), quoted, "null")
    pairs = pc.binary_join_element_wise('"', keys, '":', value_text, "")
    lists = pa.ListArray.from_arrays(array.offsets, pairs, mask=array.is_null())
    body = pc.binary_join(lists, ",")
    return pc.binary_join_element_wise("{", body, "}", "")
