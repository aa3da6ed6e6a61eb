"""sync lists only date partitions since the ledger's high-water mark and asks the ledger only about those keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest
from moto import mock_aws

from loaders import pg_schema
from loaders.postgres import PostgresTarget
from loaders.progress import QuietProgress
from loaders.source import S3Source
from loaders.sync import sync
from loaders.window import first_day
from tests.conftest import script_module

bench = script_module("bench_sync")
BUCKET = "window-processed"
OBJECTS, DAYS = 3_600, 60  # 10 objects per partition and root (6 roots): a full listing needs 4 pages


@pytest.fixture
def loaded(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """A bucket of OBJECTS already-loaded objects (tiny bodies, ledger rows written directly)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = bench.Counted(boto3.client("s3"))
        client.client.create_bucket(Bucket=BUCKET)
        bench.fill_ledger(pg_dsn, bench.fill_bucket(BUCKET, bench.keys(OBJECTS, DAYS)))
        yield client, PostgresTarget(pg_dsn)


def _sync(client: Any, target: PostgresTarget, lookback_days: int | None = 3) -> Any:
    client.lists = 0
    return sync(S3Source(client.client, BUCKET), target, QuietProgress(), lookback_days=lookback_days)


def test_nothing_new_lists_one_page_per_partitioned_folder(loaded: tuple[Any, Any], monkeypatch) -> None:
    client, target = loaded
    execute = target.conn.execute

    def scoped_only(query: str, *args: Any, **kwargs: Any) -> Any:
        if "FROM gpulake_ledger" in query and "WHERE" not in query and "max(" not in query:
            pytest.fail(f"the whole ledger was read: {query}")
        return execute(query, *args, **kwargs)

    monkeypatch.setattr(target.conn, "execute", scoped_only)
    asked: list[str] = []
    real = target.versions
    monkeypatch.setattr(target, "versions", lambda keys: real(asked.extend(keys) or asked))
    report = _sync(client, target)
    # 1 LIST for the source= folders, then 1 per folder (4 sources, alerts/, episodes/), whatever the bucket's size
    assert client.lists == 1 + len(bench.ROOTS)
    assert report.loaded == 0 and report.listed == len(asked) == 4 * 10 * len(bench.ROOTS)  # mark - 3 days .. mark


def test_new_objects_are_loaded_and_full_listing_is_the_backfill(loaded: tuple[Any, Any]) -> None:
    client, target = loaded
    new_key = f"metrics/source=dcgm/date={bench.LAST_DAY}/new.parquet"
    late_key = "metrics/source=gpuz/date=2026-09-01/late.parquet"  # long behind the high-water mark
    for key in (new_key, late_key):
        client.client.put_object(Bucket=BUCKET, Key=key, Body=bench.new_object(key))
    report = _sync(client, target)
    assert (report.loaded, client.lists) == (1, 1 + len(bench.ROOTS))
    full = _sync(client, target, lookback_days=None)
    assert full.loaded == 1 and full.listed == OBJECTS + 2
    assert client.lists >= OBJECTS // 1000
    assert target.versions([new_key, late_key]).keys() == {new_key, late_key}


def test_high_water_mark_is_capped_at_today_and_read_from_an_index(loaded: tuple[Any, Any]) -> None:
    _, target = loaded
    assert target.high_water_mark() == bench.LAST_DAY.isoformat()
    target.conn.execute("ANALYZE gpulake_ledger")
    plan = target.conn.execute(f"EXPLAIN SELECT max({pg_schema.LEDGER_PARTITION}) FROM gpulake_ledger").fetchall()
    assert "gpulake_ledger_partition" in str(plan), plan  # not a scan of every ledger key
    assert first_day(target, 3, today=date(2026, 12, 3)) == "2026-11-27"
    assert first_day(target, 3, today=date(2026, 11, 10)) == "2026-11-07"  # a partition dated in the future
    assert first_day(target, None) is None
