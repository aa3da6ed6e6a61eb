"""Fleet analytics over processed Parquet (pandas): the numbers behind ``automated_pipeline.py report``.

Everything after :func:`load` is a pure function of the metrics and alerts frames,
so it is tested without plots (tests/cli/test_analytics.py). The health score is explained in docs/cli.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gpulake.alerts import AlertConfig
from gpulake.alerts.rules import (
    ECC_DBE_KEYS,
    HW_POWER_BRAKE,
    HW_SLOWDOWN,
    HW_THERMAL,
    SW_POWER_CAP,
    SW_THERMAL,
    THROTTLE_CAUSES,
    extra_values,
    temp_limit,
)
from gpulake.errors import GpulakeError
from gpulake.output.parquet import read_parquet_bytes
from gpulake.schema import CANONICAL_COLUMNS
from gpulake_cli import timeseries
from loaders.records import read_alerts
from loaders.source import Source

CANONICAL = list(CANONICAL_COLUMNS)
#: the throttle causes that count fully in the health score (power capping counts a quarter)
SEVERE = HW_SLOWDOWN | SW_THERMAL | HW_THERMAL | HW_POWER_BRAKE
SPIKE_C = 8.0  # a rise of this much within one sample interval
#: rises on one GPU closer than this are one event (dcgm and nvidia-smi of the same GPU see the same spike)
SPIKE_MERGE = pd.Timedelta(minutes=5)
Z_ANOMALY = 3.0


class NothingToReport(GpulakeError):
    """The source holds no processed metrics (empty, or raw files that were never processed)."""


@dataclass(frozen=True)
class Data:
    metrics: pd.DataFrame
    alerts: pd.DataFrame


def load(source: Source) -> Data:
    """All metrics rows and alert episodes of a processed directory or bucket.

    Raises :class:`NothingToReport` rather than returning nothing: an empty report looks like a healthy fleet.
    """
    frames, alerts = [], []
    for obj in source.list():
        if obj.kind not in ("metrics", "alerts"):
            continue  # closed episodes: the alert timeline draws the per-object alerts
        data = source.read(obj)
        if obj.kind == "metrics":
            columns = ["time", "node", "gpu", "gpu_model", "source", *CANONICAL, "throttle_reasons", "extra"]
            table = read_parquet_bytes(data, columns)
            frame = table.drop_columns(["extra"]).to_pandas(use_threads=False)
            frame["ecc_dbe"] = extra_values(table, ECC_DBE_KEYS)
            frames.append(frame)
        elif obj.kind == "alerts":
            alerts.append(read_alerts(data, obj.key).to_pandas(use_threads=False))
    if not sum(map(len, frames)):
        raise NothingToReport(
            f"nothing to report in {source.describe()}: no processed metrics "
            "(run `gpulake process RAW --out DIR` first and give DIR to --from)"
        )
    metrics = pd.concat(frames, ignore_index=True)
    alert_frame = pd.concat(alerts, ignore_index=True) if alerts else pd.DataFrame()
    return Data(metrics, alert_frame)


def gpu_key(frame: pd.DataFrame) -> pd.Series:
    return frame["node"].astype(str) + " / GPU " + frame["gpu"].astype(str)


def summary(data: Data) -> dict[str, object]:
    m = data.metrics
    return {
        "rows": len(m),
        "nodes": int(m["node"].nunique()),
        "gpus": int(gpu_key(m).nunique()) if len(m) else 0,
        "sources": sorted(m["source"].unique().tolist()) if len(m) else [],
        "first": m["time"].min(),
        "last": m["time"].max(),
        "alerts": len(data.alerts),
        "critical_alerts": int((data.alerts["severity"] == "critical").sum()) if len(data.alerts) else 0,
    }


def daily(m: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day with samples (a time index): mean and max temperature, mean power and utilization, samples."""
    day = m["time"].dt.floor("D").rename("day")
    return m.groupby(day).agg(
        samples=("gpu_temp_c", "size"),
        mean_temp_c=("gpu_temp_c", "mean"),
        max_temp_c=("gpu_temp_c", "max"),
        mean_power_w=("power_w", "mean"),
        mean_util_pct=("util_pct", "mean"),
    )


