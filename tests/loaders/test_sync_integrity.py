"""Sync under failure: a view left behind by a kill, objects a database refuses, tags InfluxDB mangles."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from gpulake.output.parquet import to_parquet_bytes
from gpulake_cli.main import main
from loaders.errors import ObjectRejected
from loaders.influx import BATCH_POINTS, InfluxTarget
from loaders.lineprotocol import tag_value
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource
from loaders.sync import sync
from tests.loaders.data import write_metrics


def _view_samples(target: PostgresTarget) -> int:
    return target.conn.execute("SELECT coalesce(sum(samples), 0) FROM gpu_metrics_hourly").fetchone()[0]


def test_a_rerun_refreshes_a_view_left_behind_by_a_kill(
    tmp_path: Path, pg_target: PostgresTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a sync killed after its last commit, before the view refresh
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/a.parquet", ["n1", "n2"], n=4)
    with monkeypatch.context() as patched:
        patched.setattr(pg_target, "finish", lambda: None)
        sync(LocalSource(tmp_path), pg_target)
    # WHEN sync runs again with nothing new to load
    report = sync(LocalSource(tmp_path), pg_target)
    # THEN the view caught up with the ledger anyway
    assert report.loaded == 0
    assert _view_samples(pg_target) == 8


def test_an_object_the_database_refuses_is_reported_and_the_rest_loads(
    tmp_path: Path, pg_target: PostgresTarget
) -> None:
    # GIVEN three objects, the middle one with a NUL in a node name (PostgreSQL text cannot hold it)
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/a.parquet", ["n1"])
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/b.parquet", ["bad\x00node"])
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/c.parquet", ["n3"])
    # WHEN it syncs
    report = sync(LocalSource(tmp_path), pg_target)
    # THEN the refused object is named with the reason, and the others are stored
    assert report.loaded == 2 and report.rows == 6
    assert len(report.failed) == 1
    assert report.failed[0].startswith("metrics/source=dcgm/date=2026-11-02/b.parquet: ")
    assert "PostgreSQL refused" in report.failed[0]
    nodes = {n for (n,) in pg_target.conn.execute("SELECT DISTINCT node FROM gpu_metrics").fetchall()}
    assert nodes == {"n1", "n3"}
    # AND a rerun tries it again (it is not in the ledger) without blocking the rest
    again = sync(LocalSource(tmp_path), pg_target)
    assert (again.loaded, len(again.failed)) == (0, 1)


HOSTILE_TAGS = [
    "new\nline",
    "trailing\\",
    "back\\,comma",
    "back\\ space",
    "double\\\\",
    "tab\there",
    "cr\rhere",
    "per%cent",
    "%0A",
    "quote'and\"",
    " lead and trail ",
    "=eq,comma sp",
]


def test_hostile_tags_round_trip_write_replace_read(tmp_path: Path, influx_target: InfluxTarget) -> None:
    # GIVEN an object whose node names are every awkward tag value, loaded
    key = "metrics/source=dcgm/date=2026-11-02/hostile.parquet"
    write_metrics(tmp_path, key, HOSTILE_TAGS, n=2)
    first = sync(LocalSource(tmp_path), influx_target)
    assert first.failed == [] and first.rows == 2 * len(HOSTILE_TAGS)
    # WHEN a new version of it (one sample per node) replaces it, twice
    write_metrics(tmp_path, key, HOSTILE_TAGS, n=1, start_ms=1_793_606_400_000)
    second = sync(LocalSource(tmp_path), influx_target)
    write_metrics(tmp_path, key, HOSTILE_TAGS, n=1, start_ms=1_793_606_500_000)
    third = sync(LocalSource(tmp_path), influx_target)
    # THEN every sync succeeded and exactly the last version's points remain, under the documented tag values
    assert second.failed == third.failed == []
    stored = {k[0]: len(v) for k, v in _series(influx_target).items()}
    assert stored == {tag_value(node): 1 for node in HOSTILE_TAGS}
    assert len(set(stored)) == len(HOSTILE_TAGS)  # the encoding keeps distinct names distinct


def _series(target: InfluxTarget) -> dict[tuple, list[dict]]:
    result = target.writer.query('SELECT * FROM "gpu_metrics" GROUP BY "node", "gpu", "source"')
    return {
        (s["tags"]["node"], s["tags"]["gpu"], s["tags"]["source"]): [dict(zip(s["columns"], v)) for v in s["values"]]
        for s in result
    }


@pytest.mark.parametrize("target_name", ["postgres", "influxdb"])
def test_sync_counts_the_rows_it_stores(tmp_path: Path, target_name: str, request: pytest.FixtureRequest) -> None:
    # GIVEN an object written before ingest resolved duplicates: the same identity three times
    table = write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/old.parquet", ["n1"], n=3)
    doubled = pa.concat_tables([table, table, table])
    (tmp_path / "metrics/source=dcgm/date=2026-11-02/old.parquet").write_bytes(to_parquet_bytes(doubled))
    target = request.getfixturevalue("pg_target" if target_name == "postgres" else "influx_target")
    # WHEN it syncs
    report = sync(LocalSource(tmp_path), target)
    # THEN it reports the rows stored, not the rows read
    assert report.rows == 3
    if target_name == "postgres":
        assert target.conn.execute("SELECT count(*) FROM gpu_metrics").fetchone()[0] == 3
    else:
        assert sum(len(v) for v in _series(target).values()) == 3


def test_rows_of_one_raw_object_replacing_anothers_are_reported(tmp_path: Path, pg_target: PostgresTarget) -> None:
    # GIVEN two processed objects from different raw objects with the same node, GPU, source and times
    first = write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/node17.parquet", ["merged"])
    second = first.set_column(
        first.schema.get_field_index("source_object"), "source_object", pa.array(["s3://raw/other"] * len(first))
    )
    (tmp_path / "metrics/source=dcgm/date=2026-11-02/node18.parquet").write_bytes(to_parquet_bytes(second))
    # WHEN they sync
    report = sync(LocalSource(tmp_path), pg_target)
    # THEN the overwrite is said, naming both
    assert report.loaded == 2 and len(report.warnings) == 1
    assert "identity collision: 3 rows of metrics/source=dcgm/date=2026-11-02/node18.parquet" in report.warnings[0]
    assert "s3://raw/metrics/source=dcgm/date=2026-11-02/node17.parquet" in report.warnings[0]


def test_sync_command_names_the_refused_object_and_exits_1(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/a.parquet", ["n1"])
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/b.parquet", ["nul\x00node"])
    monkeypatch.setenv("GPULAKE_PG_DSN", pg_dsn)
    monkeypatch.setenv("GPULAKE_PG_TIMESCALE", "off")
    code = main(["sync", "--to", "postgres", "--from", str(tmp_path), "--env-file", str(tmp_path / "none.env")])
    captured = capsys.readouterr()
    assert code == 1
    assert "loaded 1 of 2 objects" in captured.out
    assert "not loaded: metrics/source=dcgm/date=2026-11-02/b.parquet: PostgreSQL refused" in captured.err
    assert "Traceback" not in captured.err


HOSTILE_KEYS = [*HOSTILE_TAGS, "nul\x00"]


def test_hostile_extra_keys_are_writable_field_keys(tmp_path: Path, influx_target: InfluxTarget) -> None:
    # GIVEN objects whose extra keys (from input headers) hold every awkward character
    for index, key in enumerate(HOSTILE_KEYS):
        table = write_metrics(tmp_path, f"metrics/source=gpuz/date=2026-11-02/{index}.parquet", [f"n{index}"], n=1)
        extra = pa.array([[(key, 1.0)]], table.schema.field("extra").type)
        table = table.set_column(table.schema.get_field_index("extra"), "extra", extra)
        (tmp_path / f"metrics/source=gpuz/date=2026-11-02/{index}.parquet").write_bytes(to_parquet_bytes(table))
    # WHEN they sync to InfluxDB
    report = sync(LocalSource(tmp_path), influx_target)
    # THEN every object loads, each key stored as documented
    assert report.failed == []
    stored = {v[0] for s in influx_target.writer.query('SHOW FIELD KEYS FROM "gpu_metrics"') for v in s["values"]}
    assert {tag_value(key) for key in HOSTILE_KEYS} <= stored


def test_an_object_influxdb_refuses_halfway_leaves_no_points(
    tmp_path: Path, influx_target: InfluxTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an object of two batches whose second batch InfluxDB refuses
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/big.parquet", ["n1"], n=BATCH_POINTS + 1)
    influx_target.writer.prepare()
    sent = influx_target.writer.write
    bodies: list[bytes] = []

    def refuse_the_second(body: bytes) -> None:
        bodies.append(body)
        if len(bodies) == 2:
            raise ObjectRejected("write: InfluxDB refused the data (test)")
        sent(body)

    monkeypatch.setattr(influx_target.writer, "write", refuse_the_second)
    # WHEN it syncs
    report = sync(LocalSource(tmp_path), influx_target)
    # THEN it is reported, and the batch that was accepted is gone again
    assert len(report.failed) == 1 and report.loaded == 0
    assert _series(influx_target) == {}
