"""InfluxDB line protocol from Arrow tables, vectorized, byte-identical to influxdb-client's ``Point``.

Same rules as influxdb-client: tags and fields sorted by key, ``,`` ``=`` space and
``\\n`` ``\\t`` ``\\r`` escaped in keys and tag values, null or empty tags and null or
non-finite fields left out, floats as Python's ``str`` without a trailing ``.0``, integers
with ``i``, strings quoted with ``"`` and ``\\`` escaped. Rows without any field are not writable and are dropped.

Tag values first go through :func:`tag_value`: InfluxDB 1.x stores ``\\n`` as two
characters, drops a trailing backslash and cannot parse a backslash before ``,``, and
InfluxQL cannot quote a newline, so a raw tag value would not come back unchanged
and a later version's delete would miss it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from gpulake.schema import CANONICAL_COLUMNS

METRIC_TAGS = ("gpu", "gpu_model", "gpu_uuid", "node", "source")
#: ``metric`` is part of an alert's identity (xid:<code>, a threshold rule's name): two alerts of one kind may
#: start at the same time on one GPU, and a point is identified by its tags and time.
ALERT_TAGS = ("gpu", "gpu_model", "kind", "metric", "node", "severity", "source")
#: ``gpu_episodes`` points: an episode's label set, its id and which record the point is (``alert``: one per
#: per-object alert of the episode, ``closed``: the closed episode), and the alert's source. A few series per
#: episode, so InfluxQL (no joins) can group an episode's points into one row (samples per source first).
EPISODE_TAGS = ("episode_id", "gpu", "kind", "metric", "node", "record", "source")
#: A severity as a number InfluxQL can take the ``max`` of (dashboards map it back to the name).
SEVERITY_RANKS = ("info", "warning", "critical")
#: What ``tag_value`` percent-encodes: ``%`` itself, backslash, C0 controls and DEL.
_TAG_UNSAFE = ("%", "\\", *map(chr, range(0x20)), "\x7f")
_TAG_UNSAFE_RE = "[" + "".join(f"\\x{ord(c):02x}" for c in _TAG_UNSAFE) + "]"  # RE2 hex escapes
_KEY_ESCAPES = ((",", "\\,"), ("=", "\\="), (" ", "\\ "), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r"))


def escape_key(text: str) -> str:
    for char, escaped in _KEY_ESCAPES:
        text = text.replace(char, escaped)
    return text


def tag_value(text: str) -> str:
    """The tag value (or ``extra`` field key) InfluxDB stores for ``text``: ``%``, ``\\`` and controls percent-encoded.

    Injective (distinct names stay distinct) and plain line protocol after it, so the
    value written, the value read back and the value a replace deletes are the same
    in InfluxDB 1.x, 2.x and 3.x. ``new\\nline`` -> ``new%0Aline``, ``a\\`` -> ``a%5C``.
    """
    return "".join(f"%{ord(c):02X}" if c in _TAG_UNSAFE else c for c in text)


def _tag_values(values: pa.Array) -> pa.Array:
    """:func:`tag_value`, vectorized (one scan when nothing needs encoding, the usual case)."""
    if not len(values) or not pc.any(pc.match_substring_regex(values, _TAG_UNSAFE_RE)).as_py():
        return values
    for char in _TAG_UNSAFE:  # "%" first, so the escapes added later are not encoded again
        values = pc.replace_substring(values, char, f"%{ord(char):02X}")
    return values


def escape_string(text: str) -> str:
    """A string field value, quoted."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _escape_tag_values(values: pa.Array) -> pa.Array:
    values = _tag_values(values)
    for char, escaped in _KEY_ESCAPES:
        values = pc.replace_substring(values, char, escaped)
    return values


def _floats(values: pa.Array) -> pa.Array:
    """Python ``str(float)`` minus ``.0``: Arrow's shortest form, Python's for the values where they differ."""
    values = pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))
    text = pc.cast(values, pa.string())
    small = pc.and_(pc.less(pc.abs(values), 1e-4), pc.not_equal(values, 0.0))
    differs = pc.fill_null(pc.or_(pc.match_substring(text, "e"), small), False)
    if pc.any(differs).as_py():
        fixed = [_py_float(v) for v in pc.filter(values, differs).to_pylist()]
        text = pc.replace_with_mask(text, differs, pa.array(fixed, pa.string()))
    return text


def _py_float(value: float) -> str:
    text = str(value)
    return text[:-2] if text.endswith(".0") else text


def _strings(values: pa.Array) -> pa.Array:
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _field(name: str, values: pa.Array) -> pa.Array:
    """``name=value`` per row (null where the value is null)."""
    if pa.types.is_floating(values.type):
        text = _floats(values)
    elif pa.types.is_integer(values.type):
        text = pc.binary_join_element_wise(pc.cast(values, pa.string()), "i", "")
    else:
        text = _strings(values)
    return pc.binary_join_element_wise(escape_key(name) + "=", text, "")


