"""`demo --serve` as a user tries it: upload a file of their own to the printed endpoint, see it processed, Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3

from tests.cli.helpers import CLI, ROOT

SAMPLE = ROOT / "gpulake_cli" / "samples" / "nvidia-smi" / "rig-7" / "query-gpu.csv"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _field(text: str, name: str) -> str:
    return re.search(rf"^  {name}:\s+(\S+)", text, re.MULTILINE)[1]  # type: ignore[index]


def test_serve_ingests_what_a_user_uploads_then_ctrl_c_stops_it(tmp_path: Path) -> None:
    args = ["demo", "--out", str(tmp_path), "--nodes", "1", "--gpus", "1", "--minutes", "10", "--serve"]
    demo = subprocess.Popen(
        [sys.executable, str(CLI), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    assert demo.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        # GIVEN the instructions the demo prints once it serves
        deadline = time.monotonic() + 240
        while not any("Ctrl-C stops everything" in line for line in lines):
            assert demo.poll() is None and time.monotonic() < deadline, "".join(lines) + demo.stderr.read()
            time.sleep(0.2)
        text = "".join(lines)
        endpoint, raw = _field(text, "endpoint"), _field(text, "raw bucket")
        credentials = dict(pair.split("=", 1) for pair in re.search(r"^  credentials:\s+(.*)$", text, re.M)[1].split())
        assert f"aws s3 cp FILE s3://{raw}/" in text and f"--endpoint-url {endpoint}" in text
        # WHEN a user uploads a file of their own there with those credentials
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            region_name=credentials["AWS_DEFAULT_REGION"],
        )
        s3.put_object(Bucket=raw, Key="nvidia-smi/my-rig/mine.csv", Body=SAMPLE.read_bytes())
        # THEN its processed output appears and is named on the console
        processed = _field(text, "processed")
        deadline = time.monotonic() + 120
        while not any("mine" in line and line.startswith("processed: s3://") for line in lines):
            assert demo.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=processed)["Contents"]]
        assert any(k.startswith("metrics/source=nvidia-smi/") and "mine" in k for k in keys), keys
        assert any("rows from" in line and "into PostgreSQL" in line for line in lines)
        moto_port = int(endpoint.rsplit(":", 1)[1])
        pg_port = int(re.search(r"stays up at host=127\.0\.0\.1 port=(\d+)", text)[1])  # type: ignore[index]
        # WHEN Ctrl-C
        demo.send_signal(signal.SIGINT)
        # THEN everything it started is stopped
        assert demo.wait(60) == 130
        assert not _port_open(moto_port) and not _port_open(pg_port)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
