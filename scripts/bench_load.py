#!/usr/bin/env python3
"""Loader benchmark, side by side in one run, against servers it starts itself.

Data: a simulated fleet (nvidia-smi logs, ~1 M rows at the default size) processed
into the canonical layout. PostgreSQL: ``sync`` rows/s vs psql ``\\copy`` of the same
rows from CSV into a table with the same columns and unique index. InfluxDB:
``sync`` points/s vs ``curl --data-binary`` of the same line protocol in 5,000-point
batches (one curl process, one kept-alive connection). Also: a second sync with
nothing new over 1,000 loaded objects. Medians of --repeat runs and the ratios
(targets: >= 0.7x COPY, >= 0.8x curl).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pyarrow as pa

from gpulake.local import LocalOptions, iter_files, process_file
from gpulake.output.parquet import to_parquet_bytes
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from loaders.influx import InfluxTarget, V1Writer, batches
from loaders.lineprotocol import metrics_lines
from loaders.local_influx import LocalInflux
from loaders.local_postgres import LocalPostgres
from loaders.postgres import PostgresTarget, metrics_csv
from loaders.progress import QuietProgress
from loaders.records import read_metrics
from loaders.source import LocalSource
from loaders.sync import sync


def build(out: Path, gpus: int, minutes: float) -> Path:
    raw = out / "raw"
    spec = FleetSpec(nodes=max(1, gpus // 8), gpus=min(gpus, 8), minutes=minutes, interval_s=8, formats=("nvidia-smi",))
    simulate(raw, spec)
    for path in iter_files([raw]):
        process_file(path, out / "processed", LocalOptions())
    return out / "processed"


def peer_inputs(processed: Path, work: Path) -> tuple[Path, str, list[Path], int]:
    """The same rows as one CSV (for psql) and as 5,000-line bodies (for curl)."""
    source = LocalSource(processed)
    tables = [(o.key, read_metrics(source.read(o), o.key)) for o in source.list() if o.kind == "metrics"]
    csv_file = work / "rows.csv"
    bodies = []
    with csv_file.open("wb") as handle:
        for key, table in tables:
            columns, body = metrics_csv(table, key)
            handle.write(body)
            bodies += batches(metrics_lines(table))
    paths = []
    for i, body in enumerate(bodies):
        paths.append(work / f"batch{i:05d}.lp")
        paths[-1].write_bytes(body)
    return csv_file, ", ".join(columns), paths, sum(t.num_rows for _, t in tables)


def _database(pg: LocalPostgres, name: str) -> str:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.dsn.replace("dbname=postgres", f"dbname={name}")


def pg_round(pg: LocalPostgres, processed: Path, csv_file: Path, columns: str, n: int) -> tuple[float, float]:
    ours_dsn, peer_dsn = _database(pg, f"ours{n}"), _database(pg, f"peer{n}")
    PostgresTarget(peer_dsn).close()
    with psycopg.connect(peer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE peer (LIKE gpu_metrics INCLUDING INDEXES)")
    target = PostgresTarget(ours_dsn)
    started = time.perf_counter()
    report = sync(LocalSource(processed), target, progress=QuietProgress())
    ours = time.perf_counter() - started
    target.close()
    psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", f"peer{n}"]
    started = time.perf_counter()
    subprocess.run([*psql, "-c", f"\\copy peer ({columns}) FROM '{csv_file}' WITH (FORMAT csv)"], check=True)
    peer = time.perf_counter() - started
    return report.rows / ours, report.rows / peer


def influx_round(influx: LocalInflux, processed: Path, bodies: list[Path], n: int) -> tuple[float, float]:
    target = InfluxTarget(V1Writer(influx.url, f"ours{n}"))
    started = time.perf_counter()
    report = sync(LocalSource(processed), target, progress=QuietProgress())
    ours = time.perf_counter() - started
    V1Writer(influx.url, f"peer{n}").prepare()
    url = f"{influx.url}/write?db=peer{n}&precision=ms"
    args = ["curl", "-s", "-f", "--data-binary", f"@{bodies[0]}", url]
    for body in bodies[1:]:
        args += ["--next", "-s", "-f", "--data-binary", f"@{body}", url]
    started = time.perf_counter()
    subprocess.run(args, check=True)
    peer = time.perf_counter() - started
    return report.rows / ours, report.rows / peer


def idle_resync(pg: LocalPostgres, influx: LocalInflux, processed: Path, work: Path) -> tuple[float, float]:
    """Seconds for a sync that finds nothing new, with 1,000 objects loaded (2 rows each, one node per object)."""
    root = work / "thousand"
    sample = read_metrics(next(processed.rglob("*.parquet")).read_bytes(), "sample").slice(0, 2)
    node = sample.schema.get_field_index("node")
    for i in range(1000):
        path = root / f"metrics/source=dcgm/date=2026-11-02/o{i:04d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_parquet_bytes(sample.set_column(node, "node", pa.array([f"n{i}"] * 2))))
    times = []
    for target in (PostgresTarget(_database(pg, "idle")), InfluxTarget(V1Writer(influx.url, "idle"))):
        sync(LocalSource(root), target, progress=QuietProgress())
        started = time.perf_counter()
        report = sync(LocalSource(root), target, progress=QuietProgress())
        times.append(time.perf_counter() - started)
        assert report.loaded == 0 and report.skipped == 1000
        target.close()
    return times[0], times[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=64)
    parser.add_argument("--minutes", type=float, default=2080.0, help="64 GPUs x 2080 min at 8 s = ~1 M rows")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        processed = build(work, args.gpus, args.minutes)
        csv_file, columns, bodies, rows = peer_inputs(processed, work)
        print(f"data: {rows:,} rows in {len(list(processed.rglob('*.parquet')))} objects, {len(bodies)} batches")
        pg, influx = LocalPostgres().start(), LocalInflux().start()
        try:
            pg_runs = [pg_round(pg, processed, csv_file, columns, n) for n in range(args.repeat)]
            influx_runs = [influx_round(influx, processed, bodies, n) for n in range(args.repeat)]
            idle_pg, idle_influx = idle_resync(pg, influx, processed, work)
        finally:
            pg.stop()
            influx.stop()
    for name, runs, peer, target in (
        ("PostgreSQL", pg_runs, "psql \\copy", 0.7),
        ("InfluxDB", influx_runs, "curl 5,000-point batches", 0.8),
    ):
        ours = statistics.median(r[0] for r in runs)
        theirs = statistics.median(r[1] for r in runs)
        ratio = statistics.median(r[0] / r[1] for r in runs)
        verdict = "met" if ratio >= target else "missed"
        print(
            f"{name}: gpulake sync {ours:,.0f} rows/s vs {peer} {theirs:,.0f} rows/s = {ratio:.2f}x "
            f"(target >= {target}x: {verdict}; median of {len(runs)})"
        )
    print(f"second sync, nothing new, 1,000 objects: PostgreSQL {idle_pg:.2f} s, InfluxDB {idle_influx:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
