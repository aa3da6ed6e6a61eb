"""A self-contained HTML report over processed output: interactive plotly charts, works offline.

Sections follow the GPU-Z seed analytics: fleet summary, daily statistics, temperature over time,
hourly patterns, temperature spikes, metric correlations; then throttled time per GPU and cause,
hottest GPUs against their model's limit, a health score per GPU and the alert timeline. Numbers
come from :mod:`analytics`, figures from :mod:`charts`; this module lays out the page and inlines
plotly.js once (no CDN, no external file), whatever the number of charts.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from gpulake_cli import analytics, charts, timeseries

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #1f2933; }
h1 { margin-bottom: 0; } .sub { color: #52606d; margin-top: .2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #d9e2ec; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { background: #f0f4f8; padding: .8rem 1.2rem; border-radius: 6px; }
.card b { display: block; font-size: 1.4rem; } .chart { margin: .5rem 0 1rem; } .hint { color: #52606d; }
"""
#: modebar without the plotly logo; charts follow the page width
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def _chart(fig: go.Figure, slug: str) -> str:
    div = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG, div_id=f"chart-{slug}")
    return f'<div class="chart">{div}</div>'


def _table(frame: pd.DataFrame, digits: int = 1) -> str:
    return frame.round(digits).to_html(border=0, na_rep="-", escape=True)


def _summary(data: analytics.Data) -> str:
    s = analytics.summary(data)
    cards = (
        ("nodes", s["nodes"]),
        ("GPUs", s["gpus"]),
        ("samples", f"{s['rows']:,}"),
        ("alert episodes", s["alerts"]),
        ("critical", s["critical_alerts"]),
    )
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{html.escape(str(v))}</b>{html.escape(k)}</div>' for k, v in cards)
        + "</div>"
        + f"<p>{html.escape(str(s['first']))} to {html.escape(str(s['last']))}; sources: "
        + html.escape(", ".join(s["sources"]))
        + "</p>"
    )


def _daily(m: pd.DataFrame) -> str:
    daily = analytics.daily(m)
    table = daily.set_axis(daily.index.strftime("%Y-%m-%d"), axis=0)
    return _chart(charts.daily(daily), "daily") + _table(table)


def _spikes(m: pd.DataFrame) -> str:
    found = analytics.spikes(m)
    if not len(found):
        return f"<p>No rise of {analytics.SPIKE_C:g} °C or more between two samples.</p>"
    hint = (
        f'<p class="hint">{len(found)} events (largest 15 shown); rises on one GPU within '
        f"{analytics.SPIKE_MERGE.total_seconds() / 60:g} min are one event, whichever sources saw it.</p>"
    )
    return hint + _table(found.head(15).set_index("time"))


def _bursts_hint(times: pd.Series) -> str:
    """Say that a time chart opens on the latest burst, when there are several (the slider reaches the rest)."""
    bursts = timeseries.periods(times)
    if len(bursts) < 2:
        return ""
    start, end = (t.strftime("%Y-%m-%d %H:%M") for t in bursts[-1])
    return (
        f'<p class="hint">Data come in {len(bursts)} periods more than '
        f"{timeseries.PERIOD_GAP.total_seconds() / 3600:g} h apart; the chart opens on the latest ({start} to "
        f"{end} UTC): drag the slider below it to see the others.</p>"
    )


def _temperature(m: pd.DataFrame) -> str:
    return _bursts_hint(m["time"]) + _chart(charts.temperature(analytics.temperature_series(m)), "temperature")


def _timeline(alerts: pd.DataFrame) -> str:
    times = pd.concat([alerts["start"], alerts["end"]])
    window = timeseries.periods(times)[-1]
    return _bursts_hint(times) + _chart(charts.alert_timeline(analytics.timeline(alerts, window)), "alerts")


def _sections(data: analytics.Data) -> list[tuple[str, str]]:
    m = data.metrics
    health = analytics.health(data)
    sections = [
        ("Fleet summary", _summary(data)),
        ("Daily statistics", _daily(m)),
        ("Temperature over time", _temperature(m)),
        ("Hourly patterns", _chart(charts.hourly(analytics.hourly(m)), "hourly")),
        ("Temperature spikes", _spikes(m)),
        ("Metric correlations", _chart(charts.correlations(analytics.correlations(m)), "correlations")),
        ("Throttled time per GPU and cause", _chart(charts.throttling(analytics.throttling(m)), "throttling")),
        ("Hottest GPUs", _chart(charts.hottest(analytics.hottest(m)), "hottest")),
        (
            "Health score",
            _chart(charts.health(health), "health") + _table(health) + '<p>Formula: see docs/cli.md ("report").</p>',
        ),
    ]
    if len(data.alerts):
        sections.append(("Alert timeline", _timeline(data.alerts)))
    return sections


def render(data: analytics.Data, title: str = "gpulake fleet report") -> str:
    """The whole report as one HTML document: plotly.js inlined once, no external resources."""
    body = "".join(f"<h2>{html.escape(name)}</h2>{content}" for name, content in _sections(data))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="sub">generated by gpulake from processed Parquet; hover a chart for values, drag to zoom, '
        f"double-click to reset</p>{body}</body></html>"
    )


def write(data: analytics.Data, out: Path, title: str = "gpulake fleet report") -> Path:
    """Write :func:`render`'s page to ``out`` (parents created); returns ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, title), encoding="utf-8")
    return out
