"""An object's outputs split by UTC day, written as they come: its metrics, one Parquet file per day, and
its alerts, one JSON Lines body per day of each alert's start.

Rows arrive in slices in table order (node, GPU, time), so the days of one GPU follow each other
and the next GPU starts again at the first day: every day's file stays open until the end, each
slice's rows of a day are that file's next row group, and the slice is dropped after (ADR 0007).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc

from gpulake.output.jsonl import JsonLines
from gpulake.output.parquet import ParquetFile

#: Milliseconds per UTC day (a number: a module-level ``pa.scalar`` would make pyarrow import pandas).
DAY_MS = 86_400_000


class DailyParquet:
    """The Parquet files of one object's rows, one per UTC day."""

    def __init__(self) -> None:
        self._files: dict[int, ParquetFile] = {}

    def write(self, table: pa.Table) -> None:
        """Append a slice of rows (in table order) to the files of the days it covers."""
        # UTC days by integer division (pc.strftime loads the zone database and formats every row)
        days = pc.divide(table.column("time").cast(pa.int64()), pa.scalar(DAY_MS, pa.int64()))
        numbers = sorted(pc.unique(days).to_pylist())
        for number in numbers:
            part = table.filter(pc.equal(days, number)) if len(numbers) > 1 else table
            file = self._files.get(number)
            if file is None:
                file = self._files[number] = ParquetFile(table.schema)
            file.write(part)

    def close(self) -> Iterator[tuple[str, IO[bytes]]]:
        """Per day in date order, its ISO date and the finished file, at its start (closed once handed over)."""
        for number in sorted(self._files):
            day = (dt.date(1970, 1, 1) + dt.timedelta(days=number)).isoformat()
            with self._files.pop(number).close() as body:
                yield day, body


class DailyJsonLines:
    """The alerts bodies of one object, one per UTC day of each alert's ``start``, appended window by window."""

    def __init__(self) -> None:
        self._bodies: dict[str, JsonLines] = {}

    def write(self, records: Iterable[dict[str, object]]) -> None:
        """Append each record to the body of its start's day, in the order given."""
        for day, same_day in itertools.groupby(records, key=lambda record: str(record["start"])[:10]):
            body = self._bodies.get(day)
            if body is None:
                body = self._bodies[day] = JsonLines()
            body.write(same_day)

    def close(self) -> Iterator[tuple[str, JsonLines]]:
        """Per day in date order, its ISO date and its body (to put from :meth:`JsonLines.finished`)."""
        for day in sorted(self._bodies):
            yield day, self._bodies.pop(day)
