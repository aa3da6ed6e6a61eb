"""InfluxDB target against a real influxd 1.6.7 (1.x /write API), plus the v2 body and the retry rules."""

from __future__ import annotations

import gzip
import http.server
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest
from influxdb_client import Point, WritePrecision

from gpulake.schema import CANONICAL_COLUMNS
from loaders.errors import TargetRejected, TargetUnavailable
from loaders.influx import InfluxTarget, V1Writer, batches
from loaders.lineprotocol import alerts_lines, metrics_lines, tag_value
from loaders.records import read_alerts
from loaders.source import LocalSource
from loaders.sync import sync
from tests.loaders.data import TRICKY_NODES, metrics_table, write_metrics


def _series(target: InfluxTarget, measurement: str = "gpu_metrics") -> dict[tuple, list[dict]]:
    result = target.writer.query(f'SELECT * FROM "{measurement}" GROUP BY "node", "gpu", "source"')
    out = {}
    for s in result:
        key = (s["tags"]["node"], s["tags"]["gpu"], s["tags"]["source"])
        out[key] = [dict(zip(s["columns"], v)) for v in s["values"]]
    return out


def test_values_read_back_equal_the_parquet(fleet_output: Path, influx_target: InfluxTarget) -> None:
    report = sync(LocalSource(fleet_output), influx_target)
    assert report.failed == []
    expected = metrics_table(fleet_output).to_pylist()
    stored = _series(influx_target)
    assert sum(len(v) for v in stored.values()) == len(expected) > 1000
    by_key = {(r["node"], r["gpu"], r["source"], int(r["time"].timestamp() * 1000)): r for r in expected}
    for (node, gpu, source), points in stored.items():
        for point in points:
            row = by_key[(node, gpu, source, point["time"])]
            for name in CANONICAL_COLUMNS:
                want = row[name] if row[name] is not None and math.isfinite(row[name]) else None
                assert point[name] == want, (name, point, row)
            assert point["throttle_reasons"] == row["throttle_reasons"]
            for key, value in row["extra"]:
                assert point[key] == (value if value is not None and math.isfinite(value) else None)
            assert point.get("gpu_uuid") == row["gpu_uuid"]


def test_alerts_measurement(fleet_output: Path, influx_target: InfluxTarget) -> None:
    sync(LocalSource(fleet_output), influx_target)
    alerts = [read_alerts(p.read_bytes(), str(p)) for p in (fleet_output / "alerts").rglob("*.jsonl")]
    ids = {a for t in alerts for a in t["alert_id"].to_pylist()}
    stored = influx_target.writer.query('SELECT "alert_id", "peak", "kind" FROM "gpu_alerts"')
    assert {v[1] for v in stored[0]["values"]} == ids


def test_second_sync_writes_nothing(fleet_output: Path, influx_target: InfluxTarget) -> None:
    first = sync(LocalSource(fleet_output), influx_target)
    second = sync(LocalSource(fleet_output), influx_target)
    assert first.loaded == first.listed > 0
    assert (second.loaded, second.rows) == (0, 0)


def test_reloading_and_replacing_an_object(tmp_path: Path, influx_target: InfluxTarget) -> None:
    key = "metrics/source=dcgm/date=2026-11-02/x.parquet"
    write_metrics(tmp_path, key, ["n1", "n2"], n=5)
    sync(LocalSource(tmp_path), influx_target)
    influx_target._entries = {}  # forget the ledger: the same points are written again
    sync(LocalSource(tmp_path), influx_target)
    assert sum(len(v) for v in _series(influx_target).values()) == 10
    write_metrics(tmp_path, key, ["n1"], n=2)
    report = sync(LocalSource(tmp_path), influx_target)
    assert (report.loaded, report.replaced) == (1, 1)
    assert {k: len(v) for k, v in _series(influx_target).items()} == {("n1", "0", "dcgm"): 2}


def _episode_object(root: Path, key: str, record: dict) -> None:
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_text(json.dumps(record) + "\n")


def test_a_replaced_alerts_object_replaces_its_episode_points_not_the_closed_record(
    tmp_path: Path, influx_target: InfluxTarget
) -> None:
    # GIVEN an alert of episode e1 and e1's closed record, loaded
    alert = {"alert_id": "a1", "episode_id": "e1", "kind": "thermal_throttle", "severity": "warning", "node": "n1"}
    alert |= {"gpu": "0", "metric": "clocks", "start": "2026-11-02T08:00:00.000Z", "samples": 4}
    closed = {**alert, "episode_id": "e1", "state": "closed", "notifications": 2, "resolution": "cleared"}
    _episode_object(tmp_path, "alerts/date=2026-11-02/x.jsonl", alert | {"end": "2026-11-02T08:01:00.000Z"})
    _episode_object(tmp_path, "episodes/date=2026-11-02/e1.json", closed | {"end": "2026-11-02T08:01:00.000Z"})
    sync(LocalSource(tmp_path), influx_target)
    # WHEN the alerts object comes back with the alert starting later and longer (a new version)
    later = {"start": "2026-11-02T08:00:30.000Z", "end": "2026-11-02T08:02:00.000Z", "samples": 8}
    _episode_object(tmp_path, "alerts/date=2026-11-02/x.jsonl", alert | later)
    assert sync(LocalSource(tmp_path), influx_target).replaced == 1
    # THEN e1 has the new alert point only (the old one at 08:00 is gone), and its closed record is still there
    points = {
        s["tags"]["record"]: [dict(zip(s["columns"], v)) for v in s["values"]]
        for s in influx_target.writer.query('SELECT * FROM "gpu_episodes" GROUP BY "record"')
    }
    assert [(p["samples"], p["end_ms"]) for p in points["alert"]] == [(8, 1_793_606_520_000)]
    assert [(p["state"], p["notifications"], p["resolution"]) for p in points["closed"]] == [("closed", 2, "cleared")]


