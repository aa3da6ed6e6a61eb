"""``automated_pipeline.py demo``: the whole pipeline on this machine, nothing to install or sign up for.

A local S3/SQS endpoint (moto's server) with the buckets, queue and notification
``terraform/`` creates; a simulated fleet plus the samples in ``gpulake_cli/samples`` uploaded
through the real S3 API; the real ingest handler consuming the queue; the real
sweeper run on the schedule EventBridge keeps once the uploads stop (its clock
advanced 5 minutes a run, so episodes resolve and grouped notifications go out
without waiting); a throwaway PostgreSQL cluster the loader syncs into; an HTML report. Everything started here
is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from gpulake.alerts.lifecycle import NOTIFIED
from gpulake.local import iter_files
from gpulake_cli import analytics, demo_serve, report, uploader
from gpulake_cli.alerts_view import episodes as read_episodes
from gpulake_cli.alerts_view import read as read_alerts
from gpulake_cli.local_aws import IngestRunner, LocalAws, count_messages, sweep_until_quiet
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from gpulake_cli.status import dlq_depth, processed_counts
from loaders.local_postgres import LocalPostgres
from loaders.postgres import PostgresTarget
from loaders.progress import QuietProgress
from loaders.source import LocalSource, S3Source
from loaders.sync import sync

SAMPLES = Path(__file__).resolve().parent / "samples"


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def ending_at(spec: FleetSpec, end: dt.datetime | None = None) -> FleetSpec:
    """The same fleet with its last sample at ``end`` (default: about now, so dashboards and ``alerts --since``
    show it at once); a given ``end`` with the same seed repeats a demo exactly, date partitions included."""
    step = dt.timedelta(seconds=spec.interval_s)
    last = end or dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return dataclasses.replace(spec, start=last - dt.timedelta(minutes=spec.minutes) + step)


def run(out: Path, spec: FleetSpec, serve: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo; returns the summary it prints."""
    started = time.monotonic()
    # Ctrl-C and SIGTERM end the demo through the cleanup below (even where a shell started us with SIGINT ignored)
    previous = {sig: signal.signal(sig, _terminate_as_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    aws = LocalAws().start()
    pg: LocalPostgres | None = None
    try:
        say(f"local S3/SQS endpoint (moto) at {aws.endpoint}")
        stack = aws.create_stack()
        raw = out / "raw"
        shutil.rmtree(raw, ignore_errors=True)
        simulate(raw / "simulated", spec)
        shutil.copytree(SAMPLES, raw / "samples")
        files = list(iter_files([raw]))
        s3 = aws.client("s3")
        uploaded = sum(uploader.send(s3, uploader.plan(p, stack.raw_bucket, None, None, None), False) for p in files)
        say(f"uploaded {len(files)} files ({uploaded / 1e6:.1f} MB gzip) to s3://{stack.raw_bucket}")
        out.mkdir(parents=True, exist_ok=True)
        with (out / "lambda.log").open("w") as lambda_log:
            handled = IngestRunner(aws, stack, log=lambda_log).drain()
        say(f"ingest handler consumed {handled} S3 notifications (its logs and EMF metrics: {out / 'lambda.log'})")
        with (out / "lambda.log").open("a") as lambda_log:
            sweeps = sweep_until_quiet(aws, stack, log=lambda_log)
        say(f"sweeper ran {sweeps} times, as its 5-minute schedule would after the last upload (clock advanced)")
        pg = LocalPostgres().start()
        target = PostgresTarget(pg.dsn)
        try:
            loaded = sync(S3Source(s3, stack.processed_bucket), target, progress=QuietProgress())
            per_kind = dict(
                target.conn.execute("SELECT kind, count(*) FROM gpu_alerts GROUP BY 1 ORDER BY 1").fetchall()
            )
            rows = target.conn.execute("SELECT count(*) FROM gpu_metrics").fetchone()[0]
        finally:
            target.close()
        notifications = count_messages(aws.client("sqs"), stack.inbox_url)
        local = _copy_processed(S3Source(s3, stack.processed_bucket), out / "processed")
        raw_alerts = read_alerts(LocalSource(local))
        episodes = read_episodes(LocalSource(local))
        processed = processed_counts(LocalSource(local))
        report_path = report.write(analytics.load(LocalSource(local)), out / "report.html", "gpulake demo fleet")
        summary = {
            "files_uploaded": len(files),
            "notifications_handled": handled,
            "sweeps": sweeps,
            "processed_objects": processed["objects"],
            "rows_in_postgres": rows,
            "rows_loaded": loaded.rows,
            "quarantined_rows": processed["quarantined_rows"],
            "rejected_objects": processed["rejected_objects"],
            "alerts_by_kind": per_kind,
            "episodes_by_kind": dict(sorted(Counter(e["kind"] for e in episodes).items())),
            "episodes_notified": sum(e["severity"] in NOTIFIED for e in episodes),
            "sns_messages": notifications.messages,
            # messages carrying each state, and episodes named with each state across all messages
            "sns_states": dict(sorted(notifications.messages_with.items())),
            "sns_episode_states": dict(sorted(notifications.episodes_with.items())),
            # what the handler sent before episodes: one message per warning/critical per-object alert
            "sns_messages_per_object": sum(a["severity"] in ("warning", "critical") for a in raw_alerts),
            "dlq_depth": dlq_depth(aws.client("sqs"), stack.dlq_url),
            "report": str(report_path.resolve()),
            "processed_copy": str(local.resolve()),
            "postgres_dsn": pg.dsn,
            "seconds": round(time.monotonic() - started, 1),
        }
        _print_summary(summary, say)
        if serve:
            demo_serve.serve(aws, stack, pg.dsn, out / "lambda.log", say)
        return summary
    finally:
        if pg is not None:
            pg.stop()
        aws.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _copy_processed(bucket: S3Source, local: Path) -> Path:
    """The processed bucket as a directory: it outlives the endpoint (``alerts``/``report``/``sync --from`` it)."""
    shutil.rmtree(local, ignore_errors=True)
    for key in bucket.all_keys():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(bucket.read_key(key))
    return local


def _print_summary(s: dict[str, Any], say: Callable[[str], None]) -> None:
    alerts = Counter(s["alerts_by_kind"])
    say("")
    say(f"demo done in {s['seconds']} s")
    written = ", ".join(f"{n} {prefix}" for prefix, n in s["processed_objects"].items())
    say(f"  objects:  {s['files_uploaded']} uploaded; written: {written}; {s['rejected_objects']} rejected")
    say(f"  rows:     {s['rows_in_postgres']:,} in PostgreSQL table gpu_metrics; {s['quarantined_rows']} quarantined")
    say(f"  alerts:   {sum(alerts.values())} per-object: " + ", ".join(f"{k} {v}" for k, v in sorted(alerts.items())))
    episodes = s["episodes_by_kind"]
    say(f"  episodes: {sum(episodes.values())}: " + ", ".join(f"{k} {v}" for k, v in episodes.items()))
    states = ", ".join(f"{k} {v}" for k, v in s["sns_episode_states"].items())
    before = s["sns_messages_per_object"]
    say(
        f"  SNS:      {s['sns_messages']} messages naming {states} of {s['episodes_notified']} warning/critical "
        f"episodes; one message per per-object alert would be {before}"
    )
    say(f"  DLQ:      {s['dlq_depth']} messages")
    say(f"  report:   {s['report']}")
    say(f"  data:     {s['processed_copy']} (try: gpulake alerts --from it --since 6h)")
    say("  Grafana:  run `gpulake demo --serve` to keep the database up, then add a PostgreSQL")
    say("            datasource for the DSN printed there and import docs/grafana/import/postgres/*.json")
