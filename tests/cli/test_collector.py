"""The node collector against a local exporter serving real dcgm-exporter scrapes and an S3 endpoint that is
down for a while, then comes up: every scrape arrives exactly once, the backlog in order, the spool empties."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gpulake_cli import collector as node_collector
from gpulake_cli.local_aws import LocalAws
from loaders.local_postgres import free_port
from tests.cli.helpers import ROOT
from tests.conftest import real_file

FIXTURES = [
    "dcgm/NVIDIA__aicr__evidence_accelerator-metrics_md__H100x8_4.x_filtered.prom",
    "dcgm/NVIDIA__cloud-native-docs__gpu-telemetry_dcgm-exporter_rst__A100_MIG_2.x.prom",
    "dcgm/NVIDIA__dcgm-exporter__README_quickstart_excerpt.prom",
]
MARKER = re.compile(rb"^# gpulake-scrape (\d+)\n", re.M)


def _exporter(bodies: list[bytes], served: list[bytes]) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies[len(served) % len(bodies)]
            served.append(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _wait_for(process: subprocess.Popen[str], lines: list[dict], event: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(line["event"] == event for line in lines):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} in {lines[-5:]}")


def test_every_scrape_arrives_exactly_once_after_an_outage(tmp_path: Path) -> None:
    bodies = [real_file(f).read_bytes() for f in FIXTURES]
    served: list[bytes] = []
    exporter = _exporter(bodies, served)
    port = free_port()
    bucket = "gpulake-raw-000000000000"
    env = os.environ | {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    }  # fmt: skip
    collector = subprocess.Popen(
        [sys.executable, str(ROOT / "gpulake_cli" / "collector.py"), "--bucket", bucket, "--node", "dgx-01",
         "--url", f"http://127.0.0.1:{exporter.server_address[1]}/metrics", "--interval", "0.1",
         "--rotate", "0.01", "--spool", str(tmp_path / "spool")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in collector.stdout), daemon=True)
    reader.start()
    aws = LocalAws(port)
    try:
        _wait_for(collector, lines, "upload_failed")
        while sum(line["event"] == "rotated" for line in lines) < 3:  # a backlog builds up while S3 is down
            time.sleep(0.05)
        aws.start()
        aws.client("s3").create_bucket(Bucket=bucket)
        _wait_for(collector, lines, "uploaded")
        time.sleep(1.5)
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(30) == 0, collector.stderr.read()
        reader.join(5)
        s3 = aws.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dcgm/dgx-01/")["Contents"]]
        uploaded = [line["key"] for line in lines if line["event"] == "uploaded"]
        assert uploaded == sorted(uploaded) == sorted(keys), "each file once, oldest first"
        scrapes: list[tuple[int, bytes]] = []
        for key in sorted(keys):
            obj = s3.get_object(Bucket=bucket, Key=key)
            assert obj["Metadata"] == {"node": "dgx-01", "source": "dcgm"}
            text = gzip.decompress(obj["Body"].read())
            parts = MARKER.split(text)
            assert parts[0] == b""
            scrapes += [(int(parts[i]), parts[i + 1]) for i in range(1, len(parts), 2)]
    finally:
        if collector.poll() is None:
            collector.kill()
        aws.stop()
        exporter.shutdown()
    assert len(served) == len(scrapes) > 10
    assert [body for _, body in scrapes] == [b if b.endswith(b"\n") else b + b"\n" for b in served]
    times = [t for t, _ in scrapes]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert not list((tmp_path / "spool").rglob("*.gz")) and not (tmp_path / "spool" / "current.prom").exists()


def test_a_late_collector_skips_the_missed_ticks_instead_of_scraping_in_a_burst() -> None:
    # 15 s interval, the upload took 50 s: the next scrape is the next tick on the grid, not four at once
    assert node_collector.next_tick(100.0, 15.0, 150.0) == 160.0
    assert node_collector.next_tick(100.0, 15.0, 110.0) == 115.0  # on time: the next tick
    assert node_collector.next_tick(100.0, 15.0, 115.0) == 115.0


def test_scrape_markers_only_increase_when_the_clock_repeats_or_steps_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = node_collector.parse_args(["--bucket", "raw", "--node", "dgx-01", "--spool", str(tmp_path)])
    node = node_collector.Collector(args, s3=None)
    monkeypatch.setattr(node, "scrape", lambda: b'DCGM_FI_DEV_GPU_TEMP{gpu="0"} 40\n')
    for wall in (1_000.0, 1_000.0, 999.0, 1_000.5):  # the same millisecond twice, then an NTP step back
        monkeypatch.setattr(node_collector.time, "time", lambda wall=wall: wall)
        node.collect_once()
    times = [int(t) for t in MARKER.findall((tmp_path / "current.prom").read_bytes())]
    assert times == [1_000_000, 1_000_001, 1_000_002, 1_000_500]
