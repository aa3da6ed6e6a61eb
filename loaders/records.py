"""Reading processed objects into Arrow, and the vectorized encoders the targets share."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from gpulake.errors import InputRejected
from gpulake.identity import drop_duplicate_times, sort_rows
from gpulake.output.parquet import read_parquet_bytes
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
#: One thread: ``sync`` reads in a worker thread while the database works on the other core.
_ALERT_READ = pajson.ReadOptions(use_threads=False)
#: Arrow's JSON reader of alerts: times as text (cast like the line-by-line path), other fields ignored.
_ALERT_PARSE = pajson.ParseOptions(
    explicit_schema=pa.schema(
        [f.with_type(pa.string()) if pa.types.is_timestamp(f.type) else f for f in ALERTS_SCHEMA]
    ),
    unexpected_field_behavior="ignore",
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
        table = read_parquet_bytes(data)
        table = table.select(METRICS_SCHEMA.names).cast(METRICS_SCHEMA)
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise InputRejected(key, f"not a readable metrics Parquet file ({exc}); reprocess its raw object") from exc
    return drop_duplicate_times(sort_rows(table), key)[0]


#: A line that neither is empty nor starts with ``{`` (searched in ``b"\n" + data``). Only objects written as
#: ingest writes them (one object a line, ``\n`` between lines) go to Arrow's JSON reader: a file of ``null``
#: lines crashes pyarrow 26's reader, and the line-by-line reader names the line of an error.
_NOT_AN_OBJECT_LINE = re.compile(rb"\n[^{\n]")
#: JSON Lines ends lines with ``\n`` (or ``\r\n``); ``str.splitlines`` also breaks at U+2028 and U+0085, which
#: ``json.dumps(..., ensure_ascii=False)`` (ingest's alerts writer) leaves raw inside strings.
_LINE_BREAK = re.compile("\r\n|\r|\n")


def read_alerts(data: bytes, key: str) -> pa.Table:
    """An alerts JSON Lines object as a table.

    Arrow's JSON reader parses it, in a tenth of the CPU of ``json.loads`` and dict look-ups per
    line (the benchmark's fleet writes one alert per five metrics rows, each line ~700 bytes).
    What Arrow would read differently from ``json.loads`` line by line (a line that is not an
    object, two objects on one line, a repeated key, a value of another type, a number beyond a
    double) fails the checks here and is read by :func:`_read_alert_lines`, which decides as
    before and names the line of an error.
    """
    data.decode("utf-8")  # Arrow passes invalid UTF-8 through; this raises as the line-by-line reader does
    lines = b"\n" + data
    if b"\r" not in data and _NOT_AN_OBJECT_LINE.search(lines) is None:
        try:
            table = pajson.read_json(pa.BufferReader(data), _ALERT_READ, _ALERT_PARSE)
            if table.num_rows == lines.count(b"\n{"):  # two objects on one line: the line-by-line reader refuses
                return pa.Table.from_arrays(
                    [_iso_ms(table[f.name]) if pa.types.is_timestamp(f.type) else table[f.name] for f in ALERTS_SCHEMA],
                    schema=ALERTS_SCHEMA,
                )
        except pa.ArrowInvalid:
            pass  # the line-by-line reader decides, and names the line
    return _read_alert_lines(data, key)


def _read_alert_lines(data: bytes, key: str) -> pa.Table:
    """An alerts JSON Lines object as a table, one ``json.loads`` per line; an invalid line is named."""
    rows = []
    for number, line in enumerate(_LINE_BREAK.split(data.decode("utf-8")), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputRejected(key, f"invalid JSON ({exc.msg})", number) from exc
        if not isinstance(record, dict):
            raise InputRejected(key, f"not an alert (a JSON {type(record).__name__}, not an object)", number)
        rows.append(record)
    try:
        return _table(rows, ALERTS_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise InputRejected(
            key, f"an alert field holds a value of the wrong type ({exc}); reprocess its raw object"
        ) from exc


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


def _iso_ms(values: list[str | None] | pa.ChunkedArray) -> pa.Array:
    """``2026-11-02T08:00:00.000Z`` (the alerts' format) -> timestamp[ms, UTC]."""
    strings = values if isinstance(values, pa.ChunkedArray) else pa.array(values, pa.string())
    return pc.cast(strings, pa.timestamp("ms", tz="UTC"))


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
