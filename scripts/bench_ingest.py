"""Ingest benchmark: gpulake's parsers against their peers, each run in a fresh process.

dcgm: simulated scrapes shaped like dcgm-exporter's (40 metric families, HELP/TYPE before
every family in every scrape, 16 nodes x 8 GPUs in one object), ~100 MB and a bigger file;
peer = prometheus_client's ``text_string_to_metric_families`` + pandas pivot + ``to_parquet``;
gpulake = ``process`` end to end (parse + alerts + Parquet, ``gpulake.local.process_file``)
with the compiled scanner and with the pure-Python one, and the scan alone. GPU-Z: a
simulated log; peer = ``pandas.read_csv`` (cp1252, ``skipinitialspace``), gpulake =
``GpuzFormat().parse`` (decode, sections, numbers, times, quarantine, canonical batch), run
in interleaved rounds. Imports happen before the clock starts (net of start-up; for gpulake
also pyarrow's one-off pandas probe and ``numpy.ma``, which ``import pandas`` loads for the
peer); the CLI's ``--help`` and the handler's cold import are timed on their own.
Prints seconds, MB/s, samples/s, peak RSS and the ratios (medians of --repeat runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gpulake_cli.simulate_fleet import FleetSpec, gpuz_text, simulate, simulate_gpu

ROOT = Path(__file__).resolve().parents[1]
WORKER = r"""
import io, json, resource, sys, tempfile, time
from pathlib import Path
kind, path = sys.argv[1], sys.argv[2]
# process streams the file itself: holding it here would put its size into the peak RSS
data = b"" if kind == "import" or kind.startswith("dcgm-process") else open(path, "rb").read()
if kind.endswith("peer"):
    import pandas as pd
    from prometheus_client.parser import text_string_to_metric_families
elif kind != "import":
    from gpulake import formats
    from gpulake.context import SourceContext
    from gpulake.decode import to_utf8
    from gpulake.formats import _expo_scan
    from gpulake.formats.dcgm import _SLOTS, _Scrape
    from gpulake.formats.gpuz import GpuzFormat
    from gpulake.local import LocalOptions, process_file
    from gpulake._nopandas import pyarrow_without_pandas
    pyarrow_without_pandas()  # as process_file does: pyarrow's first pa.array() imports pandas otherwise (0.3 s)
    import numpy.ma  # noqa: F401 - pa.array(ndarray) imports it on first use (25 ms); the peer's pandas did too
    scan = _expo_scan.scan_python if kind.endswith("python") else _expo_scan.scan_compiled
    formats.FORMATS["dcgm"].scan = scan
    out = tempfile.mkdtemp()
cpu0, t0 = time.process_time(), time.perf_counter()
if kind == "dcgm-peer":
    recs = []
    for fam in text_string_to_metric_families(data.decode()):
        for s in fam.samples:
            recs.append((s.timestamp, s.labels.get("Hostname"), s.labels.get("gpu"), s.name, s.value))
    df = pd.DataFrame(recs, columns=["time", "node", "gpu", "metric", "value"])
    wide = df.pivot_table(index=["time", "node", "gpu"], columns="metric", values="value", aggfunc="last").reset_index()
    wide.to_parquet(io.BytesIO())
    samples, rows = len(recs), len(wide)
elif kind.startswith("dcgm-process"):
    r = process_file(Path(path), Path(out), LocalOptions(format_name="dcgm"))
    assert not r.rejected, r.rejected
    samples, rows = 0, r.rows
elif kind.startswith("dcgm-scan"):
    scanned = scan([to_utf8(data)], _Scrape(SourceContext(key=path, object_time_ms=0)).resolve_head,
                   slots=len(_SLOTS), now=0)
    samples, rows = 0, len(scanned.row_time)
elif kind == "gpuz-peer":
    df = pd.read_csv(io.BytesIO(data), encoding="cp1252", skipinitialspace=True)
    samples, rows = df.size, len(df)
