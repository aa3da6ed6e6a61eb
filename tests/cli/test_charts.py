"""The report's figures, without a browser: what each chart promises operators (limits, units, breaks)."""

from __future__ import annotations

import pandas as pd

from gpulake_cli import analytics, charts


def test_hottest_gpus_sit_on_a_non_zero_axis_each_against_its_own_limit() -> None:
    hottest = pd.DataFrame(
        {"max_temp_c": [93.0, 86.0], "model": ["H100", "A100"], "limit_c": [90.0, 85.0], "headroom_c": [-3.0, -1.0]},
        index=["a / GPU 0", "b / GPU 0"],
    )
    fig = charts.hottest(hottest)
    low, high = fig.layout.xaxis.range
    assert 80 <= low < 85 and high > 93  # 86 °C and 93 °C no longer look alike
    assert fig.layout.xaxis.title.text == "temperature (°C)"
    limits = next(t for t in fig.data if t.name == "model limit")
    assert dict(zip(limits.y, limits.x)) == {"a / GPU 0": 90.0, "b / GPU 0": 85.0}


def test_hourly_pattern_has_one_chart_per_unit_with_whole_hour_ticks() -> None:
    hourly = pd.DataFrame(
        {"gpu_temp_c": [60.0, 70.0], "power_w": [300.0, 400.0], "util_pct": [50.0, 90.0]}, index=[8, 9]
    )
    fig = charts.hourly(hourly)
    titles = [fig.layout[f"yaxis{i}"].title.text for i in ("", 2, 3)]
    assert titles == ["mean temperature (°C)", "mean power (W)", "mean utilization (%)"]
    for name in ("xaxis", "xaxis2", "xaxis3"):
        axis = fig.layout[name]
        assert axis.tickmode == "linear" and axis.dtick == 1 and axis.tick0 == 0 and axis.tickformat == "d"


def test_throttling_chart_cannot_pass_100_percent() -> None:
    shares = pd.DataFrame({"throttled": [100.0], "sw_power_cap": [100.0], "sw_thermal": [100.0]}, index=["a / GPU 0"])
    fig = charts.throttling(shares)
    bar = next(t for t in fig.data if t.type == "bar")
    assert list(bar.x) == [100.0] and fig.layout.barmode != "stack"
    assert fig.layout.xaxis2.range[1] <= 105


def test_time_series_do_not_connect_gaps_and_open_on_the_latest_burst() -> None:
    times = pd.to_datetime(["2026-11-02 08:00", "2026-11-02 09:00", "2026-12-03 06:00", "2026-12-03 07:00"], utc=True)
    series = pd.DataFrame({"gpu": "a / GPU 0", "time": times, "gpu_temp_c": [50.0, 60.0, 55.0, 65.0]})
    fig = charts.temperature(series)
    assert all(trace.connectgaps is False for trace in fig.data)
    start, end = (pd.Timestamp(t) for t in fig.layout.xaxis.range)
    assert start.month == end.month == 12 and fig.layout.xaxis.rangeslider.visible


def test_alert_timeline_gives_every_gpu_a_row_of_its_own() -> None:
    start = pd.Timestamp("2026-11-02 08:00", tz="UTC")
    alerts = pd.DataFrame(
        {
            "node": [f"n{i}" for i in range(20)],
            "gpu": "0",
            "severity": ["critical", "warning"] * 10,
            "kind": "over_temp",
            "message": "hot",
            "start": start,
            "end": start + pd.Timedelta(minutes=30),
        }
    )
    fig = charts.alert_timeline(analytics.timeline(alerts, (start, start + pd.Timedelta(hours=1))))
    assert fig.layout.height >= 20 * charts.ROW_PX  # 20 GPUs, not squeezed into a sliver
    assert [t.name for t in fig.data] == ["warning", "critical"]  # critical drawn on top


def test_a_gpu_without_temperature_readings_keeps_the_axis_finite() -> None:
    hottest = pd.DataFrame(
        {"max_temp_c": [float("nan")], "model": [None], "limit_c": [85.0], "headroom_c": [float("nan")]},
        index=["a / GPU 0"],
    )
    assert charts.hottest(hottest).layout.xaxis.range == (80.0, 88.0)
