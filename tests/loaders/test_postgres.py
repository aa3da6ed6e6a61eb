"""PostgreSQL 15 target against a real throwaway cluster: exact values, exactly once, replacement, migrations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loaders import pg_schema
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource
from loaders.sync import sync
from tests.loaders.data import TRICKY_NODES, metrics_table, write_metrics

NUMERIC = ["gpu_temp_c", "mem_temp_c", "power_w", "util_pct", "sm_clock_mhz", "mem_clock_mhz", "fb_used_mib"]


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and (a == b or (math.isnan(a) and math.isnan(b)))
    )


def test_values_read_back_equal_the_parquet(fleet_output: Path, pg_target: PostgresTarget) -> None:
    report = sync(LocalSource(fleet_output), pg_target)
    expected = metrics_table(fleet_output)
    assert report.failed == []
    rows = pg_target.conn.execute(
        f"SELECT node, gpu, source, time, gpu_uuid, gpu_model, {', '.join(NUMERIC)}, throttle_reasons, extra, labels "
        "FROM gpu_metrics ORDER BY node, gpu, source, time"
    ).fetchall()
    assert len(rows) == expected.num_rows > 1000
    want = expected.to_pylist()
    for got, exp in zip(rows, want):
        assert got[:4] == (exp["node"], exp["gpu"], exp["source"], exp["time"])
        assert got[4:6] == (exp["gpu_uuid"], exp["gpu_model"])
        assert all(_same(g, exp[name]) for g, name in zip(got[6:13], NUMERIC))
        assert got[13] == exp["throttle_reasons"]
        assert got[14] == {k: (None if v is None or not math.isfinite(v) else v) for k, v in exp["extra"]}
        assert got[15] == dict(exp["labels"])


def test_alerts_loaded_once_each(fleet_output: Path, pg_target: PostgresTarget) -> None:
    sync(LocalSource(fleet_output), pg_target)
    lines = [
        json.loads(line) for p in (fleet_output / "alerts").rglob("*.jsonl") for line in p.read_text().splitlines()
    ]
    count, distinct = pg_target.conn.execute("SELECT count(*), count(DISTINCT alert_id) FROM gpu_alerts").fetchone()
    assert count == distinct == len({a["alert_id"] for a in lines}) > 0
    sample = lines[0]
    row = pg_target.conn.execute(
        "SELECT kind, severity, node, gpu, samples, peak, message FROM gpu_alerts WHERE alert_id = %s",
        (sample["alert_id"],),
    ).fetchone()
    assert row == (
        sample["kind"], sample["severity"], sample["node"], sample["gpu"], sample["samples"], sample["peak"],
        sample["message"],
    )  # fmt: skip


def test_second_sync_writes_nothing(fleet_output: Path, pg_target: PostgresTarget) -> None:
    first = sync(LocalSource(fleet_output), pg_target)
    ledger = pg_target.conn.execute("SELECT object_key, version, loaded_at FROM gpulake_ledger ORDER BY 1").fetchall()
    inserted = pg_target.conn.execute("SELECT sum(n_tup_ins) FROM pg_stat_user_tables").fetchone()[0]
    second = sync(LocalSource(fleet_output), pg_target)
    assert first.loaded == first.listed > 0
    assert (second.loaded, second.skipped, second.rows) == (0, first.listed, 0)
    assert (
        pg_target.conn.execute("SELECT object_key, version, loaded_at FROM gpulake_ledger ORDER BY 1").fetchall()
        == ledger
    )
    assert pg_target.conn.execute("SELECT sum(n_tup_ins) FROM pg_stat_user_tables").fetchone()[0] == inserted


def test_same_object_twice_and_overlapping_objects_do_not_duplicate(tmp_path: Path, pg_target: PostgresTarget) -> None:
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/a.parquet", ["n1", "n2"])
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/b.parquet", ["n2", "n3"])  # n2 rows collide
    report = sync(LocalSource(tmp_path), pg_target)
    assert report.loaded == 2
    assert pg_target.conn.execute("SELECT count(*) FROM gpu_metrics").fetchone()[0] == 9
    owner = pg_target.conn.execute("SELECT DISTINCT object_key FROM gpu_metrics WHERE node = 'n2'").fetchall()
    assert owner == [("metrics/source=dcgm/date=2026-11-02/b.parquet",)]


def test_rewritten_object_replaces_its_rows(tmp_path: Path, pg_target: PostgresTarget) -> None:
    key = "metrics/source=dcgm/date=2026-11-02/x.parquet"
    write_metrics(tmp_path, key, ["n1", "n2"], n=5)
    sync(LocalSource(tmp_path), pg_target)
    write_metrics(tmp_path, key, ["n1"], n=2)
    report = sync(LocalSource(tmp_path), pg_target)
    assert (report.loaded, report.replaced) == (1, 1)
    rows = pg_target.conn.execute("SELECT node, count(*) FROM gpu_metrics GROUP BY node").fetchall()
    assert rows == [("n1", 2)]
    assert pg_target.conn.execute("SELECT rows FROM gpulake_ledger WHERE object_key = %s", (key,)).fetchone() == (2,)


def test_awkward_names_stored_verbatim(tmp_path: Path, pg_target: PostgresTarget) -> None:
    nodes = [*TRICKY_NODES, "new\nline", "tab\there"]
    table = write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/tricky.parquet", nodes, n=1)
    sync(LocalSource(tmp_path), pg_target)
    stored = pg_target.conn.execute("SELECT node, labels->>'Hostname' FROM gpu_metrics ORDER BY node").fetchall()
    hostnames = [dict(labels)["Hostname"] for labels in table["labels"].to_pylist()]
    assert stored == sorted(zip(table["node"].to_pylist(), hostnames))


def test_episode_ids_and_closed_episodes_load(lifecycle_output: Path, pg_target: PostgresTarget) -> None:
    # GIVEN an hour of one node's 5-minute uploads processed with the episode lifecycle
    out = lifecycle_output
    closed = [json.loads(p.read_text()) for p in (out / "episodes").rglob("*.json")]
    assert closed
    # WHEN it is synced
    sync(LocalSource(out), pg_target)
    # THEN every alert row names its episode and every closed episode is a gpu_episodes row
    missing = pg_target.conn.execute("SELECT count(*) FROM gpu_alerts WHERE episode_id IS NULL").fetchone()[0]
    assert missing == 0
    rows = pg_target.conn.execute(
        "SELECT episode_id, state, samples, kind, resolution FROM gpu_episodes ORDER BY 1"
    ).fetchall()
    assert rows == sorted((e["episode_id"], "closed", e["samples"], e["kind"], e["resolution"]) for e in closed)
    assert {e["resolution"] for e in closed} <= {"cleared", "no_data"}
    joined = pg_target.conn.execute(
        "SELECT count(DISTINCT e.episode_id) FROM gpu_episodes e JOIN gpu_alerts a USING (episode_id)"
    ).fetchone()[0]
    assert joined == len(closed)


def test_migrations_are_versioned_and_idempotent(pg_dsn: str) -> None:
    first = PostgresTarget(pg_dsn)
    second = PostgresTarget(pg_dsn)
    try:
        latest = pg_schema.MIGRATIONS[-1].version
        assert (first.version, first.timescale) == (second.version, second.timescale) == (latest, False)
        rows = second.conn.execute("SELECT version, name, flavour FROM gpulake_migrations ORDER BY version").fetchall()
        assert rows == [(m.version, m.name, "postgresql") for m in pg_schema.MIGRATIONS]
    finally:
        first.close()
        second.close()


def test_daily_partitions_and_hourly_view(fleet_output: Path, pg_target: PostgresTarget) -> None:
    sync(LocalSource(fleet_output), pg_target)
    partitions = pg_target.conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'gpu_metrics'::regclass"
    ).fetchall()
    days = {t.strftime("gpu_metrics_p%Y%m%d") for t in metrics_table(fleet_output)["time"].to_pylist()}
    assert {p[0] for p in partitions} == days
    hourly, samples = pg_target.conn.execute("SELECT count(*), sum(samples) FROM gpu_metrics_hourly").fetchone()
    assert hourly > 0
    assert samples == pg_target.conn.execute("SELECT count(*) FROM gpu_metrics").fetchone()[0]


def test_unreadable_object_is_reported_and_the_rest_loads(tmp_path: Path, pg_target: PostgresTarget) -> None:
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/good.parquet", ["n1"])
    bad = tmp_path / "metrics/source=dcgm/date=2026-11-02/bad.parquet"
    bad.write_bytes(b"not parquet")
    report = sync(LocalSource(tmp_path), pg_target)
    assert report.loaded == 1
    assert len(report.failed) == 1 and "bad.parquet" in report.failed[0] and "Parquet" in report.failed[0]


@pytest.mark.parametrize("dsn", ["host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2"])
def test_unreachable_database_is_a_clear_error(dsn: str) -> None:
    from loaders.errors import TargetUnavailable

    with pytest.raises(TargetUnavailable, match="GPULAKE_PG_DSN"):
        PostgresTarget(dsn)
