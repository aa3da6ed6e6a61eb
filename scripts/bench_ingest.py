#!/usr/bin/env python3
"""Ingest benchmark: gpulake's parsers against their peers, each run in a fresh process.

dcgm: a simulated ~100 MB dcgm-exporter file; peer = prometheus_client's
``text_string_to_metric_families`` + pandas pivot + ``to_parquet``; gpulake =
``DcgmFormat.parse`` + Parquet write. GPU-Z: a simulated log; peer =
``pandas.read_csv``. Imports happen before the clock starts; the handler's
cold import time is measured on its own. Prints MB/s,
samples/s, peak RSS and the ratios (medians of --repeat runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from gpulake_cli.simulate_fleet import FleetSpec, gpuz_text, simulate, simulate_gpu

WORKER = r"""
import io, json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
if kind.endswith("peer"):
    import pandas as pd
    from prometheus_client.parser import text_string_to_metric_families
elif kind != "import":
    import pyarrow as pa
    from gpulake.context import SourceContext
    from gpulake.formats.dcgm import DcgmFormat
    from gpulake.formats.gpuz import GpuzFormat
    from gpulake.output.parquet import to_parquet_bytes
t0 = time.perf_counter()
if kind == "dcgm-peer":
    recs = []
    for fam in text_string_to_metric_families(data.decode()):
        for s in fam.samples:
            recs.append((s.timestamp, s.labels.get("Hostname"), s.labels.get("gpu"), s.name, s.value))
    df = pd.DataFrame(recs, columns=["time", "node", "gpu", "metric", "value"])
    wide = df.pivot_table(index=["time", "node", "gpu"], columns="metric", values="value", aggfunc="last").reset_index()
    wide.to_parquet(io.BytesIO())
    samples, rows = len(recs), len(wide)
elif kind == "dcgm-gpulake":
    r = DcgmFormat().parse(data, SourceContext(key=path, object_time_ms=0))
    to_parquet_bytes(pa.Table.from_batches(r.batches))
    samples, rows = data.count(b"\n") - data.count(b"\n#"), r.rows
elif kind == "gpuz-peer":
    df = pd.read_csv(io.BytesIO(data), encoding="cp1252", skipinitialspace=True)
    samples, rows = df.size, len(df)
elif kind == "gpuz-gpulake":
    r = GpuzFormat().parse(data, SourceContext(key=path, object_time_ms=0))
    samples, rows = r.rows, r.rows
elif kind == "import":
    import gpulake.handlers.ingest  # noqa: F401
    samples = rows = 0
    data = b""
elapsed = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "mb": len(data) / 1e6, "samples": samples, "rows": rows, "rss_mb": rss}}))
"""


def run(kind: str, path: Path, repeat: int) -> dict[str, float]:
    results = []
    for _ in range(repeat):
        code = WORKER.format()
        out = subprocess.run([sys.executable, "-c", code, kind, str(path)], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout))
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    med["mb_s"] = med["mb"] / med["seconds"] if med["seconds"] else 0.0
    med["samples_s"] = med["samples"] / med["seconds"] if med["seconds"] else 0.0
    return med


def line(name: str, r: dict[str, float]) -> str:
    return (
        f"  {name:<34} {r['seconds']:8.2f} s  {r['mb_s']:8.1f} MB/s  {r['samples_s']:12,.0f} samples/s  "
        f"peak RSS {r['rss_mb']:7.0f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=540, help="simulated minutes (540 ~ 100 MB of dcgm)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        (dcgm,) = simulate(Path(tmp), FleetSpec(nodes=1, gpus=8, minutes=args.minutes, formats=("dcgm",)))
        steps = int(args.minutes * 60)
        times = 1_793_000_000_000 + np.arange(steps, dtype=np.int64) * 1000
        gpuz = Path(tmp) / "gpuz.txt"
        gpuz.write_bytes(gpuz_text(simulate_gpu(np.random.default_rng(1), steps, 1.0, 400.0, True), times))
        print(
            f"dcgm: {dcgm.stat().st_size / 1e6:.0f} MB simulated scrape file, median of {args.repeat} fresh processes"
        )
        peer, ours = run("dcgm-peer", dcgm, args.repeat), run("dcgm-gpulake", dcgm, args.repeat)
        print(line("peer: prometheus_client+pandas", peer))
        print(line("gpulake DcgmFormat + Parquet", ours))
        print(
            f"  throughput ratio {ours['mb_s'] / peer['mb_s']:.1f}x (target >= 50x), "
            f"peak RSS ratio {ours['rss_mb'] / peer['rss_mb']:.2f} (target <= 0.5)"
        )
        print(f"gpuz: {gpuz.stat().st_size / 1e6:.1f} MB simulated sensor log")
        gpeer, gours = run("gpuz-peer", gpuz, args.repeat), run("gpuz-gpulake", gpuz, args.repeat)
        print(line("peer: pandas.read_csv", gpeer))
        print(line("gpulake GpuzFormat", gours))
        print(f"  throughput ratio {gours['mb_s'] / gpeer['mb_s']:.1f}x (target >= 3x)")
        cold = run("import", dcgm, max(args.repeat, 5))
        print(f"handler cold import: {cold['seconds']:.3f} s (target <= 0.4 s), RSS {cold['rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
