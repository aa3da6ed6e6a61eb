"""Sync under failure: a view left behind by a kill, objects a database refuses, tags InfluxDB mangles."""

from __future__ import annotations

from pathlib import Path

import pytest

from loaders.postgres import PostgresTarget
from loaders.source import LocalSource
from loaders.sync import sync
from tests.loaders.data import write_metrics


def _view_samples(target: PostgresTarget) -> int:
    return target.conn.execute("SELECT coalesce(sum(samples), 0) FROM gpu_metrics_hourly").fetchone()[0]


def test_a_rerun_refreshes_a_view_left_behind_by_a_kill(
    tmp_path: Path, pg_target: PostgresTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a sync killed after its last commit, before the view refresh
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/a.parquet", ["n1", "n2"], n=4)
    with monkeypatch.context() as patched:
        patched.setattr(pg_target, "finish", lambda: None)
        sync(LocalSource(tmp_path), pg_target)
    # WHEN sync runs again with nothing new to load
    report = sync(LocalSource(tmp_path), pg_target)
    # THEN the view caught up with the ledger anyway
    assert report.loaded == 0
    assert _view_samples(pg_target) == 8
