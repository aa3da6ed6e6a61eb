#!/usr/bin/env python3
"""Peak memory and time of ``process`` on one dcgm object at a given window size (ADR 0008).

Sets ``gpulake.formats.dcgm.WINDOW_BYTES`` to ``--window`` MiB (0: the whole object as one window, as before
ADR 0008) and processes the object once, as ``automated_pipeline.py process`` does (its local episode store
in the output directory), in this process; prints the peak RSS (VmHWM), wall and CPU time, rows and alerts.
One object per process: the peak is the process's.

    .venv/bin/python scripts/measure_windows.py OBJECT.prom --window 16
    .venv/bin/python scripts/measure_windows.py OBJECT.prom --window 0   # the whole object, for comparison
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gpulake.formats import dcgm
from gpulake.limits import SizeLimit
from gpulake.local import LocalOptions, process_file


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("object", type=Path, help="dcgm-exporter text with # gpulake-scrape markers")
    parser.add_argument("--window", type=int, default=dcgm.WINDOW_BYTES >> 20, help="MiB of text per window (0: whole)")
    args = parser.parse_args()
    dcgm.WINDOW_BYTES = args.window << 20 if args.window else 1 << 62
    with tempfile.TemporaryDirectory() as tmp:
        options = LocalOptions(format_name="dcgm", max_inflated=SizeLimit.uniform(2**40))
        wall, cpu = time.perf_counter(), time.process_time()
        result = process_file(args.object, Path(tmp), options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{args.object.name}: window {args.window or 'whole'} MiB, peak RSS {_peak_mb():.0f} MB, {wall:.2f} s "
            f"(CPU {cpu:.2f} s), {result.rows} rows, {result.alert_count} alerts"
        )


if __name__ == "__main__":
    main()
