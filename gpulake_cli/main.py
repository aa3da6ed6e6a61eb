"""gpulake command line: drives the pipeline, locally or against AWS.

It only wires: argument parsing, calling into ``gpulake`` (``lambda/``), printing.
Exit codes: 0 ok (bad rows quarantined count as ok), 1 failed, 2 usage error.
Each subcommand imports what it needs inside its ``_cmd_*`` function, so ``--help``
and small runs do not pay for pyarrow, boto3 or the loaders they do not use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from gpulake.errors import ConfigError, GpulakeError

#: For ``--help`` without importing what defines them (a test keeps them equal):
#: ``loaders.window.LOOKBACK_DAYS`` and ``gpulake.limits.ENV_VAR``.
SYNC_LOOKBACK_DAYS = 3
MAX_INFLATED_VAR = "GPULAKE_MAX_INFLATED_MB"

#: The formats' names (``gpulake.formats.FORMATS``, not imported here: it loads pyarrow).
SOURCES = ("dcgm", "gpuz", "nvidia-smi", "thermal-csv")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line (exit 2), without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _DeprecatedAlias(argparse.Action):
    """An old flag that still works, with a note naming the new one (``status --processed`` -> ``--from``)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        print(f"note: {option} is deprecated; use --from", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _cmd_process(args: argparse.Namespace) -> int:
    from gpulake import limits
    from gpulake.alerts import AlertConfig
    from gpulake.identity import CollisionCheck
    from gpulake.local import LocalOptions, finish, iter_files, process_file
    from gpulake.timeutil import check_zone

    limit = {} if args.temp_limit is None else {"default_temp_limit_c": args.temp_limit}
    options = LocalOptions(
        tz=check_zone(args.tz),
        node=args.node,
        format_name=args.format,
        alert_config=AlertConfig(**limit),
        max_inflated=limits.size_limit(override_mib=args.max_inflated_mb),
    )
    failed = 0
    totals = {"objects": 0, "rows": 0, "bad_rows": 0, "alerts": 0, "rejected": 0, "truncated": 0, "unchanged": 0}
    collisions = CollisionCheck()
    for path in iter_files([Path(p) for p in args.paths]):
        result = process_file(path, Path(args.out), options)
        for message in collisions.add(result.source_object, result.spans):
            failed += 1
            print(f"warning: {message}", file=sys.stderr)
        totals["objects"] += 1
        totals["rows"] += result.rows
        totals["bad_rows"] += result.bad_rows
        totals["alerts"] += result.alert_count
        totals["unchanged"] += result.unchanged
        if result.failed:
            failed += 1
        if result.rejected:
            totals["rejected"] += 1
            print(f"rejected: {result.rejected}", file=sys.stderr)
        elif result.truncated:
            totals["truncated"] += 1
            print(f"truncated: {result.truncated}", file=sys.stderr)
        if args.json:
            print(
                json.dumps(
                    {
                        "object": result.source_object,
                        "format": result.format,
                        "rows": result.rows,
                        "bad_rows": result.bad_rows,
                        "alerts": result.alert_count,
                        "rejected": result.rejected,
                        "truncated": result.truncated,
                        "unchanged": result.unchanged,
                        "keys": result.keys,
                    }
                )
            )
        else:
            status = "REJECTED" if result.rejected else f"{result.format}: {result.rows} rows"
            status += ", TRUNCATED" if result.truncated else ""
            extra = f", {result.bad_rows} quarantined" if result.bad_rows else ""
            again = " (unchanged: processed before, nothing written)" if result.unchanged else ""
            print(f"{result.source_object}: {status}{extra}, {result.alert_count} alerts{again}")
    finish(Path(args.out), options)
    if not args.json:
        again = f" ({totals['unchanged']} unchanged, nothing written)" if totals["unchanged"] else ""
        print(
            f"processed {_count(totals['objects'], 'object')}{again}: {totals['rows']} rows, "
            f"{totals['bad_rows']} rows quarantined, {totals['alerts']} alerts, {totals['rejected']} rejected, "
            f"{totals['truncated']} truncated -> {args.out}"
        )
    return 1 if failed else 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _s3() -> object:
    import boto3

    return boto3.client("s3")


def _cmd_upload(args: argparse.Namespace) -> int:
    from gpulake.local import iter_files
    from gpulake.timeutil import check_zone
    from gpulake_cli import uploader

    bucket = args.bucket or uploader.default_bucket(Path.cwd())
    if not bucket:
        raise ConfigError("no --bucket, GPULAKE_RAW_BUCKET or terraform/terraform.tfstate output raw_bucket")
    tz = check_zone(args.tz) if args.tz else None
    client = _s3()
    for path in iter_files([Path(p) for p in args.paths]):
        upload = uploader.plan(path, bucket, args.node, args.source, tz)
        stored = uploader.send(client, upload, show_progress=not args.json)
        record = {"path": str(path), "s3": f"s3://{bucket}/{upload.key}", "bytes": stored, "aws_cli": upload.aws_cli()}
        print(
            json.dumps(record)
            if args.json
            else f"{path} -> {record['s3']} ({stored:,} B)\n  same as: {record['aws_cli']}"
        )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from gpulake.timeutil import ms_to_iso
    from gpulake_cli import status
    from loaders.config import default_source
    from loaders.source import open_source

    out: dict[str, object] = {}
    if args.raw:
        out["raw"] = status.raw_counts(open_source(args.raw))
    processed = status.processed_counts(open_source(args.source or default_source()))
    out["processed"] = processed["objects"]
    out["quarantined_rows"] = processed["quarantined_rows"]
    out["rejected_objects"] = processed["rejected_objects"]
    out["newest_by_node"] = {n: ms_to_iso(ms) for n, ms in processed["newest_ms_by_node"].items()}
    if args.dlq_url:
        import boto3

        out["dlq_depth"] = status.dlq_depth(boto3.client("sqs"), args.dlq_url)
    out["last_sync"] = _last_syncs()
    if args.json:
        print(json.dumps(out))
        return 0
    for name, value in out.items():
        if isinstance(value, dict):
            print(f"{name}:")
            for key, item in value.items():
                print(f"  {key:<24} {item}")
        else:
            print(f"{name}: {value}")
    return 0


def _last_syncs() -> dict[str, str]:
    """Newest ledger entry per configured target (targets that are not configured are left out)."""
    from gpulake_cli import errors_map
    from loaders.config import configured_targets, open_target

    found = {}
    for name in configured_targets():
        try:
            target = open_target(name, read_only=True)
            found[name] = target.last_loaded() or "never"
            target.close()
        except GpulakeError as exc:
            found[name] = f"unavailable: {errors_map.describe(exc)[1]}"
    return found


def _cmd_alerts(args: argparse.Namespace) -> int:
    from gpulake_cli import alerts_view
    from loaders.config import default_source
    from loaders.source import open_source

    if args.since:
        alerts_view.parse_since(args.since)  # a usage error before any reading
    source = open_source(args.source or default_source())
    found = alerts_view.read(source) if args.raw else alerts_view.episodes(source)
    episodes = alerts_view.select(found, args.since, args.kind, args.node)
    if args.json:
        for episode in episodes:
            print(json.dumps(episode, sort_keys=True))
    elif args.raw:
        print(alerts_view.table(episodes, noun="per-object alerts"))
    else:
        print(alerts_view.table(episodes, alerts_view.EPISODE_COLUMNS, "episodes"))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from gpulake_cli import analytics, report
    from loaders.config import default_source
    from loaders.source import open_source

    data = analytics.load(open_source(args.source or default_source()))
    path = report.write(data, Path(args.out))
    print(f"report: {path} ({len(data.metrics):,} samples, {len(data.alerts)} alert episodes)")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from gpulake_cli.simulate_fleet import FleetSpec, simulate

    spec = FleetSpec(
        nodes=args.nodes,
        gpus=args.gpus,
        minutes=args.minutes,
        interval_s=args.interval,
        seed=args.seed,
        formats=tuple(args.formats),
        gzip=args.gzip,
        upload_minutes=args.upload_minutes,
    )
    files = simulate(Path(args.out), spec)
    print(f"wrote {len(files)} raw files under {args.out}")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _cmd_demo(args: argparse.Namespace) -> int:
    from gpulake_cli import demo
    from gpulake_cli.simulate_fleet import FleetSpec

    spec = FleetSpec(nodes=args.nodes, gpus=args.gpus, minutes=args.minutes, interval_s=args.interval, seed=args.seed)
    summary = demo.run(
        Path(args.out), demo.ending_at(spec, args.end), serve=args.serve, say=(lambda _: None) if args.json else _say
    )
    if args.json:
        print(json.dumps(summary))
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    from gpulake_cli import cost_model

    fleet = cost_model.Fleet(args.gpus, args.interval, args.upload_every, args.gpus_per_node)
    if args.json:
        estimates = cost_model.estimates(fleet)
        print(json.dumps({k: {"total": round(e.total, 2), "lines": e.lines} for k, e in estimates.items()}))
    else:
        print(cost_model.render(fleet))
    return 0


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value

    return parse


def _utc_time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: use ISO 8601, e.g. 2026-12-01T12:00Z") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _cmd_sync(args: argparse.Namespace) -> int:
    from loaders.config import default_source, open_target
    from loaders.redact import redact
    from loaders.source import open_source
    from loaders.sync import sync
    from loaders.window import LOOKBACK_DAYS

    source = open_source(args.source or default_source())
    target = open_target(args.to)
    try:
        report = sync(source, target, lookback_days=None if args.full else _or(args.lookback_days, LOOKBACK_DAYS))
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
        "warnings": report.warnings,
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
            print(f"  not loaded: {redact(failure)}", file=sys.stderr)
        for warning in report.warnings:
            print(f"  warning: {redact(warning)}", file=sys.stderr)
    return 1 if report.failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gpulake", description="gpulake: GPU telemetry to Parquet and alerts.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    process = sub.add_parser("process", help="local files or folders -> processed layout in --out")
    process.add_argument("paths", nargs="+", help="files or folders (recursing; .gz too)")
    process.add_argument("--out", required=True, help="output directory (created if missing)")
    process.add_argument("--format", choices=sorted(SOURCES), help="skip detection and read as this format")
    process.add_argument("--tz", default="UTC", help="zone of local timestamps in the data (IANA name)")
    process.add_argument("--node", help="node name for data that does not carry one")
    process.add_argument(
        "--temp-limit",
        type=float,
        help="over-temperature limit for GPU models without a known one (°C; default 85)",
    )
    process.add_argument(
        "--max-inflated-mb",
        type=_positive(int),
        help=f"reject files larger than this once decompressed (default: ${MAX_INFLATED_VAR}, else from this "
        "machine's memory per format)",
    )
    process.add_argument("--json", action="store_true", help="one JSON line per object")
    process.set_defaults(func=_cmd_process)
    sync_cmd = sub.add_parser("sync", help="load processed Parquet and alerts into InfluxDB or PostgreSQL")
    sync_cmd.add_argument("--to", required=True, choices=["influxdb", "postgres"], help="target database")
    sync_cmd.add_argument(
        "--from", dest="source", help="s3://bucket/prefix or a directory (default: GPULAKE_SYNC_FROM or the bucket)"
    )
    sync_cmd.add_argument("--env-file", default=".env", help="connection settings file (default .env)")
    sync_cmd.add_argument(
        "--lookback-days",
        type=int,
        help=f"list date partitions from the newest one loaded minus this many days (default {SYNC_LOOKBACK_DAYS})",
    )
    sync_cmd.add_argument("--full", action="store_true", help="list every partition (backfill, late objects)")
    sync_cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    sync_cmd.set_defaults(func=_cmd_sync)
    upload = sub.add_parser("upload", help="files or folders -> the raw bucket (gzip, metadata, multipart)")
    upload.add_argument("paths", nargs="+", help="files or folders (recursing)")
    upload.add_argument("--bucket", help="raw bucket (default: GPULAKE_RAW_BUCKET or terraform output raw_bucket)")
    upload.add_argument("--node", help="node name (default: the file's folder name)")
    upload.add_argument("--source", choices=SOURCES, help="format (default: detected from the content)")
    upload.add_argument("--tz", help="zone of local timestamps in the files (IANA name)")
    upload.add_argument("--json", action="store_true", help="one JSON line per file")
    upload.set_defaults(func=_cmd_upload)
    status = sub.add_parser("status", help="objects per prefix, quarantine, DLQ depth, last sync, newest data")
    status.add_argument("--raw", help="raw bucket (s3://…) or directory to count")
    status.add_argument("--from", dest="source", help="processed s3://bucket/prefix or directory (default: as sync)")
    status.add_argument("--processed", dest="source", action=_DeprecatedAlias, help=argparse.SUPPRESS)
    status.add_argument("--dlq-url", help="dead-letter queue URL (terraform output dlq_url)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_cmd_status)
    alerts = sub.add_parser("alerts", help="alert episodes as a table or JSON Lines")
    alerts.add_argument("--from", dest="source", help="processed s3://bucket/prefix or directory (default: as sync)")
    alerts.add_argument("--since", help="only episodes that ended within this long before now, e.g. 24h, 7d, 30m")
    alerts.add_argument("--kind", help="only this kind (over_temperature, thermal_throttle, xid, ...)")
    alerts.add_argument("--node", help="only this node")
    alerts.add_argument("--json", action="store_true", help="JSON Lines")
    alerts.add_argument("--raw", action="store_true", help="per-object alerts instead of one line per episode")
    alerts.set_defaults(func=_cmd_alerts)
    report_cmd = sub.add_parser("report", help="self-contained HTML report with plots over processed Parquet")
    report_cmd.add_argument("--from", dest="source", help="processed s3://bucket/prefix or directory")
    report_cmd.add_argument("--out", required=True, help="HTML file to write")
    report_cmd.set_defaults(func=_cmd_report)
    simulate_cmd = sub.add_parser("simulate", help="write a simulated fleet's raw telemetry files")
    simulate_cmd.add_argument("--out", required=True, help="directory for <source>/<node>/ files")
    simulate_cmd.add_argument("--nodes", type=_positive(int), default=2, help="nodes in the fleet")
    simulate_cmd.add_argument("--gpus", type=_positive(int), default=4, help="GPUs per node")
    simulate_cmd.add_argument("--minutes", type=_positive(float), default=10.0, help="minutes of telemetry per node")
    simulate_cmd.add_argument("--interval", type=_positive(float), default=10.0, help="seconds between samples")
    simulate_cmd.add_argument("--seed", type=int, default=7, help="random seed (same seed, same files)")
    simulate_cmd.add_argument(
        "--formats", nargs="+", choices=SOURCES, default=list(SOURCES), help="formats to write (default: all)"
    )
    simulate_cmd.add_argument("--gzip", action="store_true", help="write .gz files")
    simulate_cmd.add_argument(
        "--upload-minutes",
        type=_positive(float),
        help="cut each node's telemetry into one file per this many minutes, as a collector uploads it",
    )
    simulate_cmd.set_defaults(func=_cmd_simulate)
    demo = sub.add_parser("demo", help="the whole pipeline locally: S3/SQS, Lambda handler, PostgreSQL, report")
    demo.add_argument("--out", default="demo-output", help="where raw files and report.html go")
    demo.add_argument("--nodes", type=_positive(int), default=3, help="simulated nodes")
    demo.add_argument("--gpus", type=_positive(int), default=4, help="GPUs per node")
    demo.add_argument("--minutes", type=_positive(float), default=180.0, help="minutes of simulated telemetry")
    demo.add_argument("--interval", type=_positive(float), default=30.0, help="seconds between samples")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulated fleet")
    demo.add_argument(
        "--end",
        type=_utc_time,
        help="time of the last simulated sample, e.g. 2026-12-01T12:00Z (default: now); with --seed, the same demo",
    )
    demo.add_argument(
        "--serve", action="store_true", help="then keep ingesting uploads to the local endpoint, until Ctrl-C"
    )
    demo.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    demo.set_defaults(func=_cmd_demo)
    cost = sub.add_parser("cost", help="monthly AWS cost for a fleet, next to AMP and CloudWatch metrics")
    cost.add_argument("--gpus", type=_positive(int), required=True, help="GPUs in the fleet")
    cost.add_argument(
        "--gpus-per-node", type=_positive(int), default=8, help="GPUs per node; each node uploads its own objects"
    )
    cost.add_argument("--interval", type=_positive(float), required=True, help="seconds between scrapes")
    cost.add_argument("--upload-every", type=_positive(float), default=5.0, help="minutes between uploads per node")
    cost.add_argument("--json", action="store_true", help="print JSON")
    cost.set_defaults(func=_cmd_cost)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gpulake_cli import errors_map
    from loaders.config import load_dotenv
    from loaders.redact import redact_logs

    redact_logs()

    load_dotenv(getattr(args, "env_file", ".env"))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("GPULAKE_DEBUG"):
            raise
        status, message = errors_map.describe(exc)
        print(f"error: {message}", file=sys.stderr)
        return status