def hourly(m: pd.DataFrame) -> pd.DataFrame:
    """Mean temperature, power and utilization by hour of day (UTC, whole hours 0-23 that have samples)."""
    return m.groupby(m["time"].dt.hour.rename("hour"))[["gpu_temp_c", "power_w", "util_pct"]].mean()


def spikes(m: pd.DataFrame) -> pd.DataFrame:
    """Temperature spikes, each once: a rise of SPIKE_C or more since the previous sample of the same source.

    Rises on one GPU within SPIKE_MERGE of each other are one event, whichever sources saw it (dcgm and
    nvidia-smi scrape the same GPU); the event keeps its first time, the highest reading and rise, and
    the sources that saw it. Largest rise first.
    """
    ordered = m.sort_values(["node", "gpu", "source", "time"])
    rise = ordered.groupby(["node", "gpu", "source"])["gpu_temp_c"].diff()
    found = ordered.assign(rise_c=rise)[rise >= SPIKE_C].sort_values(["node", "gpu", "time"])
    step = found.groupby(["node", "gpu"])["time"].diff()
    event = (step.isna() | (step > SPIKE_MERGE)).cumsum()
    events = found.groupby(event.to_numpy()).agg(
        time=("time", "first"),
        node=("node", "first"),
        gpu=("gpu", "first"),
        sources=("source", lambda s: ", ".join(sorted(set(s)))),
        gpu_temp_c=("gpu_temp_c", "max"),
        rise_c=("rise_c", "max"),
    )
    return events.sort_values(["rise_c", "time"], ascending=[False, True]).reset_index(drop=True)


