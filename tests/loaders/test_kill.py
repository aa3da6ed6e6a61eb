"""A sync killed (SIGKILL) between objects, between batches or mid-COPY, then run again, equals one clean load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from loaders.influx import InfluxTarget, V1Writer
from loaders.local_influx import LocalInflux
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource
from loaders.sync import sync
from tests.loaders.data import write_metrics

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = 6
NODES_PER_OBJECT = 40
SAMPLES = 1000  # 40,000 rows per object (8 InfluxDB batches): a COPY long enough to be caught mid-way


@pytest.fixture(scope="module")
def big_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("big")
    for i in range(OBJECTS):
        nodes = [f"node-{i:02d}-{j:02d}" for j in range(NODES_PER_OBJECT)]
        write_metrics(root, f"metrics/source=dcgm/date=2026-11-02/obj{i:02d}.parquet", nodes, n=SAMPLES)
    return root


def _start_sync(target: str, source: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "automated_pipeline.py"), "sync", "--to", target, "--from", str(source)],
        env=os.environ | env | {"PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(process: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.002)
    process.kill()
    pytest.fail(f"sync finished or stalled before the kill point (rc={process.poll()})")


def _pg_fingerprint(dsn: str) -> tuple:
    with psycopg.connect(dsn) as conn:
        return (
            conn.execute(
                "SELECT count(*), count(DISTINCT (node, gpu, source, time)), "
                "md5(string_agg(concat_ws('|', node, gpu, source, time, gpu_temp_c, power_w, throttle_reasons, "
                "extra::text), ',' ORDER BY node, gpu, source, time)) FROM gpu_metrics"
            ).fetchone()
            + conn.execute("SELECT count(*), sum(rows) FROM gpulake_ledger").fetchone()
        )


def _copy_running(dsn: str) -> Callable[[], bool]:
    conn = psycopg.connect(dsn, autocommit=True)

    def ready() -> bool:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY%%'"
        ).fetchone()
        return bool(row and row[0])

    return ready


def _ledger_rows(dsn: str, at_least: int) -> Callable[[], bool]:
    conn = psycopg.connect(dsn, autocommit=True)

    def ready() -> bool:
        try:
            return conn.execute("SELECT count(*) FROM gpulake_ledger").fetchone()[0] >= at_least
        except psycopg.errors.UndefinedTable:
            return False

    return ready


def test_postgres_killed_mid_copy_and_between_objects(big_output: Path, pg_dsn: str, pg_server) -> None:
    clean_dsn = pg_dsn
    sync(LocalSource(big_output), target := PostgresTarget(clean_dsn))
    target.close()
    clean = _pg_fingerprint(clean_dsn)
    assert clean[0] == OBJECTS * NODES_PER_OBJECT * SAMPLES

    name = "killed"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn.replace("dbname=postgres", f"dbname={name}")
    PostgresTarget(dsn).close()  # schema first, so the probes can watch it
    env = {"GPULAKE_PG_DSN": dsn}
    _kill_when(_start_sync("postgres", big_output, env), _copy_running(dsn))
    partial = _pg_fingerprint(dsn)
    assert partial[0] % (NODES_PER_OBJECT * SAMPLES) == 0, "a killed COPY must leave no partial object"
    assert partial[3] * NODES_PER_OBJECT * SAMPLES == partial[0] < clean[0]
    _kill_when(_start_sync("postgres", big_output, env), _ledger_rows(dsn, partial[3] + 2))
    finish = _start_sync("postgres", big_output, env)
    assert finish.wait(120) == 0, finish.stderr.read() if finish.stderr else ""
    assert _pg_fingerprint(dsn) == clean


def _influx_fingerprint(writer: V1Writer) -> tuple:
    counts = writer.query(
        'SELECT count("gpu_temp_c"), sum("gpu_temp_c"), sum("DCGM_FI_DEV_XID_ERRORS") FROM "gpu_metrics"'
    )
    series = writer.query('SHOW SERIES FROM "gpu_metrics"')
    ledger = writer.query('SELECT last("rows") FROM "gpulake_ledger" GROUP BY "object_key"')
    return tuple(counts[0]["values"][0][1:]) if counts else (0,), len(series[0]["values"]) if series else 0, len(ledger)


def test_influx_killed_between_batches(big_output: Path, influx_server: LocalInflux) -> None:
    clean_writer = V1Writer(influx_server.url, "kill_clean")
    sync(LocalSource(big_output), InfluxTarget(clean_writer))
    clean = _influx_fingerprint(clean_writer)
    assert clean[0][0] == OBJECTS * NODES_PER_OBJECT * SAMPLES

    writer = V1Writer(influx_server.url, "kill_run")
    InfluxTarget(writer)
    env = {"GPULAKE_INFLUX_URL": influx_server.url, "GPULAKE_INFLUX_DB": "kill_run"}

    def some_points_no_ledger_yet() -> bool:
        return bool(writer.query('SELECT count("gpu_temp_c") FROM "gpu_metrics"'))

    _kill_when(_start_sync("influxdb", big_output, env), some_points_no_ledger_yet)
    partial = _influx_fingerprint(writer)
    assert partial[0][0] < clean[0][0]
    finish = _start_sync("influxdb", big_output, env)
    assert finish.wait(120) == 0, finish.stderr.read() if finish.stderr else ""
    assert _influx_fingerprint(writer) == clean
