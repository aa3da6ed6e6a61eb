"""One sync: load every object the target's ledger does not hold at its current version."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gpulake.errors import InputRejected
from loaders.errors import ObjectRejected
from loaders.progress import Progress
from loaders.source import ProcessedObject, Source
from loaders.target import Target
from loaders.window import LOOKBACK_DAYS, pending_candidates

#: objects encoded ahead of the one being written (memory: about two objects' encoded bodies)
PREFETCH = 1


@dataclass
class SyncReport:
    """What one sync did."""

    listed: int = 0
    loaded: int = 0
    replaced: int = 0
    rows: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _prepare(source: Source, target: Target, obj: ProcessedObject) -> Any:
    return target.prepare(obj, source.read(obj))


def sync(
    source: Source, target: Target, progress: Progress | None = None, lookback_days: int | None = LOOKBACK_DAYS
) -> SyncReport:
    """Load new and changed objects, metrics before alerts; an object that cannot be read or stored is reported.

    One bad object never blocks the rest: it stays out of the ledger and is tried again next time.

    Only date partitions from the ledger's high-water mark minus ``lookback_days`` are listed, and the
    ledger is asked only about the keys listed (``lookback_days=None``: list everything, for backfill).
    The next object is read and encoded in a worker thread while this one is written.
    """
    started = time.monotonic()
    report = SyncReport()
    objects = pending_candidates(source, target, lookback_days)
    report.listed = len(objects)
    ledger = target.versions(o.key for o in objects)
    pending = [o for o in objects if ledger.get(o.key) != o.version]
    pending.sort(key=lambda o: (o.kind != "metrics", o.key))
    report.skipped = report.listed - len(pending)
    progress = progress or Progress(len(pending), target=target.name)
    progress.total = len(pending)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpulake-prepare") as worker:
        upcoming = [worker.submit(_prepare, source, target, obj) for obj in pending[:PREFETCH]]
        for index, obj in enumerate(pending):
            began = time.monotonic()
            future = upcoming.pop(0)
            if index + PREFETCH < len(pending):
                upcoming.append(worker.submit(_prepare, source, target, pending[index + PREFETCH]))
            try:
                prepared = future.result()
            except InputRejected as exc:
                report.failed.append(str(exc))
                continue
            try:
                rows = target.write(obj, prepared)
            except ObjectRejected as exc:
                report.failed.append(f"{obj.key}: {exc}")
                continue
            report.warnings += target.take_warnings()
            report.loaded += 1
            report.replaced += obj.key in ledger
            report.rows += rows
            progress.object_done(obj.key, rows, time.monotonic() - began)
    progress.close()
    if report.loaded or target.behind():
        target.finish()
    report.seconds = time.monotonic() - started
    return report
