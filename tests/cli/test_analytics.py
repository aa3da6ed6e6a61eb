"""The report's numbers, without plots: the health score formula of docs/cli.md, throttled time, spikes,
gaps and alert bars on hand-made GPUs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpulake_cli import analytics, timeseries
from loaders.source import LocalSource


def _gpu(node: str, model: str, temps: list[float], reasons: list[int], dbe: list[float]) -> pd.DataFrame:
    n = len(temps)
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2026-11-02", periods=n, freq="10s", tz="UTC"),
            "node": node,
            "gpu": "0",
            "gpu_model": model,
            "source": "dcgm",
            "throttle_reasons": reasons,
            "ecc_dbe": dbe,
        }
    )
    for column in analytics.CANONICAL:
        frame[column] = 300.0
    frame["gpu_temp_c"] = temps
    return frame


def test_health_score_follows_the_documented_formula() -> None:
    hot = _gpu("a", "NVIDIA H100 80GB HBM3", [85.0] * 10, [0x20] * 5 + [0] * 5, [0.0] * 10)
    capped = _gpu("b", "NVIDIA A100-SXM4-80GB", [60.0] * 10, [0x4] * 10, [0.0] * 9 + [1.0])
    alerts = pd.DataFrame({"node": ["b"], "gpu": ["0"], "kind": ["xid"]})
    health = analytics.health(analytics.Data(pd.concat([hot, capped], ignore_index=True), alerts))
    # hot: 87 °C max operating (H100, gpulake.alerts.limits) - p95 85 °C = 2 °C headroom -> 3 x (10 - 2) = 24; half
    # the samples thermally throttled -> min(30, 100 x 0.5) = 30; no errors, constant readings -> 100 - 24 - 30 = 46
    assert health.loc["a / GPU 0", ["temp_penalty", "throttle_penalty", "score"]].tolist() == [24.0, 30.0, 46.0]
    # capped: 25 °C headroom -> 0; power cap on every sample -> 25 x 1 = 25; a DBE (20) and an XID alert (10)
    assert health.loc["b / GPU 0", ["temp_penalty", "throttle_penalty", "error_penalty", "score"]].tolist() == [
        0.0,
        25.0,
        30.0,
        45.0,
    ]


def test_throttling_shares_by_cause() -> None:
    shares = analytics.throttling(_gpu("a", "x", [50.0] * 4, [0x4, 0x4 | 0x40, 0, 0], [0.0] * 4))
    assert shares.loc["a / GPU 0", "sw_power_cap"] == 50.0
    assert shares.loc["a / GPU 0", "hw_thermal"] == 25.0
    assert shares.loc["a / GPU 0", "sw_thermal"] == 0.0


def test_throttled_time_is_the_union_of_overlapping_causes() -> None:
    # GIVEN power capping and thermal slowdown on the same two samples of four
    both = 0x4 | 0x20 | 0x40
    shares = analytics.throttling(_gpu("a", "x", [50.0] * 4, [both, both, 0, 0], [0.0] * 4))
    # THEN the GPU is throttled half the time, although its causes add up to 150 %
    row = shares.loc["a / GPU 0"]
    assert row["throttled"] == 50.0
    assert row.drop("throttled").sum() == 150.0


@given(st.lists(st.integers(0, 0xFF), min_size=1, max_size=40))
def test_throttled_share_never_exceeds_100_and_covers_every_cause(masks: list[int]) -> None:
    row = analytics.throttling(_gpu("a", "x", [50.0] * len(masks), masks, [0.0] * len(masks))).iloc[0]
    causes = row.drop("throttled")
    assert 0.0 <= row["throttled"] <= 100.0
    assert causes.max() <= row["throttled"] <= min(100.0, causes.sum()) + 1e-9


def test_a_spike_seen_by_two_sources_of_one_gpu_is_one_event() -> None:
    # GIVEN dcgm and nvidia-smi of the same GPU, 125 ms apart, both seeing a 10 °C rise; another GPU rising alone
    temps = [50.0, 50.0, 60.0, 60.0]
    dcgm = _gpu("a", "x", temps, [0] * 4, [0.0] * 4)
    smi = dcgm.assign(source="nvidia-smi", time=dcgm["time"] + pd.Timedelta(milliseconds=125))
    other = _gpu("b", "x", [40.0, 55.0], [0, 0], [0.0, 0.0])
    # WHEN
    found = analytics.spikes(pd.concat([dcgm, smi, other], ignore_index=True))
    # THEN one event per GPU, naming both sources, largest rise first
    assert found[["node", "sources", "rise_c"]].to_dict("records") == [
        {"node": "b", "sources": "dcgm", "rise_c": 15.0},
        {"node": "a", "sources": "dcgm, nvidia-smi", "rise_c": 10.0},
    ]


def test_spikes_far_apart_stay_separate_events() -> None:
    temps = [50.0, 60.0] + [60.0] * 60 + [40.0, 50.0]  # a rise, ten minutes flat, a drop, a rise again
    found = analytics.spikes(_gpu("a", "x", temps, [0] * len(temps), [0.0] * len(temps)))
    assert len(found) == 2


def test_a_month_without_data_breaks_the_temperature_line() -> None:
    # GIVEN a GPU sampled for 5 minutes, then again a month later
    first = _gpu("a", "x", [60.0] * 30, [0] * 30, [0.0] * 30)
    later = first.assign(time=first["time"] + pd.Timedelta(days=30))
    # WHEN
    series = analytics.temperature_series(pd.concat([first, later], ignore_index=True))
    # THEN exactly one gap row (NaN) sits between the two bursts, and none inside them
    gaps = series[series["gpu_temp_c"].isna()]
    assert len(gaps) == 1
    assert first["time"].max() < gaps["time"].iloc[0] < later["time"].min()


def test_break_gaps_only_breaks_steps_much_longer_than_usual() -> None:
    index = pd.DatetimeIndex(["2026-11-02 08:00", "2026-11-02 08:01", "2026-11-02 08:02", "2026-11-02 09:00"], tz="UTC")
    broken = timeseries.break_gaps(pd.DataFrame({"v": [1, 2, 3, 4]}, index=index))
    assert broken["v"].isna().tolist() == [False, False, False, True, False]
    assert broken.index[3] == pd.Timestamp("2026-11-02 08:31", tz="UTC")


def test_periods_split_bursts_of_activity() -> None:
    times = pd.Series(pd.to_datetime(["2026-11-02 08:00", "2026-11-02 09:00", "2026-12-03 06:00"], utc=True))
    assert [(a.day, b.day) for a, b in timeseries.periods(times)] == [(2, 2), (3, 3)]


def test_a_one_sample_alert_still_gets_a_visible_bar() -> None:
    start = pd.Timestamp("2026-11-02 08:00", tz="UTC")
    alerts = pd.DataFrame(
        {"node": ["a", "a"], "gpu": ["0", "0"], "start": [start, start], "end": [start, start + pd.Timedelta(hours=2)]}
    )
    bars = analytics.timeline(alerts, (start, start + pd.Timedelta(hours=4)))
    assert bars["width"].tolist() == [pd.Timedelta(minutes=1.2), pd.Timedelta(hours=2)]


def test_a_source_without_processed_metrics_is_nothing_to_report(tmp_path: Path) -> None:
    (tmp_path / "gpuz").mkdir()
    (tmp_path / "gpuz" / "GPU-Z Sensor Log.txt").write_text("Date , GPU Temperature [°C] ,\n")
    with pytest.raises(analytics.NothingToReport, match=r"nothing to report in .*: no processed metrics"):
        analytics.load(LocalSource(tmp_path))
