#!/usr/bin/env python3
"""How ``sync`` scales with the bucket: S3 LIST calls and seconds over a year of processed objects, under moto.

Setup (not measured, and cheaper than the real thing, said plainly): ``--objects``
processed objects (default 100,000) spread over ``--days`` date partitions of four
metrics sources and alerts/, written straight into moto's S3 backend with a few bytes
each, and their ledger rows COPYed straight into PostgreSQL: the state after a year of
loading, without a year of loading. Measured through moto's HTTP server, as a real sync
talks to S3: a sync with nothing new, one with ``--new`` new (real, small) metrics
objects in the newest partition, and, for comparison, the old full listing with nothing
new. LIST calls are counted on the S3 client (one per ListObjectsV2 page).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg
import pyarrow as pa

from gpulake.output.parquet import to_parquet_bytes
from gpulake.schema import assemble
from gpulake_cli.local_aws import LocalAws
from loaders.local_postgres import LocalPostgres
from loaders.postgres import PostgresTarget
from loaders.progress import QuietProgress
from loaders.source import S3Source
from loaders.sync import sync

ROOTS = [f"metrics/source={s}/" for s in ("dcgm", "gpuz", "nvidia-smi", "thermal-csv")] + ["alerts/", "episodes/"]
SUFFIXES = {"alerts/": ".jsonl", "episodes/": ".json"}
LAST_DAY = date(2026, 11, 30)


def keys(objects: int, days: int) -> list[str]:
    """``objects`` keys spread evenly over ``days`` partitions (ending at LAST_DAY) of every root."""
    partitions = [
        (root, (LAST_DAY - timedelta(days=days - 1 - offset)).isoformat()) for offset in range(days) for root in ROOTS
    ]
    found = []
    for i in range(objects):
        root, day = partitions[i % len(partitions)]
        suffix = SUFFIXES.get(root, ".parquet")
        found.append(f"{root}date={day}/obj-{i:06d}{suffix}")
    return found


def fill_bucket(bucket: str, names: list[str]) -> dict[str, str]:
    """Put tiny objects straight into moto's backend (no HTTP); returns key -> ETag."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    return {name: backend.put_object(bucket, name, name.encode()).etag.strip('"') for name in names}


def fill_ledger(dsn: str, etags: dict[str, str]) -> None:
    """The ledger rows a year of syncs would have written."""
    PostgresTarget(dsn).close()  # the schema
    statement = "COPY gpulake_ledger (object_key, version, kind, rows) FROM STDIN"
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(statement) as copy:
        for key, etag in etags.items():
            copy.write_row((key, etag, key.split("/")[0], 1))


def new_object(node: str) -> bytes:
    """A small real metrics object (3 rows)."""
    batch = assemble(
        3,
        time_ms=[1_796_083_200_000 + 1000 * i for i in range(3)],
        identity={"node": [node] * 3, "gpu": ["0"] * 3, "source": ["dcgm"] * 3},
        canonical={"gpu_temp_c": [60.0, 61.0, 62.0]},
        source_object=f"s3://raw/{node}",
    )
    return to_parquet_bytes(pa.Table.from_batches([batch]))


@dataclass
class Counted:
    """An S3 client that counts its ListObjectsV2 calls."""

    client: Any
    lists: int = 0

    def __post_init__(self) -> None:
        self.client.meta.events.register("before-call.s3.ListObjectsV2", self._count)

    def _count(self, **_: Any) -> None:
        self.lists += 1


def measure(client: Counted, bucket: str, dsn: str, lookback_days: int | None) -> dict[str, Any]:
    client.lists = 0
    target = PostgresTarget(dsn)
    began = time.perf_counter()
    report = sync(S3Source(client.client, bucket), target, QuietProgress(), lookback_days=lookback_days)
    seconds = time.perf_counter() - began
    target.close()
    return {"list_calls": client.lists, "seconds": round(seconds, 3), "listed": report.listed, "loaded": report.loaded}


def run(objects: int, days: int, new: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    aws, pg = LocalAws().start(), LocalPostgres().start()
    try:
        bucket = "bench-processed"
        s3 = Counted(aws.client("s3"))
        s3.client.create_bucket(Bucket=bucket)
        began = time.perf_counter()
        etags = fill_bucket(bucket, keys(objects, days))
        fill_ledger(pg.dsn, etags)
        log(f"setup: {len(etags):,} objects and ledger rows in {time.perf_counter() - began:.1f} s (not measured)")
        results = {"objects": len(etags), "days": days}
        results["nothing_new"] = measure(s3, bucket, pg.dsn, 3)
        results["nothing_new_full_listing"] = measure(s3, bucket, pg.dsn, None)
        for i in range(new):
            key = f"metrics/source=dcgm/date={LAST_DAY.isoformat()}/new-{i:03d}.parquet"
            s3.client.put_object(Bucket=bucket, Key=key, Body=new_object(f"new-{i:03d}"))
        results[f"{new}_new"] = measure(s3, bucket, pg.dsn, 3)
        return results
    finally:
        pg.stop()
        aws.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.objects, args.days, args.new, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print(json.dumps(results))
        return 0
    out = io.StringIO()
    out.write(
        f"sync over {results['objects']:,} loaded objects in {results['days']} daily partitions (moto, PostgreSQL)\n"
    )
    for name in ("nothing_new", "nothing_new_full_listing", f"{args.new}_new"):
        r = results[name]
        out.write(
            f"  {name:<26} {r['list_calls']:>4} LIST calls  {r['seconds']:>7.2f} s  "
            f"{r['listed']:>7,} listed  {r['loaded']:>4} loaded\n"
        )
    print(out.getvalue(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
