#!/usr/bin/env python3
"""gpulake node collector: scrape dcgm-exporter (or nvidia-smi) on a GPU node and ship the files to the raw bucket.

Every ``--interval`` seconds it appends one scrape, preceded by a
``# gpulake-scrape <epoch_ms>`` marker, to the open spool file; every ``--rotate``
minutes it closes that file, gzips it into ``<spool>/ready/`` and uploads everything
in ``ready/`` oldest first to ``s3://<bucket>/dcgm/<node>/<start>.prom.gz`` (or
``nvidia-smi/<node>/<start>.csv.gz``). A file leaves the spool only once S3 has
acknowledged it, so nothing is lost while S3 is unreachable; the backlog goes out in
order when it is back. Keys are derived from the file, so a re-sent file overwrites
itself instead of duplicating. SIGTERM/SIGINT: rotate, try a last upload, exit.

Needs only Python 3.9+ and boto3 (``pip install boto3``); see docs/operations.md for
the systemd unit, the container image and the Kubernetes DaemonSet (docs/operations/).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

NVIDIA_SMI_QUERY = (
    "timestamp,name,pci.bus_id,uuid,temperature.gpu,temperature.memory,utilization.gpu,power.draw,power.limit,"
    "clocks.sm,clocks.mem,memory.used,clocks_event_reasons.active"
)


def log(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Collector:
    """Spool, rotation and upload; the loop in :meth:`run` only decides when."""

    def __init__(self, args: argparse.Namespace, s3: Any) -> None:
        self.args = args
        self.s3 = s3
        self.spool = Path(args.spool)
        self.ready = self.spool / "ready"
        self.ready.mkdir(parents=True, exist_ok=True)
        self.source, self.suffix = ("nvidia-smi", ".csv") if args.nvidia_smi else ("dcgm", ".prom")
        self.current = self.spool / f"current{self.suffix}"
        self.started_ms: int | None = None
        #: The last marker's time: markers only increase (ingest cuts large objects at them, ADR 0008).
        self.last_ms = 0

    def scrape(self) -> bytes:
        if self.args.nvidia_smi:
            return subprocess.run(
                ["nvidia-smi", f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv"],
                capture_output=True, check=True, timeout=30,
            ).stdout  # fmt: skip
        with urllib.request.urlopen(self.args.url, timeout=10) as response:
            return response.read()

    def collect_once(self) -> None:
        # a scrape's time never repeats or goes back, even when the wall clock is stepped back
        now_ms = self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        try:
            body = self.scrape()
        except (OSError, subprocess.SubprocessError) as exc:
            log("scrape_failed", error=str(exc))
            return
        marker = b"" if self.args.nvidia_smi else f"# gpulake-scrape {now_ms}\n".encode()
        with self.current.open("ab") as spool:
            spool.write(marker + body + (b"" if body.endswith(b"\n") else b"\n"))
            spool.flush()
            os.fsync(spool.fileno())
        self.started_ms = self.started_ms or now_ms
        log("scraped", bytes=len(body), at_ms=now_ms)

    def rotate(self) -> None:
        """Close the open spool file into ready/ (gzip, then an atomic rename)."""
        if not self.current.exists() or self.current.stat().st_size == 0:
            return
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime((self.started_ms or 0) / 1000))
        name = f"{stamp}{(self.started_ms or 0) % 1000:03d}Z{self.suffix}.gz"
        partial = self.ready / f".{name}.tmp"
        with self.current.open("rb") as source, gzip.open(partial, "wb", compresslevel=6) as packed:
            packed.write(source.read())
        os.replace(partial, self.ready / name)
        self.current.unlink()
        self.started_ms = None
        log("rotated", file=name)

    def upload_backlog(self) -> bool:
        """Upload ready/ oldest first; stop at the first failure (keeps the order). True when empty."""
        for path in sorted(self.ready.glob(f"*{self.suffix}.gz")):
            key = f"{self.args.prefix}{self.source}/{self.args.node}/{path.name}"
            try:
                with path.open("rb") as body:
                    self.s3.put_object(
                        Bucket=self.args.bucket,
                        Key=key,
                        Body=body,
                        Metadata={"node": self.args.node, "source": self.source},
                    )
            except Exception as exc:  # botocore: endpoint down, throttled, denied - keep the file, retry later
                log(
                    "upload_failed",
                    key=key,
                    error=str(exc).splitlines()[0][:200],
                    backlog=len(list(self.ready.glob("*.gz"))),
                )
                return False
            path.unlink()
            log("uploaded", key=key)
        return True

    def run(self, stop: threading.Event) -> None:
        rotate_every = self.args.rotate * 60
        last_rotation = time.monotonic()
        next_scrape = time.monotonic()
        while not stop.is_set():
            self.collect_once()
            if time.monotonic() - last_rotation >= rotate_every:
                self.rotate()
                self.upload_backlog()
                last_rotation = time.monotonic()
            next_scrape = next_tick(next_scrape, self.args.interval, time.monotonic())
            stop.wait(max(0.0, next_scrape - time.monotonic()))
        self.rotate()
        self.upload_backlog()


def next_tick(previous: float, interval: float, now: float) -> float:
    """The next scrape time on the ``interval`` grid after ``previous``, skipping the ticks already missed
    (a slow upload): as Prometheus does, a late collector does not scrape in a burst to catch up."""
    tick = previous + interval
    if tick < now:
        tick += math.ceil((now - tick) / interval) * interval
    return tick


def default_spool() -> str:
    """``<state directory>/spool``: systemd's ``StateDirectory=gpulake`` creates it for the (dynamic) user."""
    return f"{os.environ.get('STATE_DIRECTORY', '/var/lib/gpulake').split(':')[0]}/spool"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bucket", default=os.environ.get("GPULAKE_RAW_BUCKET"), help="raw bucket (GPULAKE_RAW_BUCKET)"
    )
    parser.add_argument("--prefix", default=os.environ.get("GPULAKE_RAW_PREFIX", ""), help="raw_prefix of the stack")
    parser.add_argument("--node", default=os.environ.get("NODE_NAME") or socket.gethostname(), help="node name")
    parser.add_argument("--url", default="http://localhost:9400/metrics", help="dcgm-exporter metrics URL")
    parser.add_argument("--nvidia-smi", action="store_true", help="run nvidia-smi --query-gpu instead of scraping")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between scrapes")
    parser.add_argument("--rotate", type=float, default=5.0, help="minutes between uploads")
    parser.add_argument("--spool", default=default_spool(), help="local spool directory (keep it on disk)")
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("--bucket (or GPULAKE_RAW_BUCKET) is required")
    if args.interval <= 0 or args.rotate <= 0:
        parser.error("--interval and --rotate must be greater than 0")
    return args


def main(argv: list[str] | None = None) -> int:
    import boto3
    from botocore.config import Config

    args = parse_args(argv)
    s3 = boto3.client("s3", config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log("started", node=args.node, bucket=args.bucket, interval_s=args.interval, rotate_min=args.rotate)
    Collector(args, s3).run(stop)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
