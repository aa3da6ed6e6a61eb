"""Threshold rules users set: the file format, its errors, and rule episodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpulake.alerts import AlertConfig, thresholds
from gpulake.alerts.state import SqliteEpisodeStore
from gpulake.context import SourceContext
from gpulake.errors import ConfigError
from gpulake.ingest import Lifecycle, ingest
from gpulake.output.sink import LocalSink

HEADER = "        Date        , GPU Temperature [°C] , CPU Temperature [°C] , GPU Load [%] ,"


def gpuz_log(cpu_temps: list[float]) -> bytes:
    lines = [HEADER]
    for i, cpu in enumerate(cpu_temps):
        lines.append(f"2026-01-01 00:{i // 60:02d}:{i % 60:02d} ,   60.0   ,   {cpu:.1f}   ,   50   ,")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def test_the_default_rules_file_loads() -> None:
    names = [r.name for r in thresholds.load()]
    assert names == ["cpu_temperature", "hot_spot_near_limit", "power_near_limit", "sustained_load"]


def test_a_minute_of_hot_cpu_in_a_gpuz_log_is_one_rule_episode(tmp_path: Path) -> None:
    # GIVEN a GPU-Z log, one sample a second: 30 s at 70 °C, 60 s at 85 °C, 30 s at 70 °C
    data = gpuz_log([70.0] * 30 + [85.0] * 60 + [70.0] * 30)
    # WHEN it is ingested with the default rules and the episode lifecycle
    lifecycle = Lifecycle(SqliteEpisodeStore(tmp_path / "s.sqlite"))
    ctx = SourceContext(key="GPU-Z Sensor Log.txt", object_time_ms=0, node="rig")
    result = ingest(data, ctx, LocalSink(tmp_path), version="v", lifecycle=lifecycle)
    # THEN one threshold episode names the rule and fires
    (rule,) = [a for a in result.alerts if a["kind"] == "threshold"]
    assert (rule["metric"], rule["severity"], rule["samples"], rule["peak"]) == ("cpu_temperature", "warning", 60, 85.0)
    assert [(e.state, e.episode["metric"]) for e in result.events] == [("firing", "cpu_temperature")]
    # AND 30 s of heat is shorter than the rule's minute: recorded, pending, never sent
    ctx = SourceContext(key="b.txt", object_time_ms=0, node="rig2")
    short = ingest(
        gpuz_log([70.0] * 30 + [85.0] * 30 + [70.0] * 30), ctx, LocalSink(tmp_path), version="v", lifecycle=lifecycle
    )
    assert [a["metric"] for a in short.alerts if a["kind"] == "threshold"] == ["cpu_temperature"]
    assert short.events == []


def test_relative_to_the_power_limit() -> None:
    rules = thresholds.parse(
        '{"name": "p", "field": "power_w", "op": ">=", "threshold": 0.95, "relative_to": "power_limit"}', "r"
    )
    import pyarrow as pa

    from gpulake import schema
    from gpulake.alerts import detect

    n = 3
    batch = schema.assemble(
        n,
        time_ms=[1000 * i for i in range(n)],
        identity={"node": "n", "gpu": "0", "gpu_model": "NVIDIA H100", "source": "dcgm"},
        canonical={"power_w": [690.0, 300.0, 690.0]},
        throttle_reasons=[None] * n,
        extra=schema.numeric_map(n, {"DCGM_FI_DEV_POWER_MGMT_LIMIT": [700.0] * n}),
        source_object="o",
    )
    alerts = [a for a in detect(pa.Table.from_batches([batch]), AlertConfig(rules=rules)) if a["kind"] == "threshold"]
    assert [(a["samples"], a["threshold"], a["threshold_source"]) for a in alerts] == [
        (1, 665.0, "reported"),
        (1, 665.0, "reported"),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"name": "x", "field": "gpu_tmp_c", "op": ">", "threshold": 1}', "unknown field 'gpu_tmp_c'"),
        ('{"name": "x", "field": "gpu_temp_c", "op": "=>", "threshold": 1}', "op '=>'"),
        ('{"name": "x", "field": "gpu_temp_c", "op": ">", "threshold": 1, "color": 2}', "unknown key(s) ['color']"),
        ('{"name": "x", "field": "gpu_temp_c", "op": ">", "threshold": "hot"}', "must be numbers"),
        ("{not json", "not a JSON object"),
    ],
)
def test_a_bad_rules_file_is_rejected_naming_the_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "rules.jsonl"
    path.write_text('# comment\n{"name": "ok", "field": "util_pct", "op": ">", "threshold": 95}\n\n' + line + "\n")
    with pytest.raises(ConfigError) as caught:
        thresholds.load(path)
    assert f"{path}:4: " in str(caught.value) and problem in str(caught.value)


def test_the_lambda_rejects_a_bad_rules_file_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpulake import settings

    path = tmp_path / "rules.jsonl"
    path.write_text('{"name": "x", "field": "nope", "op": ">", "threshold": 1}\n')
    monkeypatch.setenv("GPULAKE_PROCESSED_BUCKET", "b")
    monkeypatch.setenv("GPULAKE_RULES_FILE", str(path))
    with pytest.raises(ConfigError, match=r"rules.jsonl:1: unknown field 'nope'"):
        settings.from_env()
