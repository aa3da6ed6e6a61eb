"""`demo` end to end through the entry point: its summary figures, its report, and nothing left running."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from gpulake_cli.demo import ending_at
from gpulake_cli.simulate_fleet import FleetSpec
from tests.cli.helpers import CLI, ROOT, run

SAMPLE_FILES = 3  # gpulake_cli/samples


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _end_within_one_day(minutes: int) -> str:
    """Now, or just before midnight UTC when the window would cross it: objects then write one file of each kind
    per date they span, and the counts below are those of one date (a run at about 01:15 UTC saw 17, not 10)."""
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    if (end - dt.timedelta(minutes=minutes)).date() != end.date():
        end = end.replace(hour=0, minute=0) - dt.timedelta(minutes=1)
    return end.isoformat()


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    end = _end_within_one_day(120)
    args = ("--nodes", "2", "--gpus", "2", "--minutes", "120", "--end", end, "--json")
    result = run("demo", "--out", str(tmp_path), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    simulated = 2 * 3 + 1  # dcgm, gpuz, nvidia-smi per node + one fleet thermal CSV
    assert summary["files_uploaded"] == simulated + SAMPLE_FILES
    assert summary["notifications_handled"] == summary["files_uploaded"] + 1  # + the s3:TestEvent
    processed = dict(summary["processed_objects"])
    # every episode is closed by the sweeper and written (those shorter than a rule's minimum are no episode)
    assert processed.pop("episodes") >= sum(summary["episodes_by_kind"].values())
    assert processed == {"alerts": 10, "metrics": 10, "quarantine": 1}
    assert summary["quarantined_rows"] == 1  # the thermal sample's unreadable timestamp
    assert summary["rejected_objects"] == 0 and summary["dlq_depth"] == 0
    # dcgm and nvidia-smi: 2 nodes x 2 GPUs x 240 samples; GPU-Z logs one GPU per node; thermal rows on top;
    # the samples: 3 GPU-Z, 4 nvidia-smi and 5 thermal rows
    assert summary["rows_in_postgres"] > 2 * 2 * 240 * 2 + 2 * 240 + 12
    alerts, closed = sum(summary["alerts_by_kind"].values()), summary["processed_objects"]["episodes"]
    assert summary["rows_loaded"] == summary["rows_in_postgres"] + alerts + closed  # gpu_episodes too
    assert summary["alerts_by_kind"]["thermal_failure"] >= 1  # the thermal sample's "Thermally Failed" row
    # episodes: grouped notifications, and none missed: the sweeper (run on its schedule) resolves them all,
    # each named once firing and once resolved
    assert sum(summary["episodes_by_kind"].values()) > 0 and summary["sweeps"] >= 1
    # 6 nodes alert (2 simulated, 4 in the samples), each object carrying hours: per node one message when it
    # first fires and one when the sweeper resolves it with what waited (the default demo fleet: 163 -> 14)
    assert summary["sns_messages"] == 2 * 6 < summary["sns_messages_per_object"] / 6
    assert summary["sns_states"]["firing"] >= 1
    states = summary["sns_episode_states"]
    assert states["firing"] == states["resolved"] == summary["episodes_notified"] > 0
    report = Path(summary["report"])
    assert report.is_file() and report.read_text().count("Plotly.newPlot(") == 8  # every chart, alert timeline too
    assert (tmp_path / "lambda.log").read_text().count('"CloudWatchMetrics"') >= 1
    recent = run("alerts", "--from", summary["processed_copy"], "--since", "6h", "--json")
    assert recent.returncode == 0 and len(recent.stdout.splitlines()) > 0  # the simulated fleet ends at most 2 h ago
    port = int(summary["postgres_dsn"].split("port=")[1].split()[0])
    assert not _port_open(port), "the demo's PostgreSQL must be stopped on exit"


def test_the_demo_fleet_ends_now_or_where_told() -> None:
    # 120 samples 30 s apart: the first is 59.5 minutes before the last
    spec = FleetSpec(nodes=1, gpus=1, minutes=60, interval_s=30)
    last = ending_at(spec).start + dt.timedelta(minutes=59.5)
    assert abs(last - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    end = dt.datetime(2026, 12, 4, 0, 40, tzinfo=dt.UTC)
    assert ending_at(spec, end).start == dt.datetime(2026, 12, 3, 23, 40, 30, tzinfo=dt.UTC)


def test_a_demo_end_that_is_no_time_is_a_usage_error(tmp_path: Path) -> None:
    result = run("demo", "--out", str(tmp_path), "--end", "yesterday")
    assert result.returncode == 2 and "--end: 'yesterday' is not a time: use ISO 8601" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "raw").exists()


def test_demo_summary_is_readable(tmp_path: Path) -> None:
    result = run("demo", "--out", str(tmp_path), "--nodes", "1", "--gpus", "1", "--minutes", "30")
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    for needle in ("demo done in", "objects:", "rows:", "alerts:", "episodes:", "SNS:", "report:", "Grafana:"):
        assert needle in text
    assert f"report:   {tmp_path.resolve() / 'report.html'}" in text


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    args = [sys.executable, str(CLI), "demo", "--out", str(tmp_path), "--nodes", "1", "--gpus", "1", "--minutes", "20"]
    demo = subprocess.Popen([*args, "--serve"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    assert demo.stdout is not None
    for line in demo.stdout:
        seen.append(line)
        if "Ctrl-C stops everything" in line:
            break
    text = "".join(seen)
    moto_port = int(re.search(r"moto\) at http://127\.0\.0\.1:(\d+)", text)[1])
    pg_port = int(re.search(r"stays up at host=127\.0\.0\.1 port=(\d+)", text)[1])
    assert _port_open(moto_port) and _port_open(pg_port)
    demo.send_signal(signal.SIGINT)
    assert demo.wait(60) == 130
    assert not _port_open(moto_port) and not _port_open(pg_port)
