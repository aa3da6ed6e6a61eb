"""``demo --serve``: the local stack keeps working for files users upload, until Ctrl-C.

The S3 notification of an upload lands in the ingest queue like in AWS; here the
ingest runner keeps polling it (the event source mapping's job), new processed
objects are synced into the demo's PostgreSQL for Grafana, and each one is named
on the console. The endpoint, buckets and credentials to use are printed first.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from gpulake_cli.local_aws import CREDENTIALS, IngestRunner, LocalAws, Stack
from loaders.postgres import PostgresTarget
from loaders.progress import QuietProgress
from loaders.source import S3Source
from loaders.sync import sync


def instructions(aws: LocalAws, stack: Stack) -> list[str]:
    """How to reach the local stack from another shell: endpoint, buckets, credentials, a command to copy."""
    env = " ".join(f"{k}={v}" for k, v in CREDENTIALS.items())
    example = f"s3://{stack.raw_bucket}/dcgm/my-node/scrape.prom"
    return [
        f"  endpoint:     {aws.endpoint}",
        f"  raw bucket:   {stack.raw_bucket} (uploads here are ingested; key <source>/<node>/<file>)",
        f"  processed:    {stack.processed_bucket}",
        f"  credentials:  {env}",
        f"  upload:       {env} aws s3 cp FILE {shlex.quote(example)} --endpoint-url {aws.endpoint}",
        f"  or:           {env} AWS_ENDPOINT_URL={aws.endpoint} gpulake upload FILE --bucket {stack.raw_bucket}",
    ]


def serve(aws: LocalAws, stack: Stack, dsn: str, log: Path, say: Callable[[str], None]) -> None:
    """Ingest and load whatever arrives until interrupted (KeyboardInterrupt ends it, as Ctrl-C does)."""
    say("serving: files uploaded to the local stack are ingested and loaded into PostgreSQL")
    for line in instructions(aws, stack):
        say(line)
    say(f"PostgreSQL stays up at {dsn} for Grafana (docs/grafana/); Ctrl-C stops everything")
    processed = S3Source(aws.client("s3"), stack.processed_bucket)
    seen = set(processed.all_keys())
    target = PostgresTarget(dsn)
    try:
        with log.open("a") as lambda_log:
            runner = IngestRunner(aws, stack, log=lambda_log)
            while True:
                if not runner.run_once(wait_s=1):
                    continue
                loaded = sync(processed, target, progress=QuietProgress())
                new = sorted(set(processed.all_keys()) - seen)
                seen.update(new)
                for key in new:
                    say(f"processed: s3://{stack.processed_bucket}/{key}")
                say(f"loaded {loaded.rows:,} rows from {loaded.loaded} objects into PostgreSQL")
    finally:
        target.close()
