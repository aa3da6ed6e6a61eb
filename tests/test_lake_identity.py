"""One identity, one row: duplicate timestamps, node names from paths, collisions across inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gpulake.identity import Span, spans
from gpulake.local import LocalOptions, iter_files, process_file
from gpulake_cli.main import main
from gpulake_cli.uploader import plan
from tests.conftest import ROOT, real_file

NVIDIA_SMI = ROOT / "gpulake_cli" / "samples" / "nvidia-smi" / "rig-7" / "query-gpu.csv"
THERMAL_HEADER = "node,timestamp,gpu_id,temp\n"


def _metrics(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "metrics").rglob("*.parquet")):
        rows += pq.read_table(path, partitioning=None).to_pylist()
    return rows


def _quarantine(out: Path) -> list[dict]:
    lines = []
    for path in sorted((out / "quarantine").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def test_duplicate_timestamps_keep_the_last_row_and_quarantine_the_others(tmp_path: Path) -> None:
    # GIVEN a log where one GPU has three rows for the same second
    raw = tmp_path / "thermal.csv"
    raw.write_text(
        THERMAL_HEADER
        + "n1,2026-11-02 08:00:00,0,60\n"
        + "n1,2026-11-02 08:00:01,0,61\n"
        + "n1,2026-11-02 08:00:01,0,62\n"
        + "n1,2026-11-02 08:00:01,0,63\n"
        + "n1,2026-11-02 08:00:01,1,70\n"
    )
    # WHEN it is processed
    result = process_file(raw, tmp_path / "out", LocalOptions())
    # THEN the lake has one row per identity, the last in file order, like the databases
    rows = _metrics(tmp_path / "out")
    assert result.rows == len(rows) == 3
    assert sorted((r["gpu"], r["gpu_temp_c"]) for r in rows) == [("0", 60.0), ("0", 63.0), ("1", 70.0)]
    replaced = [q for q in _quarantine(tmp_path / "out") if q["reason"] == "duplicate_timestamp"]
    assert result.bad_rows == len(replaced) == 2
    assert sorted(json.loads(q["raw"])["gpu_temp_c"] for q in replaced) == [61.0, 62.0]


def test_real_gpuz_log_with_repeated_seconds(tmp_path: Path) -> None:
    path = real_file("gpuz/T2xic__GPU-Z-grapher__GPU-Z_Sensor_Log_bm1.txt")
    result = process_file(path, tmp_path, LocalOptions())
    times = [r["time"] for r in _metrics(tmp_path)]
    assert len(times) == len(set(times)) == result.rows
    replaced = [q for q in _quarantine(tmp_path) if q["reason"] == "duplicate_timestamp"]
    assert len(replaced) == 11


def _two_nodes(root: Path) -> Path:
    logs = root / "logs"
    for node in ("node17", "node18"):
        (logs / node).mkdir(parents=True)
        (logs / node / "nvidia-smi.csv").write_bytes(NVIDIA_SMI.read_bytes())
    return logs


def test_process_and_upload_take_the_node_from_the_folder(tmp_path: Path) -> None:
    # GIVEN the same log name in two node folders
    logs = _two_nodes(tmp_path)
    # WHEN processed and planned for upload
    for path in iter_files([logs]):
        process_file(path, tmp_path / "out", LocalOptions())
    # THEN both name the node after the folder
    assert {r["node"] for r in _metrics(tmp_path / "out")} == {"node17", "node18"}
    planned = {plan(p, "raw", None, "nvidia-smi", None).metadata["node"] for p in iter_files([logs])}
    assert planned == {"node17", "node18"}


def test_a_source_folder_names_no_node(tmp_path: Path) -> None:
    path = tmp_path / "nvidia-smi" / "rig-7.csv"
    path.parent.mkdir()
    path.write_bytes(NVIDIA_SMI.read_bytes())
    process_file(path, tmp_path / "out", LocalOptions())
    assert {r["node"] for r in _metrics(tmp_path / "out")} == {"rig-7"}
    assert plan(path, "raw", None, "nvidia-smi", None).metadata["node"] == "rig-7"


def test_two_inputs_writing_the_same_identities_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two node folders processed under one explicit node name
    logs = _two_nodes(tmp_path)
    # WHEN processed in one run
    code = main(["process", str(logs), "--out", str(tmp_path / "out"), "--node", "rig"])
    # THEN the run fails and says which inputs collide
    err = capsys.readouterr().err
    assert code == 1
    assert "identity collision" in err and "node17/nvidia-smi.csv" in err and "node18/nvidia-smi.csv" in err


def test_distinct_nodes_do_not_collide(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = _two_nodes(tmp_path)
    assert main(["process", str(logs), "--out", str(tmp_path / "out")]) == 0
    assert "collision" not in capsys.readouterr().err


def test_rows_without_any_value_are_quarantined(tmp_path: Path) -> None:
    # GIVEN a row whose only value is not a number (InfluxDB cannot store a point without a field)
    raw = tmp_path / "thermal.csv"
    raw.write_text(THERMAL_HEADER + "n1,2026-11-02 08:00:00,0,60\nn1,2026-11-02 08:00:01,0,[N/A]\n")
    # WHEN it is processed
    result = process_file(raw, tmp_path / "out", LocalOptions())
    # THEN the lake keeps only rows a database point can hold, and says why the other went
    assert result.rows == len(_metrics(tmp_path / "out")) == 1
    assert [q["reason"] for q in _quarantine(tmp_path / "out")] == ["no_values"]


def test_same_bytes_again_write_nothing_other_settings_process_again(tmp_path: Path) -> None:
    # GIVEN a file processed once
    first = process_file(NVIDIA_SMI, tmp_path / "out", LocalOptions())
    # WHEN it is processed again as it is, then with another zone
    again = process_file(NVIDIA_SMI, tmp_path / "out", LocalOptions())
    berlin = process_file(NVIDIA_SMI, tmp_path / "out", LocalOptions(tz="Europe/Berlin"))
    # THEN the repeat writes nothing and reports the same counts; the new zone is processed
    assert (first.unchanged, again.unchanged, berlin.unchanged) == (False, True, False)
    assert (again.rows, again.keys, len(again.alerts)) == (first.rows, first.keys, len(first.alerts))
    critical = sum(a["severity"] == "critical" for a in first.alerts)
    assert (again.alert_count, again.critical_alerts) == (first.alert_count, first.critical_alerts)
    assert (first.alert_count, first.critical_alerts) == (len(first.alerts), critical)  # from the manifest
    times = {r["time"] for r in _metrics(tmp_path / "out")}
    assert len(times) == berlin.rows  # Berlin's times replaced UTC's under the same keys


def test_spans_come_in_row_order_every_time() -> None:
    # GIVEN an object's rows as ingest holds them: sorted by node, GPU and time, 16 nodes x 8 GPUs x 80 samples,
    # in record batches (Arrow's threaded group_by returned their groups in a different order from one call to
    # the next, so the manifest's spans changed between runs: apache/arrow#36709)
    nodes, gpus, steps = 16, 8, 80
    node = [f"gpu-node-{n:02d}" for n in range(nodes) for _ in range(gpus * steps)]
    gpu = [str(g) for _ in range(nodes) for g in range(gpus) for _ in range(steps)]
    ms = [1_793_606_400_000 + 10_000 * (s + n) for n in range(nodes) for _ in range(gpus) for s in range(steps)]
    table = pa.table({"node": node, "gpu": gpu, "source": ["dcgm"] * len(ms), "time": pa.array(ms, pa.timestamp("ms"))})
    table = pa.Table.from_batches(table.to_batches(max_chunksize=500))
    # WHEN its spans are taken (the manifest lists them), again and again
    found = spans(table)
    assert all(spans(table) == found for _ in range(20))
    # THEN one per node and GPU, in row order, from the first sample to the last
    assert [(s.node, s.gpu) for s in found] == [
        (f"gpu-node-{n:02d}", str(g)) for n in range(nodes) for g in range(gpus)
    ]
    first = [1_793_606_400_000 + 10_000 * n for n in range(nodes) for _ in range(gpus)]
    assert [s.first_ms for s in found] == first
    assert [s.last_ms - s.first_ms for s in found] == [10_000 * (steps - 1)] * (nodes * gpus)
    assert {s.source for s in found} == {"dcgm"}


def test_spans_merge_the_rows_of_one_identity_wherever_they_are() -> None:
    # GIVEN rows not grouped by identity (spans takes any table)
    table = pa.table(
        {
            "node": ["a", "b", "a", "a"],
            "gpu": ["0", "0", "0", "1"],
            "source": ["dcgm"] * 4,
            "time": pa.array([5, 1, 2, 9], pa.timestamp("ms")),
        }
    )
    # THEN each identity once, where it first appears, over all its rows
    assert spans(table) == [Span("a", "0", "dcgm", 2, 5), Span("b", "0", "dcgm", 1, 1), Span("a", "1", "dcgm", 9, 9)]
