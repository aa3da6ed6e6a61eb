#!/usr/bin/env python3
"""Peak memory of ingesting one object of a given inflated size, per format (``gpulake.limits`` is set from it).

Each measurement runs ``gpulake.local.process_file`` (gunzip, decode, parse, Parquet,
alerts: the Lambda's path) in a fresh process on a gzip of simulated telemetry and
reads that process's peak RSS. A line is printed per (format, size) plus a linear fit
``peak = runtime + factor * inflated``, from which the Lambda memory default follows.

    .venv/bin/python scripts/measure_ingest_memory.py --sizes 32 64 128 --formats dcgm nvidia-smi
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from gpulake_cli.simulate_fleet import FleetSpec, _fleet, _times, dcgm_text, nvidia_smi_text

MIB = 2**20
WORKER = """
import sys
from pathlib import Path
from gpulake.limits import SizeLimit
from gpulake.local import LocalOptions, process_file
result = process_file(Path(sys.argv[1]), Path(sys.argv[2]), LocalOptions(max_inflated=SizeLimit.uniform(2**40)))
assert result.failed is None and result.rows, result.failed
"""


def _dcgm(size: int) -> bytes:
    """Scrapes of 8 GPUs, each with its own ``# gpulake-scrape`` time, until ``size`` bytes."""
    spec = FleetSpec(nodes=1, gpus=8, minutes=2, interval_s=15)
    (node, gpus), times = _fleet(spec)[0], _times(spec)
    scrapes = dcgm_text(node, gpus, times).split("# gpulake-scrape ")[1:]
    bodies = [s.split("\n", 1)[1].encode() for s in scrapes]
    out, total, k = [], 0, 0
    while total < size:
        piece = b"# gpulake-scrape %d\n" % (int(times[0]) + k * 15_000) + bodies[k % len(bodies)]
        out.append(piece)
        total += len(piece)
        k += 1
    return b"".join(out)


def _nvidia_smi(size: int) -> bytes:
    """An 8-GPU ``-l 1`` log of about ``size`` bytes."""
    rows_per_second = 8 * 140
    spec = FleetSpec(nodes=1, gpus=8, minutes=max(1, size // rows_per_second // 60 + 1), interval_s=1)
    (_node, gpus), times = _fleet(spec)[0], _times(spec)
    return nvidia_smi_text(gpus, times).encode()[:size].rsplit(b"\n", 1)[0] + b"\n"


GENERATORS = {"dcgm": _dcgm, "nvidia-smi": _nvidia_smi}


def measure(fmt: str, mib: int, tmp: Path) -> dict[str, float]:
    data = GENERATORS[fmt](mib * MIB)
    path = tmp / f"{fmt}-{mib}.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1))
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(tmp / "out")])
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{fmt} {mib} MiB failed with status {status}")
    return {"format": fmt, "inflated_mib": len(data) / MIB, "peak_mib": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="inflated sizes (MiB)")
    parser.add_argument("--formats", nargs="+", default=list(GENERATORS), choices=list(GENERATORS))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats:
            points = [measure(fmt, mib, Path(tmp)) for mib in args.sizes]
            for point in points:
                print(json.dumps(point))
            x = np.array([p["inflated_mib"] for p in points])
            y = np.array([p["peak_mib"] for p in points])
            factor, runtime = np.polyfit(x, y, 1)
            at_1gib = runtime + factor * 1024
            print(json.dumps({"format": fmt, "runtime_mib": runtime, "factor": factor, "peak_mib_at_1gib": at_1gib}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