def _tags(table: pa.Table, names: tuple[str, ...]) -> pa.Array:
    """The tag set of each row; each tag encoded once per distinct value, then repeated.

    A tag takes a dozen passes to encode and escape, and an object holds few distinct values of
    it (one node, a few GPUs, kinds and severities), so the passes run over those values only.
    """
    parts = []
    for name in names:
        encoded = table[name].combine_chunks().dictionary_encode()
        values = encoded.dictionary
        present = pc.fill_null(pc.greater(pc.utf8_length(values), 0), False)
        tag = pc.binary_join_element_wise("," + escape_key(name) + "=", _escape_tag_values(values), "")
        parts.append(pc.fill_null(pc.if_else(present, tag, "").take(encoded.indices), ""))  # null: no index
    return pc.binary_join_element_wise(*parts, "")


def _lines(measurement: str, tags: pa.Array, fields: dict[str, pa.Array], times_ms: pa.Array) -> pa.Array:
    ordered = [fields[name] for name in sorted(fields)]
    body = pc.binary_join_element_wise(*ordered, ",", null_handling="skip")
    has_field = pc.greater(pc.utf8_length(body), 0)
    head = pc.binary_join_element_wise(escape_key(measurement), tags, "")
    line = pc.binary_join_element_wise(head, body, pc.cast(times_ms, pa.string()), " ")
    return pc.filter(line, has_field)


def _ms(column: pa.ChunkedArray) -> pa.Array:
    return pc.cast(column.combine_chunks().cast(pa.timestamp("ms", tz="UTC")), pa.int64())


def metrics_lines(table: pa.Table, measurement: str = "gpu_metrics") -> pa.Array:
    """One line per canonical row: tags node/gpu/gpu_uuid/gpu_model/source; numeric, throttle and ``extra`` fields.

    ``extra`` keys come from input headers (a GPU-Z column can be named anything), so they are
    encoded like tag values: a backslash before ``=`` or at the end would make the line unparsable.
    """
    fields = {name: _field(name, table[name].combine_chunks()) for name in CANONICAL_COLUMNS}
    fields["throttle_reasons"] = _field("throttle_reasons", table["throttle_reasons"].combine_chunks())
    extra = table["extra"].combine_chunks()
    for key in pc.unique(extra.keys).to_pylist():
        if key not in fields:
            fields[key] = _field(tag_value(key), pc.map_lookup(extra, pa.scalar(key), "first"))
    return _lines(measurement, _tags(table, METRIC_TAGS), fields, _ms(table["time"]))


def alerts_lines(table: pa.Table, measurement: str = "gpu_alerts") -> pa.Array:
    """One line per alert episode at its start time."""
    duration = pc.divide(pc.cast(pc.subtract(_ms(table["end"]), _ms(table["start"])), pa.float64()), 1000.0)
    strings = ("alert_id", "message", "episode_id")
    fields = {name: _field(name, table[name].combine_chunks()) for name in strings if name in table.column_names}
    fields |= {name: _field(name, table[name].combine_chunks()) for name in ("peak", "threshold", "samples")}
    fields["duration_s"] = _field("duration_s", duration)
    return _lines(measurement, _tags(table, ALERT_TAGS), fields, _ms(table["start"]))


def episode_lines(table: pa.Table, record: str) -> pa.Array:
    """``gpu_episodes`` points of an alerts (``record="alert"``) or closed-episode (``"closed"``) table.

    Both records carry first/last seen (``start_ms``, ``end_ms``), ``severity_rank`` and ``peak``; alert points
    add ``samples`` (an episode's samples are the sum over its alerts), closed points the lifecycle (``state``,
    ``notifications``, ``resolution``). Rows without an ``episode_id`` (no lifecycle) have no episode: dropped.
    """
    table = table.filter(pc.fill_null(pc.greater(pc.utf8_length(table["episode_id"]), 0), False))
    table = table.append_column("record", pa.array([record] * table.num_rows, pa.string()))
    rank = pc.index_in(table["severity"].combine_chunks(), value_set=pa.array(SEVERITY_RANKS))
    fields = {
        "start_ms": _field("start_ms", _ms(table["start"])),
        "end_ms": _field("end_ms", _ms(table["end"])),
        "severity_rank": _field("severity_rank", pc.cast(rank, pa.int64())),
        "peak": _field("peak", table["peak"].combine_chunks()),
    }
    names = ("samples",) if record == "alert" else ("state", "notifications", "resolution")
    fields |= {name: _field(name, table[name].combine_chunks()) for name in names if name in table.column_names}
    return _lines("gpu_episodes", _tags(table, EPISODE_TAGS), fields, _ms(table["start"]))