elif kind == "gpuz-gpulake":
    r = GpuzFormat().parse(data, SourceContext(key=path, object_time_ms=0))
    samples, rows = r.rows, r.rows
elif kind == "import":
    import os
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "bench")  # as in Lambda
    os.environ.setdefault("GPULAKE_PROCESSED_BUCKET", "bench")
    import gpulake.handlers.ingest  # noqa: F401
    samples = rows = 0
elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
try:  # this program's own peak: ru_maxrss keeps the forking parent's across exec
    rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
mb = (len(data) if kind != "import" and not kind.startswith("dcgm-process") else Path(path).stat().st_size) / 1e6
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "mb": mb if kind != "import" else 0.0, "samples": samples,
                  "rows": rows, "rss_mb": rss}))
"""


def dcgm_file(tmp: Path, minutes: float, name: str) -> tuple[Path, int]:
    """One object of 16 nodes x 8 GPUs x 40 families, as the exporter writes them; and its sample count."""
    spec = FleetSpec(nodes=16, gpus=8, minutes=minutes, formats=("dcgm",), dcgm_fields=40)
    parts = simulate(tmp / f"raw-{name}", spec)
    path = tmp / f"{name}.prom"
    samples = 0
    with path.open("wb") as out:
        for part in parts:
            body = part.read_bytes()
            samples += body.count(b"\n") - body.count(b"\n#") - int(body.startswith(b"#"))
            out.write(body)
            part.unlink()
    return path, samples


def once(kind: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", WORKER, kind, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run(kind: str, path: Path, repeat: int, samples: int = 0) -> dict[str, float]:
    return summary([once(kind, path) for _ in range(repeat)], samples)


def interleaved(kinds: list[str], path: Path, repeat: int, samples: int) -> dict[str, dict[str, float]]:
    """Rounds of one run of each kind, so that every kind meets the same (shared, drifting) load."""
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            results[kind].append(once(kind, path))
    return {kind: summary(runs, samples) for kind, runs in results.items()}


def summary(results: list[dict[str, float]], samples: int = 0) -> dict[str, float]:
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    med["mb_s"] = med["mb"] / med["seconds"] if med["seconds"] else 0.0
    med["samples"] = med["samples"] or samples
    med["samples_s"] = med["samples"] / med["seconds"] if med["seconds"] else 0.0
    return med


def line(name: str, r: dict[str, float]) -> str:
    return (
        f"  {name:<34} {r['seconds']:8.2f} s  {r['mb_s']:8.1f} MB/s  {r['samples_s']:12,.0f} samples/s  "
        f"peak RSS {r['rss_mb']:7.0f} MB"
    )


def cli_help(repeat: int) -> tuple[float, float]:
    """Median wall time of ``gpulake --help`` and of a bare interpreter, each a fresh process."""
    gpulake = shutil.which("gpulake", path=str(Path(sys.executable).parent)) or "gpulake"

    def timed(command: list[str]) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return timed([gpulake, "--help"]), timed([sys.executable, "-c", "pass"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=13.3, help="simulated minutes (13.3 ~ 100 MB of dcgm)")
    parser.add_argument("--big", type=float, default=10.0, help="the bigger dcgm file, in multiples of the first")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gpuz-minutes", type=float, default=540, help="simulated GPU-Z log minutes")
    parser.add_argument("--gpuz-only", action="store_true", help="only the GPU-Z comparison")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if not args.gpuz_only:
            dcgm_part(Path(tmp), args)
        gpuz_part(Path(tmp), args)
    if not args.gpuz_only:
        cold = run("import", Path(__file__), max(args.repeat, 5))
        print(f"handler cold import: {cold['seconds']:.3f} s (target <= 0.4 s), RSS {cold['rss_mb']:.0f} MB")
        help_s, bare_s = cli_help(max(args.repeat, 5))
        print(f"CLI --help: {help_s:.3f} s wall (target <= 0.15 s); a bare `python -c pass`: {bare_s:.3f} s")
    return 0


def dcgm_part(tmp: Path, args: argparse.Namespace) -> None:
    """dcgm: the peer and ``process`` with both scanners, the scan alone, and a bigger file."""
    dcgm, samples = dcgm_file(tmp, args.minutes, "dcgm")
    mb = dcgm.stat().st_size / 1e6
    print(
        f"dcgm: {mb:.0f} MB, exporter-shaped (40 families, HELP/TYPE every scrape, 16 nodes x 8 GPUs), "
        f"{samples:,} samples; median of {args.repeat} fresh processes, peer and gpulake interleaved; "
        "times net of start-up"
    )
    kinds = ["dcgm-peer", "dcgm-process-compiled", "dcgm-process-python"]
    runs = interleaved(kinds, dcgm, args.repeat, samples)
    peer = runs["dcgm-peer"]
    print(line("peer: prometheus_client+pandas", peer))
    ours = {}
    for scanner in ("compiled", "python"):
        ours[scanner] = runs[f"dcgm-process-{scanner}"]
        print(line(f"gpulake process, {scanner} scanner", ours[scanner]))
        print(
            f"    {ours[scanner]['mb_s'] / peer['mb_s']:.1f}x the peer (target >= 50x), "
            f"peak RSS {ours[scanner]['rss_mb'] / peer['rss_mb']:.2f}x the peer (target <= 0.5)"
        )
    for scanner in ("compiled", "python"):
        scan = run(f"dcgm-scan-{scanner}", dcgm, args.repeat, samples)
        print(line(f"scan alone, {scanner} scanner", scan) + ("  (target >= 300 MB/s)" * (scanner == "compiled")))
    dcgm.unlink()
    big, big_samples = dcgm_file(tmp, args.minutes * args.big, "dcgm-big")
    print(f"dcgm, {args.big:g}x bigger: {big.stat().st_size / 1e6:.0f} MB, {big_samples:,} samples")
    for scanner in ("compiled", "python"):
        r = run(f"dcgm-process-{scanner}", big, args.repeat, big_samples)
        print(line(f"gpulake process, {scanner} scanner", r))
        small = ours[scanner]
        print(
            f"    MB/s {r['mb_s'] / small['mb_s']:.2f}x; peak RSS {r['rss_mb']:.0f} MB against "
            f"{small['rss_mb']:.0f} MB "
            f"for {mb:.0f} MB = {r['rss_mb'] / small['rss_mb']:.2f}x (target: flat, ~1x); per input MB "
            f"{(r['rss_mb'] / r['mb']) / (small['rss_mb'] / small['mb']):.2f}x"
        )
    big.unlink()


def gpuz_part(tmp: Path, args: argparse.Namespace) -> None:
    """GPU-Z: ``pandas.read_csv`` against the full parse, interleaved rounds; wall and CPU time."""
    import numpy as np

    steps = int(args.gpuz_minutes * 60)
    times = 1_793_000_000_000 + np.arange(steps, dtype=np.int64) * 1000
    gpuz = tmp / "gpuz.txt"
    gpuz.write_bytes(gpuz_text(simulate_gpu(np.random.default_rng(1), steps, 1.0, 400.0, True), times))
    print(f"gpuz: {gpuz.stat().st_size / 1e6:.1f} MB simulated sensor log")
    rounds = max(args.repeat, 7)
    gpuz_runs = interleaved(["gpuz-peer", "gpuz-gpulake"], gpuz, rounds, 0)
    gpeer, gours = gpuz_runs["gpuz-peer"], gpuz_runs["gpuz-gpulake"]
    for name, r in (("peer: pandas.read_csv", gpeer), ("gpulake GpuzFormat (full parse)", gours)):
        print(line(name, r) + f"  ({r['seconds'] * 1000:.0f} ms, CPU {r['cpu_seconds'] * 1000:.0f} ms)")
    print(
        f"  throughput ratio {gours['mb_s'] / gpeer['mb_s']:.2f}x (target >= 1x), CPU time ratio "
        f"{gpeer['cpu_seconds'] / gours['cpu_seconds']:.2f}x (medians of {rounds} interleaved rounds)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
