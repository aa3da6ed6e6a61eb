"""The processed layout end to end on local files: idempotence, quarantine, rejection, CLI exit codes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from gpulake.context import SourceContext
from gpulake.ingest import ingest
from gpulake.limits import SizeLimit
from gpulake.output.sink import LocalSink
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.conftest import ROOT, real_file


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "automated_pipeline.py"), *args], capture_output=True, text=True, timeout=120
    )


def test_processing_twice_gives_byte_identical_outputs(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    simulate(raw, FleetSpec(nodes=2, gpus=2, minutes=5, seed=3))
    first, second = tmp_path / "a", tmp_path / "b"
    assert run_cli("process", str(raw), "--out", str(first)).returncode == 0
    assert run_cli("process", str(raw), "--out", str(second)).returncode == 0
    assert run_cli("process", str(raw), "--out", str(second)).returncode == 0  # re-delivery overwrites
    assert snapshot(first) == snapshot(second)
    keys = sorted(snapshot(first))
    assert any(k.startswith("metrics/source=dcgm/date=2026-11-02/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith("metrics/source=gpuz/date=2026-11-02/") for k in keys)
    assert any(k.startswith("alerts/date=2026-11-02/") and k.endswith(".jsonl") for k in keys)


def test_parquet_is_hive_partitioned_and_readable_as_a_dataset(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    simulate(raw, FleetSpec(nodes=1, gpus=2, minutes=2, formats=("dcgm", "nvidia-smi"), gzip=True))
    assert run_cli("process", str(raw), "--out", str(tmp_path / "out")).returncode == 0
    # ``source`` is both a column and a partition key (Glue declares it only as the key)
    table = pq.read_table(tmp_path / "out" / "metrics", partitioning=None)
    paths = [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out" / "metrics").rglob("*.parquet")]
    assert all(p.split("/")[2] == "date=2026-11-02" for p in paths)
    assert set(table.column("source").to_pylist()) == {"dcgm", "nvidia-smi"}
    assert table.column("source").to_pylist().count("dcgm") == 2 * 12


def test_bad_rows_are_quarantined_and_good_rows_land(tmp_path: Path) -> None:
    data = (
        b"timestamp, index, temperature.gpu, power.draw [W]\n"
        b"2026/01/01 00:00:00.000, 0, 40, 100.0 W\n"
        b"2026/01/01 00:00:01.000, 0, warm, 101.0 W\n"
        b"2026/01/01 00:00:02.000, 0, 41\n"
        b"1970/01/01 00:00:03.000, 0, 42, 102.0 W\n"
        b"2026/01/01 00:00:04.000, 0, 43, 103.0 W\n"
    )
    result = ingest(
        data,
        SourceContext(key="smi.csv", object_time_ms=0),
        LocalSink(tmp_path),
        version="v1",
        max_inflated=SizeLimit.uniform(2**20),
    )
    assert (result.rows, result.bad_rows, result.rejected) == (2, 3, None)
    (quarantine,) = [k for k in result.keys if k.startswith("quarantine/")]
    lines = [json.loads(x) for x in (tmp_path / quarantine).read_text().splitlines()]
    assert [(q["line"], q["reason"]) for q in lines] == [
        (4, "row has 3 cells but its header has 4"),
        (3, "column 'temperature.gpu' does not hold a number"),
        (5, "timestamp outside 2000-01-01..2100-01-01"),
    ]
    assert lines[1]["raw"] == "2026/01/01 00:00:01.000, 0, warm, 101.0 W"


def test_unreadable_objects_are_rejected_with_one_clear_message(tmp_path: Path) -> None:
    cases = {
        "empty.csv": b"",
        "image.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "cut.prom.gz": gzip.compress(b'DCGM_FI_DEV_GPU_TEMP{gpu="0"} 1\n' * 100)[:40],
        "notes.txt": b"hello, this is not telemetry\n",
    }
    for name, body in cases.items():
        (tmp_path / name).write_bytes(body)
    proc = run_cli("process", *[str(tmp_path / n) for n in cases], "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    messages = [line for line in proc.stderr.splitlines() if line.startswith("rejected:")]
    assert len(messages) == 4
    assert any("empty.csv: object is empty" in m for m in messages)
    assert any("image.png: binary data" in m for m in messages)
    assert any("cut.prom.gz: gzip data is truncated" in m for m in messages)
    assert any("notes.txt:1: not a known telemetry layout" in m for m in messages)
    assert len(list((tmp_path / "out" / "quarantine").iterdir())) == 4


def test_cli_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    proc = run_cli("process", "--out", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run_cli("process", str(tmp_path), "--out", str(tmp_path / "o"), "--format", "xml")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = run_cli("process", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 1 and "no such file" in proc.stderr
    proc = run_cli("process", str(tmp_path), "--out", str(tmp_path / "o"), "--tz", "Mars/Olympus")
    assert proc.returncode == 2 and "unknown time zone" in proc.stderr


def test_real_file_in_one_command(tmp_path: Path) -> None:
    path = real_file("gpuz/T2xic__GPU-Z-grapher__GPU-Z_Sensor_Log_bm1.txt")
    proc = run_cli("process", str(path), "--out", str(tmp_path), "--node", "gaming-pc", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["format"], summary["rows"], summary["bad_rows"]) == ("gpuz", 1171, 11)  # 11 repeated seconds
    alerts = [json.loads(x) for p in (tmp_path / "alerts").rglob("*.jsonl") for x in p.read_text().splitlines()]
    kinds = {a["kind"] for a in alerts}
    # it peaks above 85 °C; the default threshold rules (rules.default.jsonl) flag it too
    assert kinds == {"thermal_throttle", "power_throttle", "over_temperature", "threshold"}
    assert all(a["episode_id"] for a in alerts)
    assert {a["node"] for a in alerts} == {"gaming-pc"}


def test_lambda_cold_import_does_not_load_pandas() -> None:
    # GIVEN the Lambda environment, with pandas installed (as in the dev venv); nothing on the ingest path uses it
    env = os.environ | {"AWS_LAMBDA_FUNCTION_NAME": "gpulake-ingest", "GPULAKE_PROCESSED_BUCKET": "b"}
    code = "import sys, gpulake.handlers.ingest; print('pandas' in sys.modules)"
    # WHEN the handler module is imported THEN pyarrow has not pulled pandas in
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
