"""Parse helpers for format tests: run a format on bytes and get rows as dicts."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gpulake import formats, schema
from gpulake.context import SourceContext
from gpulake.formats.base import ParseResult

OBJECT_TIME_MS = 1_763_000_000_000  # 2025-11-13T02:13:20Z


def parse(
    data: bytes, fmt: str | None = None, *, key: str = "test/object", tz: str = "UTC", node: str = "node-x"
) -> ParseResult:
    chosen = formats.get(fmt) if fmt else formats.detect(data, key)
    result = chosen.parse(data, SourceContext(key=key, object_time_ms=OBJECT_TIME_MS, tz=tz, node=node))
    for batch in result.batches:
        assert batch.schema == schema.METRICS_SCHEMA
    return result


def parse_file(path: Path, **kwargs: object) -> ParseResult:
    return parse(path.read_bytes(), key=path.name, **kwargs)


def rows(result: ParseResult) -> list[dict]:
    table = pa.Table.from_batches(result.batches, schema=schema.METRICS_SCHEMA)
    out = []
    for row in table.to_pylist():
        row["extra"] = dict(row["extra"] or [])
        row["labels"] = dict(row["labels"] or [])
        out.append(row)
    return out


def utc(row: dict) -> str:
    return row["time"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