def test_awkward_names_stored_as_documented(tmp_path: Path, influx_target: InfluxTarget) -> None:
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/tricky.parquet", TRICKY_NODES, n=1)
    sync(LocalSource(tmp_path), influx_target)
    assert sorted(node for node, _, _ in _series(influx_target)) == sorted(map(tag_value, TRICKY_NODES))


def _client_lines(table: pa.Table) -> list[str]:
    lines = []
    for row in table.to_pylist():
        point = Point("gpu_metrics").time(int(row["time"].timestamp() * 1000), WritePrecision.MS)
        for tag in ("node", "gpu", "gpu_uuid", "gpu_model", "source"):
            if row[tag] is not None:
                point.tag(tag, tag_value(row[tag]))
        for name in CANONICAL_COLUMNS:
            point.field(name, row[name])
        point.field("throttle_reasons", row["throttle_reasons"])
        for key, value in row["extra"]:
            point.field(key, value)
        lines.append(point.to_line_protocol())
    return [line for line in lines if " " in line.split(" ", 1)[1]]


def test_body_is_identical_to_influxdb_client(fleet_output: Path, tmp_path: Path) -> None:
    """The v2 path: what influxdb-client sends for the same batch, tags encoded (1.6.7 has no /api/v2/write)."""
    table = metrics_table(fleet_output)
    tricky = write_metrics(tmp_path, "metrics/x.parquet", [*TRICKY_NODES, "new\nline", "ends\\"], n=2)
    for batch in (table, tricky):
        mine = metrics_lines(batch).to_pylist()
        assert mine == _client_lines(batch)
    assert batches(metrics_lines(table))[0] == ("\n".join(_client_lines(table)[:5000]) + "\n").encode()


def test_float_formatting_matches_python() -> None:
    values = [1e-05, 0.0001, 123456789012.0, 15046648772.714222, 1e16, 1e22, -0.0, 0.1 + 0.2, 7e6, 2.5e-9, None]
    table = write_metrics_table(values)
    body = metrics_lines(table).to_pylist()
    assert body == _client_lines(table)


def write_metrics_table(values: list[float | None]) -> pa.Table:
    from gpulake.schema import assemble

    n = len(values)
    batch = assemble(
        n,
        time_ms=list(range(n)),
        identity={"node": ["a"] * n, "gpu": ["0"] * n, "source": ["dcgm"] * n},
        canonical={"power_w": values, "gpu_temp_c": [1.0] * n},
        source_object="x",
    )
    return pa.Table.from_batches([batch])


def test_alert_lines_parse_on_the_server(fleet_output: Path, influx_target: InfluxTarget) -> None:
    path = next((fleet_output / "alerts").rglob("*.jsonl"))
    lines = alerts_lines(read_alerts(path.read_bytes(), str(path)))
    for body in batches(lines):
        influx_target.writer.write(influx_target.writer.encode(body))
    assert influx_target.writer.query('SELECT count("peak") FROM "gpu_alerts"')[0]["values"][0][1] == len(lines)


class _Scripted(http.server.BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []
    bodies: ClassVar[list[bytes]] = []
    retry_after: ClassVar[str] = "0"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"] or 0))
        if self.path.startswith("/write"):
            type(self).bodies.append(gzip.decompress(body))
        status = type(self).statuses.pop(0) if self.path.startswith("/write") and type(self).statuses else 200
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", type(self).retry_after)
        self.end_headers()
        self.wfile.write(b'{"results":[{"statement_id":0}]}' if status == 200 else b'{"error":"scripted"}')

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"statuses": [], "bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_retries_5xx_and_429_then_succeeds(scripted: tuple[str, type[_Scripted]], monkeypatch) -> None:
    monkeypatch.setattr("loaders.influx.time.sleep", lambda s: None)
    url, handler = scripted
    handler.statuses = [503, 429, 500, 204]
    writer = V1Writer(url, "db")
    writer.write(writer.encode(b"m v=1 1\n"))
    assert handler.bodies == [b"m v=1 1\n"] * 4


def test_retry_after_as_an_http_date_falls_back_to_backoff(scripted: tuple[str, type[_Scripted]], monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("loaders.influx.time.sleep", slept.append)
    url, handler = scripted
    handler.statuses, handler.retry_after = [429, 204], "Wed, 25 Nov 2026 07:28:00 GMT"
    writer = V1Writer(url, "db")
    writer.write(writer.encode(b"m v=1 1\n"))
    assert slept == [0.5] and len(handler.bodies) == 2


def test_gives_up_after_retries(scripted: tuple[str, type[_Scripted]], monkeypatch) -> None:
    monkeypatch.setattr("loaders.influx.time.sleep", lambda s: None)
    url, handler = scripted
    handler.statuses = [503] * 10
    with pytest.raises(TargetUnavailable, match="kept failing"):
        V1Writer(url, "db").write(gzip.compress(b"m v=1 1\n"))


@pytest.mark.parametrize(("status", "message"), [(401, "credentials"), (403, "credentials"), (404, "not found")])
def test_auth_and_missing_database_fail_fast(scripted: tuple[str, type[_Scripted]], status: int, message: str) -> None:
    url, handler = scripted
    handler.statuses = [status, 204]
    with pytest.raises(TargetRejected, match=message):
        V1Writer(url, "db").write(gzip.compress(b"m v=1 1\n"))
    assert len(handler.bodies) == 1
