"""Progress: a bar on a terminal, one JSON line per object otherwise."""

from __future__ import annotations

import io
import json

from loaders.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream, target="postgres")
    progress.object_done("metrics/a.parquet", 10, 0.5)
    progress.object_done("alerts/b.jsonl", 3, 0.1)
    progress.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["key"], e["rows"], e["done"], e["total"]) for e in lines] == [
        ("metrics/a.parquet", 10, 1, 2),
        ("alerts/b.jsonl", 3, 2, 2),
    ]
    assert all(e["event"] == "object_loaded" and e["target"] == "postgres" for e in lines)


def test_bar_on_a_terminal() -> None:
    stream = _Terminal()
    progress = Progress(4, stream, target="influxdb")
    progress.object_done("k1", 1000, 0.1)
    progress.object_done("k2", 500, 0.1)
    progress.close()
    frames = stream.getvalue().split("\r")
    assert frames[-1].startswith("influxdb [###############...............] 2/4 objects, 1,500 rows")
    assert stream.getvalue().endswith("\n")
