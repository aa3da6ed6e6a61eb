"""The fuzz corpus as a property: hostile files through ``process`` and ``sync`` to PostgreSQL and InfluxDB.

Each example is one small file (a real-looking seed, then a truncation, a flipped
byte, another encoding, a special value or a hostile string, maybe gzipped). It goes
through the CLI's ``process`` and both databases' ``sync`` in-process; nothing may
raise, and the rows must agree: lake rows = PostgreSQL rows = InfluxDB points. Cheap
on purpose: few examples, one file each, the session's servers, a fresh database per
example.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpulake_cli.main import main
from loaders.influx import InfluxTarget, V1Writer
from loaders.local_influx import LocalInflux
from loaders.local_postgres import LocalPostgres
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource
from loaders.sync import sync
from tests.conftest import ROOT

SAMPLES = ROOT / "gpulake_cli" / "samples"
DCGM = (
    "# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).\n# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n"
    'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-1",modelName="NVIDIA H100",Hostname="@HOST@"} 61 1793606400000\n'
    'DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-2",modelName="NVIDIA H100",Hostname="@HOST@"} @VALUE@ 1793606400000\n'
    'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-1",modelName="NVIDIA H100",Hostname="@HOST@"} 300.5 1793606400000\n'
    'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-1",modelName="NVIDIA H100",Hostname="@HOST@"} 62 1793606401000\n'
)


def _head(path: Path, lines: int) -> str:
    return "".join(path.read_bytes().decode("cp1252").splitlines(keepends=True)[:lines])


#: (folder, file name, text) seeds; ``@HOST@`` and ``@VALUE@`` mark where hostile strings and special values go.
SEEDS = [
    ("dcgm", "scrape.prom", DCGM),
    (
        "thermal-csv",
        "thermal.csv",
        "node,timestamp,gpu_id,temp\n@HOST@,2026-11-02 08:00:05,0,84\n@HOST@,2026-11-02 08:00:35,0,@VALUE@\n"
        "@HOST@,2026-11-02 08:00:35,1,70\n@HOST@,2026-11-02 08:00:35,1,71\n",
    ),
    ("nvidia-smi", "query-gpu.csv", _head(SAMPLES / "nvidia-smi" / "rig-7" / "query-gpu.csv", 5)),
    ("gpuz", "GPU-Z Sensor Log.txt", _head(SAMPLES / "gpuz" / "ws-12" / "GPU-Z Sensor Log.txt", 6)),
]
SPECIAL_VALUES = ["inf", "-inf", "nan", "NaN", "1e309", "-1e308", "1e308", "", "[N/A]", "-0", "9.3e18", "0x7ffffff0"]
hostile = st.text(
    alphabet=st.sampled_from(["a", "Z", "7", " ", ",", "=", '"', "'", "\\", "\n", "\r", "\t", "%", "\x00", "é", "节"]),
    min_size=1,
    max_size=12,
)


@st.composite
def corpus_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """One hostile file: (relative path, bytes)."""
    folder, name, text = draw(st.sampled_from(SEEDS))
    text = text.replace("@HOST@", draw(hostile)).replace("@VALUE@", draw(st.sampled_from(SPECIAL_VALUES)))
    if folder == "nvidia-smi":
        text = text.replace("NVIDIA RTX 6000 Ada Generation", draw(hostile), 1)
    if folder == "gpuz":  # a header becomes an extra key, then an InfluxDB field key
        text = text.replace("Hot Spot", draw(hostile), 1)
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"])), errors="replace")
    mutation = draw(st.sampled_from(["none", "truncate", "flip"]))
    if mutation == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if draw(st.booleans()):
        packed = gzip.compress(data, mtime=0)
        data = packed[: draw(st.integers(len(packed) // 2, len(packed)))]
        name += ".gz"
    return f"{folder}/node-{draw(st.integers(0, 9))}/{name}", data


_databases = itertools.count()


def _lake_rows(out: Path) -> dict[str, int]:
    """Rows per metrics object of the processed directory."""
    return {
        p.relative_to(out).as_posix(): pq.read_metadata(p).num_rows
        for p in sorted((out / "metrics").rglob("*.parquet"))
    }


def _alert_lines(out: Path) -> int:
    return (
        sum(len(p.read_text().splitlines()) for p in (out / "alerts").rglob("*.jsonl"))
        if (out / "alerts").exists()
        else 0
    )


def _influx_points(target: InfluxTarget) -> int:
    series = target.writer.query('SELECT * FROM "gpu_metrics" GROUP BY *')
    return sum(len(s["values"]) for s in series)


def _rows_of_loaded(lake: dict[str, int], failed: list[str]) -> int:
    return sum(rows for key, rows in lake.items() if not any(f.startswith(f"{key}: ") for f in failed))


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(corpus_file())
def test_hostile_files_through_process_and_sync_agree_everywhere(
    pg_server: LocalPostgres, influx_server: LocalInflux, tmp_path_factory, file: tuple[str, bytes]
) -> None:
    # GIVEN one hostile file in a raw tree
    base = tmp_path_factory.mktemp("fuzz")
    relative, data = file
    raw = base / "raw" / relative
    raw.parent.mkdir(parents=True)
    raw.write_bytes(data)
    # WHEN it is processed and synced to both databases (no exception may escape)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["process", str(base / "raw"), "--out", str(base / "out")])
    assert code in (0, 1)
    lake = _lake_rows(base / "out")
    name = f"fuzz{next(_databases)}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    postgres = PostgresTarget(pg_server.dsn.replace("dbname=postgres", f"dbname={name}"))
    influx = InfluxTarget(V1Writer(influx_server.url, name))
    try:
        pg_report = sync(LocalSource(base / "out"), postgres)
        influx_report = sync(LocalSource(base / "out"), influx)
        # THEN every store holds the same rows: lake rows = PostgreSQL rows = InfluxDB points
        stored = postgres.conn.execute("SELECT count(*) FROM gpu_metrics").fetchone()[0]
        assert influx_report.failed == []
        assert _influx_points(influx) == sum(lake.values())
        assert influx_report.rows == sum(lake.values()) + _alert_lines(base / "out")
        # PostgreSQL cannot hold NUL: until ingest maps it (defect 2's ingest half), such an object is reported
        for failure in pg_report.failed:
            key = failure.split(": ", 1)[0]
            assert key in lake and "0x00" in failure, failure
        assert stored == _rows_of_loaded(lake, pg_report.failed)
    finally:
        postgres.close()
