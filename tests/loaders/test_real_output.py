"""Everything the real-world fixtures turn into loads into both databases: no failures, every row accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpulake.local import LocalOptions, iter_files, process_file
from loaders.influx import InfluxTarget
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource
from loaders.sync import sync
from tests.conftest import REAL, real_file
from tests.loaders.data import metrics_table


@pytest.fixture(scope="module")
def real_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    real_file("SOURCES.md")  # skips (or fails under CI) without the fixtures
    out = tmp_path_factory.mktemp("real-out")
    for path in iter_files([REAL]):
        process_file(path, out, LocalOptions())
    return out


def test_real_output_loads_into_postgres(real_output: Path, pg_target: PostgresTarget) -> None:
    report = sync(LocalSource(real_output), pg_target)
    assert report.failed == [] and report.loaded == len(LocalSource(real_output).list())
    table = metrics_table(real_output)
    identities = table.group_by(["node", "gpu", "source", "time"]).aggregate([])
    assert table.num_rows == identities.num_rows > 10_000  # ingest keeps one row per identity
    assert pg_target.conn.execute("SELECT count(*) FROM gpu_metrics").fetchone()[0] == identities.num_rows
    last = {}
    for row in table.to_pylist():  # metrics_table keeps file order within an identity (stable sort)
        last[(row["node"], row["gpu"], row["source"], row["time"])] = row["gpu_temp_c"]
    stored = pg_target.conn.execute("SELECT node, gpu, source, time, gpu_temp_c FROM gpu_metrics").fetchall()
    assert {(n, g, s, t): v for n, g, s, t, v in stored} == last
    sources = dict(pg_target.conn.execute("SELECT source, count(*) FROM gpu_metrics GROUP BY 1").fetchall())
    assert set(sources) == {"dcgm", "gpuz", "nvidia-smi", "thermal-csv"}


def test_real_output_loads_into_influxdb(real_output: Path, influx_target: InfluxTarget) -> None:
    report = sync(LocalSource(real_output), influx_target)
    assert report.failed == [] and report.loaded == len(LocalSource(real_output).list())
    ledger = influx_target.writer.query(
        'SELECT sum("rows") FROM (SELECT last("rows") AS "rows" FROM "gpulake_ledger" GROUP BY "object_key")'
    )
    assert ledger[0]["values"][0][1] == report.rows
    tags = influx_target.writer.query('SHOW TAG VALUES FROM "gpu_metrics" WITH KEY = "source"')
    assert {v[1] for v in tags[0]["values"]} == {"dcgm", "gpuz", "nvidia-smi", "thermal-csv"}
