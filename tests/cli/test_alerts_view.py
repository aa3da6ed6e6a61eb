"""``gpulake alerts``: episodes known only from their per-object alerts (no closed record, no offline state)."""

from __future__ import annotations

import json
from pathlib import Path

from gpulake_cli.alerts_view import episodes
from loaders.source import LocalSource


def test_an_episode_from_two_sources_of_one_gpu_counts_its_samples_once(tmp_path: Path) -> None:
    # GIVEN the per-object alerts of one episode from dcgm-exporter and nvidia-smi (one GPU), and nothing else
    alert = {"episode_id": "e1", "kind": "thermal_throttle", "severity": "warning", "node": "n1", "gpu": "0"}
    alert |= {"metric": "clocks", "start": "2026-11-02T08:00:00.000Z", "end": "2026-11-02T08:05:00.000Z"}
    lines = [
        alert | {"alert_id": "a1", "source": "dcgm", "samples": 20},
        alert | {"alert_id": "a2", "source": "nvidia-smi", "samples": 20},
        alert | {"alert_id": "a3", "source": "dcgm", "samples": 4, "end": "2026-11-02T08:06:00.000Z"},
    ]
    path = tmp_path / "alerts" / "date=2026-11-02" / "x.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # WHEN the CLI folds them into episodes
    (episode,) = episodes(LocalSource(tmp_path))
    # THEN one open episode with the most samples of any source (as the lifecycle counts), three objects
    assert (episode["state"], episode["samples"], episode["parts"]) == ("open", 24, 3)
    assert episode["samples_by_source"] == {"dcgm": 24, "nvidia-smi": 20}