def correlations(m: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation between the canonical metrics that vary."""
    numeric = m[CANONICAL].astype(float)
    return numeric.loc[:, numeric.std() > 0].corr()


def throttling(m: pd.DataFrame) -> pd.DataFrame:
    """Per GPU, % of samples throttled (any cause: the union) and % with each cause set; most throttled first.

    Causes overlap (power cap and thermal slowdown at once), so the cause columns may add up to more than
    ``throttled``; each column, ``throttled`` included, is a share of samples and never exceeds 100.
    """
    reasons = m["throttle_reasons"].fillna(0).astype("int64")
    flags = pd.DataFrame({name: (reasons & bit) != 0 for name, bit in THROTTLE_CAUSES.items()})
    flags.insert(0, "throttled", flags.any(axis=1))
    flags["gpu"] = gpu_key(m).to_numpy()
    return (flags.groupby("gpu").mean() * 100).sort_values("throttled", ascending=False)


def temperature_series(m: pd.DataFrame, max_points: int = 2000) -> pd.DataFrame:
    """Per GPU and time bucket, the highest temperature any source reported; lines broken at gaps.

    Long format (``gpu``, ``time``, ``gpu_temp_c``); a NaN row sits in every gap (see
    :func:`timeseries.break_gaps`), so a GPU silent for a month draws no line across that month.
    """
    width = timeseries.bucket(m["time"], max_points)
    frame = m.assign(gpu=gpu_key(m), time=m["time"].dt.floor(width))
    per_gpu = frame.groupby(["gpu", "time"])["gpu_temp_c"].max()
    parts = [
        timeseries.break_gaps(series.droplevel("gpu").to_frame()).assign(gpu=gpu)
        for gpu, series in per_gpu.groupby(level="gpu")
    ]
    return pd.concat(parts).rename_axis("time").reset_index()[["gpu", "time", "gpu_temp_c"]]


def timeline(alerts: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], min_share: float = 0.005) -> pd.DataFrame:
    """Alert episodes as bars (``gpu``, ``start``, ``width``, …), each at least ``min_share`` of ``window`` wide.

    A one-sample episode lasts zero seconds; drawn to scale it would be invisible, so its bar is widened
    (``end`` still says when it really ended).
    """
    least = max((window[1] - window[0]) * min_share, pd.Timedelta(seconds=1))
    return alerts.assign(gpu=gpu_key(alerts), width=(alerts["end"] - alerts["start"]).clip(lower=least))


def hottest(m: pd.DataFrame, config: AlertConfig | None = None, top: int = 12) -> pd.DataFrame:
    """The hottest GPUs (max temperature) against their model's limit."""
    config = config or AlertConfig()
    frame = m.assign(gpu_id=gpu_key(m))
    agg = frame.groupby("gpu_id").agg(max_temp_c=("gpu_temp_c", "max"), model=("gpu_model", "first"))
    agg["limit_c"] = [temp_limit(model if isinstance(model, str) else "", config) for model in agg["model"]]
    agg["headroom_c"] = agg["limit_c"] - agg["max_temp_c"]
    return agg.sort_values("max_temp_c", ascending=False).head(top)


def health(data: Data, config: AlertConfig | None = None) -> pd.DataFrame:
    """Health score per GPU, 0-100 (docs/cli.md): 100 minus temperature, throttling, error and anomaly penalties."""
    config = config or AlertConfig()
    m = data.metrics.assign(gpu_id=gpu_key(data.metrics))
    rows = []
    alert_keys = gpu_key(data.alerts) if len(data.alerts) else pd.Series(dtype=str)
    for gpu_id, g in m.groupby("gpu_id"):
        limit = temp_limit(str(g["gpu_model"].dropna().iloc[0]) if g["gpu_model"].notna().any() else "", config)
        p95 = float(np.nanpercentile(g["gpu_temp_c"].astype(float), 95)) if g["gpu_temp_c"].notna().any() else np.nan
        headroom = limit - p95 if not np.isnan(p95) else 10.0
        temp_penalty = float(np.clip((10.0 - headroom) * 3.0, 0.0, 40.0))
        reasons = g["throttle_reasons"].fillna(0).astype("int64")
        severe_share = float(((reasons & SEVERE) != 0).mean())
        cap_share = float(((reasons & SW_POWER_CAP) != 0).mean())
        throttle_penalty = min(30.0, 100.0 * severe_share + 25.0 * cap_share)
        kinds = set(data.alerts.loc[alert_keys == gpu_id, "kind"]) if len(data.alerts) else set()
        dbe = bool((g["ecc_dbe"].fillna(0) > 0).any()) or "ecc_dbe" in kinds
        error_penalty = (20.0 if dbe else 0.0) + (10.0 if "xid" in kinds else 0.0)
        z_share = _anomaly_share(g)
        anomaly_penalty = min(10.0, 200.0 * z_share)
        score = max(0.0, 100.0 - temp_penalty - throttle_penalty - error_penalty - anomaly_penalty)
        rows.append(
            {
                "gpu": gpu_id,
                "score": round(score, 1),
                "p95_temp_c": round(p95, 1),
                "limit_c": limit,
                "temp_penalty": round(temp_penalty, 1),
                "throttle_penalty": round(throttle_penalty, 1),
                "error_penalty": error_penalty,
                "anomaly_penalty": round(anomaly_penalty, 1),
            }
        )
    return pd.DataFrame(rows).set_index("gpu").sort_values("score") if rows else pd.DataFrame()


def _anomaly_share(g: pd.DataFrame) -> float:
    """Share of samples with |z| > Z_ANOMALY on temperature or power (within the GPU)."""
    flags = np.zeros(len(g), dtype=bool)
    for column in ("gpu_temp_c", "power_w"):
        values = g[column].astype(float)
        std = values.std()
        if std and not np.isnan(std):
            flags |= (np.abs((values - values.mean()) / std) > Z_ANOMALY).to_numpy()
    return float(flags.mean()) if len(flags) else 0.0
