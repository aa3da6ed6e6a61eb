"""simulate -> process -> alerts / status / report, and cost, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import run


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli")
    result = run(
        "simulate", "--out", str(base / "raw"), "--nodes", "2", "--gpus", "2", "--minutes", "90", "--interval", "30"
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 7 raw files" in result.stdout  # 2 nodes x dcgm/gpuz/nvidia-smi + one fleet thermal CSV
    result = run("process", str(base / "raw"), "--out", str(base / "out"), "--json")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 7 and all(o["rows"] > 0 for o in objects)
    return base / "out"


def _alerts(processed: Path, *args: str) -> list[dict]:
    result = run("alerts", "--from", str(processed), "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_alerts_lists_and_filters(processed: Path) -> None:
    raw = _alerts(processed, "--raw")
    files = [json.loads(line) for p in (processed / "alerts").rglob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(raw) == len(files) > 0
    everything = _alerts(processed)  # one line per episode
    assert 0 < len(everything) <= len(raw)
    assert {e["episode_id"] for e in everything} <= {a["episode_id"] for a in raw}
    assert {e["state"] for e in everything} <= {"open", "closed"}
    kind = everything[0]["kind"]
    assert _alerts(processed, "--kind", kind) == [a for a in everything if a["kind"] == kind]
    assert _alerts(processed, "--node", "gpu-node-01") == [a for a in everything if a["node"] == "gpu-node-01"]
    assert _alerts(processed, "--since", "1h") == []  # the simulated fleet ran in November 2026, not this hour
    assert len(_alerts(processed, "--since", "3650d")) == len(everything)
    table = run("alerts", "--from", str(processed), "--kind", kind)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:5] == [
        "state",
        "resolution",
        "start",
        "end",
        "severity",
    ]
    assert table.stdout.strip().endswith(f"{len([a for a in everything if a['kind'] == kind])} episodes")
    per_object = run("alerts", "--from", str(processed), "--raw", "--kind", kind)
    assert per_object.stdout.strip().endswith(f"{len([a for a in raw if a['kind'] == kind])} per-object alerts")


def test_status_counts_prefixes_and_newest_data(processed: Path, tmp_path: Path) -> None:
    (tmp_path / "dcgm" / "n1").mkdir(parents=True)
    (tmp_path / "dcgm" / "n1" / "a.prom").write_text("x")
    result = run("status", "--raw", str(tmp_path), "--processed", str(processed), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["raw"] == {"dcgm": 1}
    assert status["processed"] == {"alerts": 7, "metrics": 7}
    assert status["quarantined_rows"] == 0
    assert sorted(status["newest_by_node"]) == ["gpu-node-00", "gpu-node-01"]
    assert all(v.startswith("2026-11-02T09:29:30") for v in status["newest_by_node"].values())


def test_cost_reproduces_a_hand_computed_case() -> None:
    """8 GPUs, 60 s scrapes, hourly uploads; the arithmetic below is done by hand from docs/cost.md's inputs."""
    result = run("cost", "--gpus", "8", "--interval", "60", "--upload-every", "60", "--json")
    assert result.returncode == 0, result.stderr
    lines = {item: usd for item, _, usd in json.loads(result.stdout)["gpulake"]["lines"]}
    # 730 h = 2,628,000 s; 8 GPUs / 60 s -> 350,400 GPU-scrapes; 1 node / 3,600 s -> 730 objects
    # raw MB per object = 350,400 x 4,100 B / 730 / 1e6 = 1.968; seconds = 0.3 + 1.968 / 100 = 0.31968
    expected = {
        "Lambda compute": 730 * 0.31968 * 2.5 * 0.0000133334,
        "Lambda requests": 73 * 0.20 / 1e6,
        "S3 PUT": 2190 * 0.005 / 1000,
        "S3 GET": 1460 * 0.0004 / 1000,
        "SQS": (2190 + 657_000) * 0.40 / 1e6,
        "S3 raw storage": 350_400 * 4100 / 27 / 1e9 * 0.023,
        "S3 processed storage": 0.0063072 * 0.023 + 0.0693792 * 0.0125,
        "CloudWatch": 7 * 0.10 + 6 * 0.30 + 0.00073 * 0.50,
        "KMS key (alerts topic)": 1.00,
        # 730 objects x (1 node item + 3.44 x 8 GPUs) = 20,819.6 queries and puts (2 WRU each);
        # 730 x 0.33 = 240.9 group stages (a query and a 2-item transaction of 8 WRU);
        # sweeps: 8,760 x ceil(8 GPUs x 32 items x 2 KB / 8 KB) = 560,640 RRU
        "DynamoDB episodes": (20_819.6 + 240.9 + 560_640) * 0.125 / 1e6 + (20_819.6 * 2 + 240.9 * 8) * 0.625 / 1e6,
        "Sweeper Lambda": 8760 * 0.5 * 0.25 * 0.0000133334 + 8760 * 0.20 / 1e6,
    }
    assert lines.keys() == expected.keys()
    for item, usd in expected.items():
        assert lines[item] == pytest.approx(usd, rel=1e-9), item
    assert json.loads(result.stdout)["gpulake"]["total"] == 3.90
    text = run("cost", "--gpus", "8", "--interval", "60", "--upload-every", "60").stdout
    assert "gpulake: $3.90/month" in text and "730 objects x 0.320 s x 2.5 GB = 583 GB-s" in text
    assert "per GPU-month" in text
    assert "Amazon Managed Prometheus" in text and "CloudWatch custom metrics" in text


def test_status_reports_last_sync_without_creating_anything(processed: Path, pg_dsn: str) -> None:
    import psycopg

    env = {"GPULAKE_PG_DSN": pg_dsn}
    before = json.loads(run("status", "--from", str(processed), "--json", env=env).stdout)
    assert before["last_sync"] == {"postgres": "never"}
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
    synced = run("sync", "--to", "postgres", "--from", str(processed), "--json", env=env)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["loaded"] == 14
    after = json.loads(run("status", "--from", str(processed), "--json", env=env).stdout)
    assert after["last_sync"]["postgres"].startswith("20")


def test_simulate_cuts_a_collectors_uploads(tmp_path: Path) -> None:
    # 60 minutes of one node's dcgm, uploaded every 15 minutes: 4 consecutive files, as the collector writes them
    result = run(
        "simulate", "--out", str(tmp_path), "--nodes", "1", "--gpus", "2", "--minutes", "60", "--formats", "dcgm",
        "--upload-minutes", "15",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 4 and len(set(files)) == 4


def test_process_again_says_the_object_is_unchanged(tmp_path: Path) -> None:
    # a rerun of the same file writes nothing, and says so instead of repeating the first run's words
    result = run("simulate", "--out", str(tmp_path / "raw"), "--nodes", "1", "--gpus", "1", "--minutes", "10")
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "raw" / "dcgm").rglob("*.prom")
    first = run("process", str(path), "--out", str(tmp_path / "out"))
    assert first.returncode == 0, first.stderr
    assert "unchanged" not in first.stdout and "processed 1 object:" in first.stdout
    again = run("process", str(path), "--out", str(tmp_path / "out"))
    assert again.returncode == 0, again.stderr
    line, summary = again.stdout.splitlines()
    assert line.endswith("(unchanged: processed before, nothing written)")
    assert summary.startswith("processed 1 object (1 unchanged, nothing written):")
    as_json = run("process", str(path), "--out", str(tmp_path / "out"), "--json")
    assert json.loads(as_json.stdout)["unchanged"] is True
