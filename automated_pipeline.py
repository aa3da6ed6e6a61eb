#!/usr/bin/env python3
"""gpulake command line: drives the pipeline, locally or against AWS.

It only wires: argument parsing, calling into ``gpulake`` (``lambda/``), printing.
Exit codes: 0 ok (bad rows quarantined count as ok), 1 failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lambda"))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from gpulake.alerts import AlertConfig
from gpulake.errors import ConfigError, GpulakeError
from gpulake.formats import FORMATS
from gpulake.local import LocalOptions, iter_files, process_file
from gpulake.timeutil import check_zone


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (exit 2), without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _cmd_process(args: argparse.Namespace) -> int:
    options = LocalOptions(
        tz=check_zone(args.tz),
        node=args.node,
        format_name=args.format,
        alert_config=AlertConfig(default_temp_limit_c=args.temp_limit),
    )
    failed = 0
    totals = {"objects": 0, "rows": 0, "bad_rows": 0, "alerts": 0, "rejected": 0}
    for path in iter_files([Path(p) for p in args.paths]):
        result = process_file(path, Path(args.out), options)
        totals["objects"] += 1
        totals["rows"] += result.rows
        totals["bad_rows"] += result.bad_rows
        totals["alerts"] += len(result.alerts)
        if result.rejected:
            failed += 1
            totals["rejected"] += 1
            print(f"rejected: {result.rejected}", file=sys.stderr)
        if args.json:
            print(
                json.dumps(
                    {
                        "object": result.source_object,
                        "format": result.format,
                        "rows": result.rows,
                        "bad_rows": result.bad_rows,
                        "alerts": len(result.alerts),
                        "rejected": result.rejected,
                        "keys": result.keys,
                    }
                )
            )
        else:
            status = "REJECTED" if result.rejected else f"{result.format}: {result.rows} rows"
            extra = f", {result.bad_rows} quarantined" if result.bad_rows else ""
            print(f"{result.source_object}: {status}{extra}, {len(result.alerts)} alerts")
    if not args.json:
        print(
            f"processed {totals['objects']} objects: {totals['rows']} rows, {totals['bad_rows']} rows quarantined, "
            f"{totals['alerts']} alerts, {totals['rejected']} rejected -> {args.out}"
        )
    return 1 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Simulate a small fleet and process it offline (the full local-AWS demo is tracked in issue 6)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
    from simulate_fleet import FleetSpec, simulate

    out = Path(args.out)
    raw = out / "raw"
    simulate(raw, FleetSpec(nodes=args.nodes, gpus=args.gpus, minutes=args.minutes, seed=args.seed))
    processed = out / "processed"
    args_process = argparse.Namespace(
        paths=[str(raw)],
        out=str(processed),
        tz="UTC",
        node=None,
        format=None,
        temp_limit=AlertConfig.default_temp_limit_c,
        json=False,
    )
    code = _cmd_process(args_process)
    print(f"raw files in {raw}; Parquet, alerts and quarantine in {processed}")
    return code


def _cmd_sync(args: argparse.Namespace) -> int:
    from loaders.config import default_source, load_dotenv, open_target
    from loaders.source import open_source
    from loaders.sync import sync

    load_dotenv(args.env_file)
    source = open_source(args.source or default_source())
    target = open_target(args.to)
    try:
        report = sync(source, target)
    finally:
        target.close()
    summary = {
        "target": args.to,
        "source": source.describe(),
        "listed": report.listed,
        "loaded": report.loaded,
        "replaced": report.replaced,
        "skipped": report.skipped,
        "rows": report.rows,
        "failed": report.failed,
        "seconds": round(report.seconds, 3),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{args.to}: loaded {report.loaded} of {report.listed} objects ({report.rows:,} rows, "
            f"{report.replaced} replaced, {report.skipped} already loaded) in {report.seconds:.1f} s"
        )
        for failure in report.failed:
            print(f"  not loaded: {failure}", file=sys.stderr)
    return 1 if report.failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="automated_pipeline.py", description="gpulake: GPU telemetry to Parquet and alerts.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    process = sub.add_parser("process", help="local files or folders -> processed layout in --out")
    process.add_argument("paths", nargs="+", help="files or folders (recursing; .gz too)")
    process.add_argument("--out", required=True, help="output directory (created if missing)")
    process.add_argument("--format", choices=sorted(FORMATS), help="skip detection and read as this format")
    process.add_argument("--tz", default="UTC", help="zone of local timestamps in the data (IANA name)")
    process.add_argument("--node", help="node name for data that does not carry one")
    process.add_argument(
        "--temp-limit",
        type=float,
        default=AlertConfig.default_temp_limit_c,
        help="over-temperature limit for GPU models without a known one (°C)",
    )
    process.add_argument("--json", action="store_true", help="one JSON line per object")
    process.set_defaults(func=_cmd_process)
    sync_cmd = sub.add_parser("sync", help="load processed Parquet and alerts into InfluxDB or PostgreSQL")
    sync_cmd.add_argument("--to", required=True, choices=["influxdb", "postgres"], help="target database")
    sync_cmd.add_argument(
        "--from", dest="source", help="s3://bucket/prefix or a directory (default: GPULAKE_SYNC_FROM or the bucket)"
    )
    sync_cmd.add_argument("--env-file", default=".env", help="connection settings file (default .env)")
    sync_cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    sync_cmd.set_defaults(func=_cmd_sync)
    demo = sub.add_parser("demo", help="simulate a small fleet and process it, all offline")
    demo.add_argument("--out", default="demo-output", help="where raw and processed files go")
    demo.add_argument("--nodes", type=int, default=3)
    demo.add_argument("--gpus", type=int, default=4)
    demo.add_argument("--minutes", type=float, default=30.0)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (GpulakeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
