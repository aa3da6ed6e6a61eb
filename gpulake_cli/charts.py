"""The report's charts as plotly figures: hover for values, zoom on time, titles with units on every axis.

One function per chart, each a pure function of a frame from :mod:`gpulake_cli.analytics`. Legends sit
outside the plot area (plotly's default right-hand legend widens the margin instead of covering data);
time charts open on the latest period of activity, with a range slider over everything when the data
come in several bursts (:func:`gpulake_cli.timeseries.periods`).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpulake_cli import timeseries

SEVERITY_COLORS = {"critical": "#d64545", "warning": "#f0b429", "info": "#9aa5b1"}
HOVER_TIME = "%Y-%m-%d %H:%M:%S UTC"
ROW_PX = 26  # height per GPU on charts with one row per GPU
GPU_AXIS = "GPU (node / index)"


def _finish(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": fig.layout.margin.b or 10},
        hoverlabel={"namelength": -1},
        font={"size": 12},
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def _rows_height(rows: int) -> int:
    return max(260, 110 + ROW_PX * rows)


def _time_axis(fig: go.Figure, times: pd.Series) -> None:
    """A UTC time axis opened on the latest burst of data; a range slider when there is more than one."""
    bursts = timeseries.periods(times)
    axis: dict[str, object] = {"title_text": "time (UTC)", "type": "date"}
    if len(bursts) > 1:
        start, end = bursts[-1]
        pad = max((end - start) * 0.02, pd.Timedelta(minutes=1))
        axis |= {"range": [start - pad, end + pad], "rangeslider": {"visible": True, "thickness": 0.08}}
        fig.update_layout(margin_b=60)  # room for the axis title below the slider
    fig.update_xaxes(**axis)


def daily(frame: pd.DataFrame) -> go.Figure:
    """Mean and max GPU temperature per UTC day; days without samples break the lines."""
    broken = timeseries.break_gaps(frame, pd.Timedelta(days=1.5))
    fig = go.Figure(
        [
            go.Scatter(x=broken.index, y=broken[column], name=name, mode="lines+markers", connectgaps=False)
            for column, name in (("mean_temp_c", "mean °C"), ("max_temp_c", "max °C"))
        ]
    )
    fig.update_traces(hovertemplate="%{x|%Y-%m-%d}: %{y:.1f} °C")
    days = max((frame.index.max() - frame.index.min()).days, 1)
    half = pd.Timedelta(hours=12)
    fig.update_xaxes(
        title_text="day (UTC)",
        type="date",
        tickformat="%Y-%m-%d",
        dtick=86_400_000 * -(-days // 8),  # whole days, at most ~8 labels
        range=[frame.index.min() - half, frame.index.max() + half],
    )
    fig.update_yaxes(title_text="GPU temperature (°C)")
    return _finish(fig, 300)


def temperature(series: pd.DataFrame) -> go.Figure:
    """Per GPU, the highest temperature any source reported per time bucket (NaN rows break the lines)."""
    fig = go.Figure(
        [
            go.Scatter(x=g["time"], y=g["gpu_temp_c"], name=gpu, mode="lines", connectgaps=False)
            for gpu, g in series.groupby("gpu")
        ]
    )
    fig.update_traces(hovertemplate=f"%{{x|{HOVER_TIME}}}: %{{y:.0f}} °C")
    _time_axis(fig, series["time"])
    fig.update_yaxes(title_text="GPU temperature (°C)")
    return _finish(fig, 380)


def hourly(frame: pd.DataFrame) -> go.Figure:
    """Temperature, power and utilization by hour of day: one small chart per unit, whole-hour ticks."""
    panels = (("gpu_temp_c", "temperature (°C)"), ("power_w", "power (W)"), ("util_pct", "utilization (%)"))
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09)
    for col, (column, title) in enumerate(panels, start=1):
        fig.add_trace(
            go.Scatter(x=frame.index, y=frame[column], mode="lines+markers", name=title, showlegend=False),
            row=1,
            col=col,
        )
        fig.update_yaxes(title_text=f"mean {title}", row=1, col=col)
    fig.update_traces(hovertemplate="%{x}:00 UTC: %{y:.1f}")
    fig.update_xaxes(title_text="hour of day (UTC, h)", tickmode="linear", dtick=_hour_step(frame.index), tick0=0)
    fig.update_xaxes(tickformat="d", range=[frame.index.min() - 0.5, frame.index.max() + 0.5])
    return _finish(fig, 300)


def _hour_step(hours: pd.Index) -> int:
    """Whole-hour tick spacing that keeps at most 8 ticks on a third of the page (hours span 0-23)."""
    span = int(hours.max() - hours.min()) if len(hours) else 0
    return next(step for step in (1, 2, 3) if span / step <= 8)


def correlations(corr: pd.DataFrame) -> go.Figure:
    """Pearson correlation between canonical metrics, values written in the cells."""
    fig = go.Figure(
        go.Heatmap(
            z=corr.to_numpy(),
            x=list(corr.columns),
            y=list(corr.index),
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            texttemplate="%{z:.2f}",
            colorbar={"title": {"text": "Pearson r"}},
            hovertemplate="%{y} vs %{x}: r = %{z:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="metric (canonical column, unit in its name)", tickangle=-30)
    fig.update_yaxes(title_text="metric (canonical column)", autorange="reversed")
    return _finish(fig, 460)


def _cause_label(name: str) -> str:
    """``hw_power_brake`` -> ``HW power<br>brake``: two short lines fit a column without rotating."""
    words = name.split("_")
    words[0] = words[0].upper()
    return " ".join(words[:-1]) + "<br>" + words[-1]


def throttling(shares: pd.DataFrame) -> go.Figure:
    """Left: % of samples with each cause (causes overlap). Right: % throttled by any cause (0-100)."""
    causes = [c for c in shares.columns if c != "throttled"]
    gpus = list(shares.index)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.45, 0.55], horizontal_spacing=0.03)
    fig.add_trace(
        go.Heatmap(
            z=shares[causes].to_numpy(),
            x=[_cause_label(c) for c in causes],
            y=gpus,
            zmin=0,
            zmax=100,
            colorscale="Oranges",
            showscale=False,
            texttemplate="%{z:.0f}",
            customdata=[causes] * len(gpus),
            hovertemplate="%{y}: %{customdata} on %{z:.1f} % of samples<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=shares["throttled"],
            y=gpus,
            orientation="h",
            marker_color="#c65d21",
            showlegend=False,
            hovertemplate="%{y}: throttled on %{x:.1f} % of samples<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="cause (% of samples, overlapping)", tickangle=0, row=1, col=1)
    fig.update_xaxes(title_text="throttled, any cause (% of samples)", range=[0, 103], dtick=20, row=1, col=2)
    fig.update_yaxes(title_text=GPU_AXIS, autorange="reversed", row=1, col=1)
    return _finish(fig, _rows_height(len(gpus)) + 40)


def hottest(frame: pd.DataFrame) -> go.Figure:
    """Each GPU's highest temperature against its own model's limit, on an axis that starts near the data."""
    gpus = list(frame.index)
    temps = pd.concat([frame["max_temp_c"], frame["limit_c"]])  # a GPU without readings still has a limit
    low, high = float(temps.min()), float(temps.max())
    fig = go.Figure()
    for gpu, row in frame.iterrows():
        color = "#d64545" if row["headroom_c"] <= 0 else "#f0b429" if row["headroom_c"] < 5 else "#3e7cb1"
        fig.add_trace(
            go.Scatter(
                x=[row["max_temp_c"], row["limit_c"]],
                y=[gpu, gpu],
                mode="lines",
                line={"color": color, "width": 3},
                showlegend=False,
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=frame["max_temp_c"],
            y=gpus,
            mode="markers",
            name="highest reading",
            marker={"size": 11, "color": "#d64545"},
            customdata=frame[["limit_c", "headroom_c"]].to_numpy(),
            hovertemplate="%{y}: %{x:.0f} °C, limit %{customdata[0]:.0f} °C, headroom %{customdata[1]:.0f} °C"
            "<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["limit_c"],
            y=gpus,
            mode="markers",
            name="model limit",
            marker={"symbol": "line-ns-open", "size": 18, "line": {"width": 3}, "color": "#1f2933"},
            hovertemplate="%{y}: limit %{x:.0f} °C<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="temperature (°C)", range=[low - 5, high + 3])
    fig.update_yaxes(title_text=GPU_AXIS, autorange="reversed", type="category")
    return _finish(fig, _rows_height(len(gpus)))


def health(frame: pd.DataFrame) -> go.Figure:
    """Health score per GPU (0-100), worst first, coloured red < 50 <= amber < 80 <= green."""
    colors = ["#d64545" if s < 50 else "#f0b429" if s < 80 else "#3ebd93" for s in frame["score"]]
    fig = go.Figure(
        go.Bar(
            x=frame["score"],
            y=list(frame.index),
            orientation="h",
            marker_color=colors,
            hovertemplate="%{y}: %{x:.1f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="health score (points, 0-100)", range=[0, 103], dtick=20)
    fig.update_yaxes(title_text=GPU_AXIS, autorange="reversed", type="category")
    return _finish(fig, _rows_height(len(frame)))


def alert_timeline(bars: pd.DataFrame) -> go.Figure:
    """Alert episodes per GPU over time, one trace per severity (hover: kind, times, message)."""
    gpus = sorted(bars["gpu"].unique())
    fig = go.Figure()
    order = [*SEVERITY_COLORS.keys()][::-1]  # critical drawn last, on top of an overlapping warning
    for severity, group in sorted(bars.groupby("severity"), key=lambda g: order.index(g[0]) if g[0] in order else -1):
        fig.add_trace(
            go.Bar(
                base=group["start"],
                x=group["width"].dt.total_seconds() * 1000,
                y=group["gpu"],
                orientation="h",
                name=severity,
                marker_color=SEVERITY_COLORS.get(str(severity), "#9aa5b1"),
                customdata=group[["kind", "start", "end", "message"]].astype(str).to_numpy(),
                hovertemplate="%{customdata[0]} on %{y}<br>%{customdata[1]} to %{customdata[2]}"
                "<br>%{customdata[3]}<extra></extra>",
            )
        )
    fig.update_layout(barmode="overlay")
    _time_axis(fig, pd.concat([bars["start"], bars["end"]]))
    fig.update_yaxes(title_text=GPU_AXIS, categoryorder="array", categoryarray=gpus, autorange="reversed")
    return _finish(fig, _rows_height(len(gpus)) + 60)
