"""Progress over objects and rows: a bar on a terminal, one structured log line per object otherwise."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO


class Progress:
    """Reports each loaded object; draws a bar when ``stream`` is a terminal."""

    def __init__(self, total_objects: int, stream: TextIO | None = None, target: str = "") -> None:
        self.total = total_objects
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.target = target
        self.done = 0
        self.rows = 0
        self.started = time.monotonic()

    def object_done(self, key: str, rows: int, seconds: float) -> None:
        self.done += 1
        self.rows += rows
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            rate = self.rows / max(time.monotonic() - self.started, 1e-9)
            self.stream.write(
                f"\r{self.target} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} objects, "
                f"{self.rows:,} rows ({rate:,.0f} rows/s)"
            )
            self.stream.flush()
        else:
            record = {"event": "object_loaded", "target": self.target, "key": key, "rows": rows}
            record |= {"seconds": round(seconds, 3), "done": self.done, "total": self.total}
            self.stream.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self.tty and self.total:
            self.stream.write("\n")


class QuietProgress(Progress):
    """Counts rows and says nothing: for callers that print their own summary (demo, benchmarks)."""

    def __init__(self) -> None:
        super().__init__(0)

    def object_done(self, key: str, rows: int, seconds: float) -> None:
        self.done += 1
        self.rows += rows

    def close(self) -> None:
        return
