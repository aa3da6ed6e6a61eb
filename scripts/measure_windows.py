#!/usr/bin/env python3
"""Peak memory of a dcgm object ingested as windows of whole scrapes, one after the other in one process.

The measurement behind ADR 0008 (proposed): the object is cut before the first ``# gpulake-scrape``
marker once a window holds ``--window`` MiB, each window is processed as its own object by
``gpulake.local.process_file`` in this process, and the process's peak RSS is printed (from after the
cut: the peak is reset once the windows are written out). ``--keep-alerts`` keeps every window's alert
records, as ``IngestResult.alerts`` would for the whole object.

    .venv/bin/python scripts/measure_windows.py OBJECT.prom --window 64 [--keep-alerts]
    .venv/bin/python scripts/measure_windows.py OBJECT.prom --window 0   # the whole object, for comparison
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from gpulake.formats._expo_scan import MARKER
from gpulake.limits import SizeLimit
from gpulake.local import LocalOptions, process_file


def cut(source: Path, window: int, into: Path) -> list[Path]:
    """The object's windows as files: each ends before the first scrape marker past ``window`` bytes."""
    if window <= 0:
        return [source]
    data, paths, start = source.read_bytes(), [], 0
    while start < len(data):
        found = data.find(b"\n" + MARKER, start + window)
        end = len(data) if found < 0 else found + 1
        paths.append(into / f"window-{len(paths):04d}.prom")
        paths[-1].write_bytes(data[start:end])
        start = end
    return paths


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("object", type=Path, help="dcgm-exporter text with # gpulake-scrape markers")
    parser.add_argument("--window", type=int, default=64, help="MiB of text per window (0: the whole object, as today)")
    parser.add_argument("--keep-alerts", action="store_true", help="keep every window's alerts until the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = cut(args.object, args.window << 20, Path(tmp))
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # the peak from here on (Linux)
        kept, started = [], time.perf_counter()
        options = LocalOptions(format_name="dcgm", max_inflated=SizeLimit.uniform(2**40))
        for path in paths:
            result = process_file(path, Path(tmp) / "out", options)
            kept += result.alerts if args.keep_alerts else []
        print(
            f"{args.object.name}: {len(paths)} windows of {args.window} MiB, peak RSS {_peak_mb():.0f} MB, "
            f"{time.perf_counter() - started:.1f} s" + (f", {len(kept)} alerts kept" if args.keep_alerts else "")
        )


if __name__ == "__main__":
    main()
