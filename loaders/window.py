"""Which part of the processed layout a sync lists: date partitions since the ledger's high-water mark.

The high-water mark is the newest ``date=`` partition the target's ledger holds (capped at
today, so one object dated in the future cannot hide the present). A sync lists the
partitions from ``mark - lookback_days`` on: an object that lands in an older partition
after the mark passed it (a collector's spool drained days late, a reprocessed raw object)
is loaded only by the event-driven loader or by ``sync --full``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from loaders.source import ProcessedObject, Source
from loaders.target import Target

#: days before the high-water mark a sync lists again, for late objects
LOOKBACK_DAYS = 3


def first_day(target: Target, lookback_days: int | None, today: date | None = None) -> str | None:
    """The first ``YYYY-MM-DD`` partition to list; None means everything (empty ledger or a full sync)."""
    if lookback_days is None:
        return None
    mark = target.high_water_mark()
    if mark is None:
        return None
    newest = min(date.fromisoformat(mark), today or datetime.now(UTC).date())
    return (newest - timedelta(days=lookback_days)).isoformat()


def pending_candidates(source: Source, target: Target, lookback_days: int | None) -> list[ProcessedObject]:
    """The objects a sync compares with the ledger."""
    day = first_day(target, lookback_days)
    return source.list() if day is None else source.list_since(day)
