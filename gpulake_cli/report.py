"""A self-contained HTML report (plots as embedded PNGs) over processed output.

Sections follow the GPU-Z seed analytics: fleet summary, daily statistics, hourly
patterns, temperature spikes, metric correlations; then throttled time per GPU and
cause, hottest GPUs against their model's limit, a health score per GPU and the
alert timeline. Numbers come from :mod:`analytics`; this module only draws.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from gpulake_cli import analytics

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1f2933; }
h1 { margin-bottom: 0; } .sub { color: #52606d; margin-top: .2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #d9e2ec; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { background: #f0f4f8; padding: .8rem 1.2rem; border-radius: 6px; }
.card b { display: block; font-size: 1.4rem; } img.plot { max-width: 100%; }
"""


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, digits: int = 1) -> str:
    return frame.round(digits).to_html(border=0, na_rep="-", escape=True)


def _plot_daily(daily: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(daily.index, daily["mean_temp_c"], marker="o", label="mean °C")
    ax.plot(daily.index, daily["max_temp_c"], marker="o", label="max °C")
    ax.set_ylabel("°C")
    ax.legend()
    ax.set_title("Daily GPU temperature")
    return _png(fig)


def _plot_hourly(hourly: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, 3))
    for column in hourly.columns:
        ax.plot(hourly.index, hourly[column], marker=".", label=column)
    ax.set_xlabel("hour of day (UTC)")
    ax.legend()
    ax.set_title("Hourly pattern")
    return _png(fig)


def _plot_correlations(corr: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(corr)), corr.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(corr)), corr.index)
    fig.colorbar(image, ax=ax)
    ax.set_title("Metric correlations (Pearson)")
    return _png(fig)


def _plot_throttling(shares: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, max(3, 0.3 * len(shares))))
    shares.plot.barh(stacked=True, ax=ax)
    ax.set_xlabel("% of samples")
    ax.set_title("Throttled time per GPU and cause")
    return _png(fig)


def _plot_hottest(hottest: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, max(3, 0.3 * len(hottest))))
    ax.barh(hottest.index, hottest["max_temp_c"], color="#d64545", label="max °C")
    ax.scatter(hottest["limit_c"], hottest.index, color="black", marker="|", s=300, label="model limit")
    ax.invert_yaxis()
    ax.legend()
    ax.set_title("Hottest GPUs against their model's limit")
    return _png(fig)


def _plot_health(health: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, max(3, 0.3 * len(health))))
    colors = ["#d64545" if s < 50 else "#f0b429" if s < 80 else "#3ebd93" for s in health["score"]]
    ax.barh(health.index, health["score"], color=colors)
    ax.set_xlim(0, 100)
    ax.set_title("Health score per GPU")
    return _png(fig)


def _plot_timeline(alerts: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, 4))
    colors = {"critical": "#d64545", "warning": "#f0b429", "info": "#9aa5b1"}
    rows = analytics.gpu_key(alerts)
    labels = sorted(rows.unique())
    for (_, alert), row in zip(alerts.iterrows(), rows):
        y = labels.index(row)
        width = max((alert["end"] - alert["start"]).total_seconds() / 86400, 1 / 1440)
        ax.barh(y, width, left=alert["start"], color=colors.get(alert["severity"], "#9aa5b1"), height=0.6)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_title("Alert timeline (red critical, amber warning, grey info)")
    fig.autofmt_xdate()
    return _png(fig)


def render(data: analytics.Data, title: str = "gpulake fleet report") -> str:
    """The whole report as one HTML document (no scripts, no external resources)."""
    m = data.metrics
    s = analytics.summary(data)
    sections = [
        (
            "Fleet summary",
            '<div class="cards">'
            + "".join(
                f'<div class="card"><b>{html.escape(str(v))}</b>{html.escape(k)}</div>'
                for k, v in (
                    ("nodes", s["nodes"]),
                    ("GPUs", s["gpus"]),
                    ("samples", f"{s['rows']:,}"),
                    ("alert episodes", s["alerts"]),
                    ("critical", s["critical_alerts"]),
                )
            )
            + "</div>"
            + f"<p>{html.escape(str(s['first']))} to {html.escape(str(s['last']))}; sources: "
            + html.escape(", ".join(s["sources"]))
            + "</p>",
        ),
    ]
    if len(m):
        daily = analytics.daily(m)
        sections += [
            ("Daily statistics", _plot_daily(daily) + _table(daily)),
            ("Hourly patterns", _plot_hourly(analytics.hourly(m))),
            ("Temperature spikes", _table(analytics.spikes(m).head(15).set_index("time"))),
            ("Metric correlations", _plot_correlations(analytics.correlations(m))),
            ("Throttled time per GPU and cause", _plot_throttling(analytics.throttling(m))),
            ("Hottest GPUs", _plot_hottest(analytics.hottest(m))),
        ]
        health = analytics.health(data)
        sections.append(
            ("Health score", _plot_health(health) + _table(health) + '<p>Formula: see docs/cli.md ("report").</p>')
        )
    if len(data.alerts):
        sections.append(("Alert timeline", _plot_timeline(data.alerts)))
    body = "".join(f"<h2>{html.escape(name)}</h2>{content}" for name, content in sections)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="sub">generated by gpulake from processed Parquet</p>{body}</body></html>'
    )


def write(data: analytics.Data, out: Path, title: str = "gpulake fleet report") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, title), encoding="utf-8")
    return out
