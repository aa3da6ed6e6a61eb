"""An object's alerts body is written through a spooled file and put from it: never whole in memory beside the
alerts, nor beside the stored body it is compared with (ADR 0007), in a directory as in S3."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from gpulake.ingest import IngestResult, _write_alerts
from gpulake.output import layout
from gpulake.output.days import DailyJsonLines
from gpulake.output.sink import LocalSink, S3Sink, Sink
from gpulake.output.spool import SPOOL_BYTES


def _alerts(n: int, peak: float = 700.0) -> list[dict[str, object]]:
    """Alerts shaped like detection's (~0.6 KB a line), a GPU each, on two UTC days."""
    return [
        {
            "alert_id": f"{i:024x}",
            "kind": "power_throttle",
            "severity": "info",
            "node": f"gpu-node-{i % 16:02d}",
            "gpu": str(i % 8),
            "gpu_uuid": f"GPU-{i:08x}-a006-af26-e5af-00000000940a",
            "gpu_model": "NVIDIA H100 80GB HBM3",
            "metric": "throttle_reasons",
            "start": f"2026-11-0{2 + i % 2}T08:00:00.000Z",
            "end": f"2026-11-0{2 + i % 2}T08:05:00.000Z",
            "samples": 30,
            "peak": peak,
            "threshold": None,
            "source": "dcgm",
            "source_object": "dcgm/gpu-node-00/scrapes.prom",
            "message": f"power throttle on gpu-node-{i % 16:02d} GPU {i % 8}: 30 sample(s) 2026-11-02T08:00:00.000Z"
            f"..2026-11-02T08:05:00.000Z, peak {peak:g} ({i})",
        }
        for i in range(n)
    ]


def _jsonl(records: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n" for r in records).encode()


@pytest.fixture
def s3_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Sink]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="processed")
        yield S3Sink(s3, "processed", "gpulake")


@pytest.fixture(params=["directory", "s3"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Sink:
    return LocalSink(tmp_path) if request.param == "directory" else request.getfixturevalue("s3_sink")


def _write(sink: Sink, alerts: list[dict[str, object]]) -> IngestResult:
    result = IngestResult(source_object="dcgm/gpu-node-00/scrapes.prom", name="scrapes")
    bodies = DailyJsonLines()
    bodies.write(alerts)
    _write_alerts(sink, result, "scrapes", bodies)
    return result


def test_the_body_is_each_days_alerts_as_json_lines_and_changes_are_told(sink: Sink) -> None:
    alerts = _alerts(3000)
    first = _write(sink, alerts)
    days = ("2026-11-02", "2026-11-03")
    assert first.keys == [layout.alerts_key(day, "scrapes") for day in days] and first.alerts_changed
    for day, key in zip(days, first.keys, strict=True):
        assert sink.get(key) == _jsonl([a for a in alerts if str(a["start"]).startswith(day)])
    assert not _write(sink, alerts).alerts_changed  # a redelivery: the same bodies
    assert _write(sink, _alerts(3000, peak=701.0)).alerts_changed
    assert sink.get(first.keys[0]) == _jsonl(_alerts(3000, peak=701.0)[::2])


def test_a_large_alerts_body_is_never_whole_in_memory(tmp_path: Path) -> None:
    # GIVEN ~8 MB of alerts on one day, already stored once (the comparison reads the stored body too)
    alerts = [a for a in _alerts(24_000) if a["start"].startswith("2026-11-02")]
    sink = LocalSink(tmp_path)
    _write(sink, alerts)
    size = (tmp_path / layout.alerts_key("2026-11-02", "scrapes")).stat().st_size
    assert size > 6 * SPOOL_BYTES
    # WHEN they are written again, changed
    alerts[0]["peak"] = 701.0
    tracemalloc.start()
    try:
        changed = _write(sink, alerts).alerts_changed
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # THEN what was allocated at once stays near the spool size: neither body was ever held whole
    assert changed and peak < 3 * SPOOL_BYTES < size / 2, (peak, size)


def test_s3_compares_with_the_checksum_it_keeps_not_by_downloading(s3_sink: S3Sink) -> None:
    sink = s3_sink
    downloads: list[str] = []
    sink.client.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: downloads.append(params["Key"])
    )
    alerts = _alerts(3000)
    _write(sink, alerts)
    assert not _write(sink, alerts).alerts_changed and _write(sink, _alerts(3000, peak=701.0)).alerts_changed
    assert downloads == []
    # an object stored without a SHA-256 (an earlier release) is read and hashed
    key = layout.alerts_key("2026-11-02", "scrapes")
    sink.client.put_object(Bucket="processed", Key=f"gpulake/{key}", Body=sink.get(key) or b"")
    downloads.clear()
    assert sink.sha256(key) == hashlib.sha256(_jsonl(_alerts(3000, peak=701.0)[::2])).hexdigest()
    assert downloads == [f"gpulake/{key}"]
    assert sink.sha256("alerts/date=2026-11-02/absent.jsonl") is None
