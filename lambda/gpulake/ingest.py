"""One object in, the processed layout out: the core both the Lambda and the CLI call.

``ingest`` never raises for bad data: a file no format can read (or one that
inflates past the size cap) becomes a quarantine record, bad rows become
quarantine lines, good rows still land. A cut-off gzip lands its complete lines,
records ``truncated_input`` in quarantine and reports the object as failed, so
the sender uploads it again. It raises only ``TransientError`` (the sink failed;
retrying may help).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from gpulake import formats, schema
from gpulake.alerts import AlertConfig, detect
from gpulake.context import SourceContext
from gpulake.decode import complete_lines, decompress, to_utf8, too_large
from gpulake.errors import InputRejected
from gpulake.formats.base import BadRow
from gpulake.limits import SizeLimit
from gpulake.output import layout
from gpulake.output.parquet import to_parquet_bytes
from gpulake.output.sink import Sink

SORT_KEYS = [("node", "ascending"), ("gpu", "ascending"), ("time", "ascending")]
#: Quarantine reason of the cut-off end of a truncated object.
TRUNCATED = "truncated_input"


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
    #: Why the object ended early (its complete lines landed), or None.
    truncated: str | None = None
    #: Whether the alerts file was new or changed (False on a duplicate delivery).
    alerts_changed: bool = False

    @property
    def failed(self) -> str | None:
        """What the sender must fix (rejected or truncated), or None when the object landed whole."""
        return self.rejected or self.truncated


def _jsonl(records: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n" for r in records).encode()


def ingest(
    data: bytes,
    ctx: SourceContext,
    sink: Sink,
    *,
    version: str,
    max_inflated: SizeLimit,
    format_name: str | None = None,
    alert_config: AlertConfig | None = None,
) -> IngestResult:
    """Parse one object and write metrics, alerts and quarantine under deterministic keys.

    ``max_inflated`` caps the decompressed size, overall and per format (see ``gpulake.limits``).
    """
    name = layout.object_name(ctx.key, version)
    result = IngestResult(source_object=ctx.key, name=name)
    try:
        text, cut = _text(data, ctx.key, max_inflated.overall)
        fmt = formats.get(format_name) if format_name else formats.detect(text, ctx.key)
        result.format = fmt.name
        if len(text) > max_inflated.for_format(fmt.name):
            raise too_large(ctx.key, max_inflated.for_format(fmt.name))
        parsed = fmt.parse(text, ctx)
    except InputRejected as exc:
        return reject(exc, ctx.key, sink, version=version)
    del text  # parsed: free the inflated bytes before the table, alerts and Parquet are built
    if cut is not None:
        problem, row = cut
        result.truncated = (
            f"{ctx.key}:{row.line}: {problem}; the complete lines before it landed, upload the file again"
        )
        parsed.bad_rows.append(row)
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


def _text(data: bytes, source: str, max_inflated: int) -> tuple[bytes, tuple[str, BadRow] | None]:
    """UTF-8 text of an object (decoded before detection) and, if it was cut off, why and its quarantine line."""
    inflated = decompress(data, source, max_inflated)
    text = to_utf8(inflated.data)
    if inflated.truncated is None:
        return text, None
    text, rest = complete_lines(text)
    if not formats.has_content(text):
        raise InputRejected(source, f"{inflated.truncated} and holds no complete line; upload the complete file again")
    line = text.count(b"\n") + 1
    return text, (inflated.truncated, BadRow(line, TRUNCATED, rest.decode("utf-8", "replace")))


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
    days = pc.strftime(table.column("time"), format="%Y-%m-%d")
    for day in sorted(set(days.to_pylist())):
        part = table.filter(pc.equal(days, day))
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
