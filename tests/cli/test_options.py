"""Flags as users meet them: help on every option, one name for the processed location, cost's arithmetic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from gpulake_cli.main import build_parser
from tests.cli.helpers import ROOT, run


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_option_has_help(command: str) -> None:
    parser = _subparsers()[command]
    missing = [a.option_strings or [a.dest] for a in parser._actions if not a.help and a.dest != "help"]
    assert not missing, f"{command}: options without help text: {missing}"


@pytest.mark.parametrize("command", ["sync", "alerts", "report", "status"])
def test_the_processed_location_is_from_everywhere(command: str) -> None:
    options = {o for a in _subparsers()[command]._actions if a.help != argparse.SUPPRESS for o in a.option_strings}
    assert "--from" in options and "--processed" not in options


def test_status_processed_still_works_and_names_from(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    no_targets: dict[str, str | None] = {"GPULAKE_PG_DSN": None, "GPULAKE_INFLUX_URL": None}
    new = run("status", "--from", str(tmp_path), "--json", env=no_targets)
    old = run("status", "--processed", str(tmp_path), "--json", env=no_targets)
    assert new.returncode == old.returncode == 0, (new.stderr, old.stderr)
    assert json.loads(new.stdout) == json.loads(old.stdout)
    assert old.stderr.strip() == "note: --processed is deprecated; use --from"


def test_cost_counts_nodes_from_gpus_per_node() -> None:
    four = json.loads(run("cost", "--gpus", "16", "--interval", "15", "--gpus-per-node", "4", "--json").stdout)
    eight = json.loads(run("cost", "--gpus", "16", "--interval", "15", "--json").stdout)
    # twice the nodes: twice the uploaded objects, so twice the S3 PUTs
    puts = {name: next(usd for item, _, usd in e["gpulake"]["lines"] if item == "S3 PUT") for name, e in
            (("four", four), ("eight", eight))}  # fmt: skip
    assert puts["four"] == pytest.approx(2 * puts["eight"])


def test_cost_says_1_node_not_1_nodes() -> None:
    result = run("cost", "--gpus", "1", "--interval", "15")
    assert result.returncode == 0, result.stderr
    assert "1 GPU on 1 node " in result.stdout
    assert "1 nodes" not in result.stdout and "1 GPUs" not in result.stdout


def test_upload_names_the_node_after_the_folder_even_for_a_bare_file_name(tmp_path: Path, monkeypatch) -> None:
    from gpulake_cli import uploader

    folder = tmp_path / "rig-7"
    folder.mkdir()
    (folder / "query-gpu.csv").write_bytes((ROOT / "gpulake_cli/samples/nvidia-smi/rig-7/query-gpu.csv").read_bytes())
    monkeypatch.chdir(folder)
    upload = uploader.plan(Path("query-gpu.csv"), "raw", None, None, None)
    assert upload.key == "nvidia-smi/rig-7/query-gpu.csv.gz" and upload.metadata["node"] == "rig-7"
