"""The TimescaleDB branch of the PostgreSQL schema against a real TimescaleDB (PGlite WASM build, test-only).

PGlite serves one connection at a time and dies on COPY over the socket, so this
checks the DDL, policies, compression and the continuous aggregate with a few
single-row INSERTs; the COPY load path is tested on PostgreSQL 15 (tests/loaders).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpulake.schema import CANONICAL_COLUMNS
from loaders import pg_schema
from loaders.local_postgres import free_port
from loaders.postgres import PostgresTarget
from tests.loaders.data import write_metrics

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def timescale_dsn() -> Iterator[str]:
    node = shutil.which("node")
    assert node and (HERE / "node_modules" / "@unni-craftsman" / "pglite").exists(), (
        "TimescaleDB test server missing: `make install` runs npm install in tests/timescale"
    )
    port = free_port()
    process = subprocess.Popen([node, str(HERE / "server.mjs"), str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "READY"
        yield f"host=127.0.0.1 port={port} dbname=postgres user=postgres password=postgres sslmode=disable"
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture(scope="module")
def target(timescale_dsn: str) -> Iterator[PostgresTarget]:
    target = PostgresTarget(timescale_dsn)
    yield target
    target.close()


def test_hypertable_with_policies_and_continuous_aggregate(target: PostgresTarget) -> None:
    assert target.timescale
    conn = target.conn
    hypertables = conn.execute(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
    ).fetchall()
    assert ("gpu_metrics", True) in hypertables
    interval = conn.execute(
        "SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'gpu_metrics'"
    ).fetchone()[0]
    assert interval.days == 1
    jobs = dict(conn.execute("SELECT proc_name, config FROM timescaledb_information.jobs").fetchall())
    assert jobs["policy_compression"]["compress_after"] == "7 days"
    assert jobs["policy_retention"]["drop_after"] == "400 days"
    assert "policy_refresh_continuous_aggregate" in jobs
    caggs = conn.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates").fetchall()
    assert caggs == [("gpu_metrics_hourly",)]
    flavour = conn.execute("SELECT DISTINCT flavour FROM gpulake_migrations").fetchall()
    assert flavour == [("timescaledb",)]


def test_migrations_run_once(timescale_dsn: str, target: PostgresTarget) -> None:
    from loaders import pg_schema

    assert pg_schema.migrate(target.conn) == (pg_schema.MIGRATIONS[-1].version, True)
    assert target.conn.execute("SELECT count(*) FROM gpulake_migrations").fetchone()[0] == len(pg_schema.MIGRATIONS)


def test_rows_compress_and_roll_up(tmp_path: Path, target: PostgresTarget) -> None:
    table = write_metrics(tmp_path, "metrics/x.parquet", ["n1", "n2"], n=4)
    columns = ["time", "node", "gpu", "source", *CANONICAL_COLUMNS, "throttle_reasons", "source_object", "object_key"]
    placeholders = ", ".join(["%s"] * len(columns))
    for row in table.to_pylist():
        values = [row.get(c, "metrics/x.parquet") for c in columns]
        target.conn.execute(f"INSERT INTO gpu_metrics ({', '.join(columns)}) VALUES ({placeholders})", values)
    target.finish()
    rolled = target.conn.execute(
        "SELECT node, samples, max_temp_c, throttled_samples FROM gpu_metrics_hourly ORDER BY node"
    ).fetchall()
    assert rolled == [("n1", 4, 53.5, 4), ("n2", 4, 57.5, 4)]
    chunks = target.conn.execute("SELECT show_chunks('gpu_metrics')").fetchall()
    assert chunks
    for (chunk,) in chunks:
        target.conn.execute("SELECT compress_chunk(%s)", (chunk,))
    compressed = target.conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'gpu_metrics' AND is_compressed"
    ).fetchone()[0]
    assert compressed == len(chunks)
    assert target.conn.execute("SELECT count(*), max(gpu_temp_c) FROM gpu_metrics").fetchone() == (8, 57.5)


def test_columnstore_api_chosen_by_extension_version(target: PostgresTarget) -> None:
    version = pg_schema.timescale_version(target.conn)
    modern, legacy = pg_schema.columnstore_statements((2, 18)), pg_schema.columnstore_statements((2, 17))
    assert "timescaledb.enable_columnstore" in modern[0] and "add_columnstore_policy" in modern[1]
    assert "timescaledb.compress," in legacy[0] and "add_compression_policy" in legacy[1]
    assert pg_schema.columnstore_statements((3, 0)) == modern
    # this server took whichever its version calls for (asserted above: compression on, 7-day policy)
    assert pg_schema.columnstore_statements(version) == (modern if version >= (2, 18) else legacy)
