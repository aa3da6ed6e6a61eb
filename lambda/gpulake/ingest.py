"""One object in, the processed layout out: the core both the Lambda and the CLI call.

``ingest`` never raises for bad data: a file no format can read becomes a
quarantine record, bad rows become quarantine lines, good rows still land.
It raises only ``TransientError`` (the sink failed; retrying may help).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from gpulake import formats, schema
from gpulake.alerts import AlertConfig, detect
from gpulake.context import SourceContext
from gpulake.decode import decompress
from gpulake.errors import InputRejected
from gpulake.output import layout
from gpulake.output.parquet import to_parquet_bytes
from gpulake.output.sink import Sink

SORT_KEYS = [("node", "ascending"), ("gpu", "ascending"), ("time", "ascending")]


@dataclass
class IngestResult:
    """What happened to one object (counts feed metrics, the CLI summary and tests)."""

    source_object: str
    name: str
    format: str | None = None
    rows: int = 0
    bad_rows: int = 0
    alerts: list[dict[str, object]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    #: The reason the whole object was rejected, or None.
    rejected: str | None = None
    #: Whether the alerts file was new or changed (False on a duplicate delivery).
    alerts_changed: bool = False


def _jsonl(records: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n" for r in records).encode()


def ingest(
    data: bytes,
    ctx: SourceContext,
    sink: Sink,
    *,
    version: str,
    format_name: str | None = None,
    alert_config: AlertConfig | None = None,
) -> IngestResult:
    """Parse one object and write metrics, alerts and quarantine under deterministic keys."""
    name = layout.object_name(ctx.key, version)
    result = IngestResult(source_object=ctx.key, name=name)
    try:
        raw = decompress(data, ctx.key)
        fmt = formats.get(format_name) if format_name else formats.detect(raw, ctx.key)
        result.format = fmt.name
        parsed = fmt.parse(raw, ctx)
    except InputRejected as exc:
        return reject(exc, ctx.key, sink, version=version)
    table = pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA).sort_by(SORT_KEYS)
    result.rows = table.num_rows
    result.bad_rows = len(parsed.bad_rows)
    if table.num_rows:
        _write_metrics(sink, result, table, fmt.name, name)
        result.alerts = detect(table, alert_config)
        _write_alerts(sink, result, name)
    if parsed.bad_rows:
        lines = [row.to_record(ctx.key) for row in parsed.bad_rows]
        _put(sink, result, layout.quarantine_key(name), _jsonl(lines), "application/x-ndjson")
    return result


def reject(exc: InputRejected, key: str, sink: Sink, *, version: str) -> IngestResult:
    """Record that a whole object could not be read: one quarantine line with the reason."""
    name = layout.object_name(key, version)
    result = IngestResult(source_object=key, name=name, rejected=str(exc))
    record = {"source_object": key, "line": exc.line, "reason": exc.problem, "rejected": True}
    _put(sink, result, layout.quarantine_key(name), _jsonl([record]), "application/x-ndjson")
    return result


def _put(sink: Sink, result: IngestResult, key: str, body: bytes, content_type: str) -> None:
    sink.put(key, body, content_type)
    result.keys.append(key)


def _write_metrics(sink: Sink, result: IngestResult, table: pa.Table, source: str, name: str) -> None:
    # UTC days by integer division (pc.strftime loads the zone database and formats every row)
    days = pc.divide(table.column("time").cast(pa.int64()), pa.scalar(86_400_000, pa.int64()))
    for number in sorted(pc.unique(days).to_pylist()):
        day = (dt.date(1970, 1, 1) + dt.timedelta(days=number)).isoformat()
        part = table.filter(pc.equal(days, number))
        _put(
            sink,
            result,
            layout.metrics_key(source, day, name),
            to_parquet_bytes(part),
            "application/vnd.apache.parquet",
        )


def _write_alerts(sink: Sink, result: IngestResult, name: str) -> None:
    by_day: dict[str, list[dict[str, object]]] = defaultdict(list)
    for alert in result.alerts:
        by_day[str(alert["start"])[:10]].append(alert)
    for day, alerts in sorted(by_day.items()):
        key = layout.alerts_key(day, name)
        body = _jsonl(alerts)
        if sink.get(key) != body:
            result.alerts_changed = True
        _put(sink, result, key, body, "application/x-ndjson")
