"""One sync: load every object the target's ledger does not hold at its current version."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gpulake.errors import InputRejected
from loaders.progress import Progress
from loaders.source import Source
from loaders.target import Target


@dataclass
class SyncReport:
    """What one sync did."""

    listed: int = 0
    loaded: int = 0
    replaced: int = 0
    rows: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def sync(source: Source, target: Target, progress: Progress | None = None) -> SyncReport:
    """Load new and changed objects, metrics before alerts; unreadable objects are reported, not fatal."""
    started = time.monotonic()
    report = SyncReport()
    objects = source.list()
    report.listed = len(objects)
    ledger = target.loaded()
    pending = [o for o in objects if ledger.get(o.key) != o.version]
    pending.sort(key=lambda o: (o.kind != "metrics", o.key))
    report.skipped = report.listed - len(pending)
    progress = progress or Progress(len(pending), target=target.name)
    progress.total = len(pending)
    for obj in pending:
        began = time.monotonic()
        try:
            rows = target.load(obj, source.read(obj))
        except InputRejected as exc:
            report.failed.append(str(exc))
            continue
        report.loaded += 1
        report.replaced += obj.key in ledger
        report.rows += rows
        progress.object_done(obj.key, rows, time.monotonic() - began)
    progress.close()
    if report.loaded:
        target.finish()
    report.seconds = time.monotonic() - started
    return report
