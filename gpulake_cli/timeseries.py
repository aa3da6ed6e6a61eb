"""Time-axis helpers for the report: telemetry arrives in bursts (a node uploads hours, then nothing for weeks).

A chart that joins the last sample of one burst to the first of the next draws a straight line across
the gap, and an axis spanning both squeezes each burst into a sliver. These functions find the bursts
(:func:`periods`), break lines at gaps (:func:`break_gaps`) and pick a bucket that keeps a chart's point
count bounded without averaging away a short burst (:func:`bucket`).
"""

from __future__ import annotations

import pandas as pd

#: bucket widths tried, finest first
BUCKETS = ("1min", "5min", "15min", "1h", "6h", "1D")
#: a step this many times the series' typical step is a gap, not a slow sample
GAP_FACTOR = 5
#: a pause this long between samples of the whole fleet starts a new period of activity
PERIOD_GAP = pd.Timedelta(hours=6)


def bucket(times: pd.Series, max_points: int = 2000) -> str:
    """The finest of :data:`BUCKETS` that leaves at most ``max_points`` non-empty buckets (empty ones cost nothing)."""
    for width in BUCKETS:
        if times.dt.floor(width).nunique() <= max_points:
            return width
    return BUCKETS[-1]


def max_gap(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The step beyond which a time series counts as interrupted: GAP_FACTOR x its median step."""
    steps = index.to_series().diff().dropna()
    return steps.median() * GAP_FACTOR if len(steps) else pd.Timedelta(0)


def break_gaps(frame: pd.DataFrame, gap: pd.Timedelta | None = None) -> pd.DataFrame:
    """``frame`` (sorted time index) with an all-NaN row in the middle of every step longer than ``gap``.

    Plotting libraries connect consecutive points; a NaN row between them (with ``connectgaps`` off) ends
    the line, so a month without data shows as a month without a line. ``gap`` defaults to :func:`max_gap`.
    """
    if len(frame) < 2:
        return frame
    gap = max_gap(frame.index) if gap is None else gap
    times = frame.index.to_series()
    after = times.diff() > gap
    middles = times.shift()[after] + (times[after] - times.shift()[after]) / 2
    return frame.reindex(frame.index.union(pd.DatetimeIndex(middles)))


def periods(times: pd.Series, gap: pd.Timedelta = PERIOD_GAP) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The bursts of activity in ``times``: (first, last) of each run without a pause longer than ``gap``."""
    ordered = pd.DatetimeIndex(times.dropna().sort_values().unique())
    if not len(ordered):
        return []
    starts = ordered.to_series().diff() > gap
    runs = starts.cumsum().to_numpy()
    return [(ordered[runs == run][0], ordered[runs == run][-1]) for run in sorted(set(runs))]
