"""Fleet analytics over processed Parquet (pandas): the numbers behind ``automated_pipeline.py report``.

Everything after :func:`load` is a pure function of the metrics and alerts frames,
so it is tested without plots (tests/cli/test_analytics.py). The health score is explained in docs/cli.md.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

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
from gpulake.schema import CANONICAL_COLUMNS
from loaders.records import read_alerts
from loaders.source import Source

CANONICAL = list(CANONICAL_COLUMNS)
#: the throttle causes that count fully in the health score (power capping counts a quarter)
SEVERE = HW_SLOWDOWN | SW_THERMAL | HW_THERMAL | HW_POWER_BRAKE
SPIKE_C = 8.0  # a rise of this much within one sample interval
Z_ANOMALY = 3.0


@dataclass(frozen=True)
class Data:
    metrics: pd.DataFrame
    alerts: pd.DataFrame


def load(source: Source) -> Data:
    """All metrics rows and alert episodes of a processed directory or bucket."""
    frames, alerts = [], []
    for obj in source.list():
        data = source.read(obj)
        if obj.kind == "metrics":
            columns = ["time", "node", "gpu", "gpu_model", "source", *CANONICAL, "throttle_reasons", "extra"]
            table = pq.read_table(io.BytesIO(data), partitioning=None, columns=columns)
            frame = table.drop_columns(["extra"]).to_pandas()
            frame["ecc_dbe"] = extra_values(table, ECC_DBE_KEYS)
            frames.append(frame)
        elif obj.kind == "alerts":
            alerts.append(read_alerts(data, obj.key).to_pandas())
    empty = pd.DataFrame(columns=["time", "node", "gpu", *CANONICAL])
    metrics = pd.concat(frames, ignore_index=True) if frames else empty
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
    """Per UTC day: mean and max temperature, mean power and utilization, samples."""
    day = m["time"].dt.strftime("%Y-%m-%d")
    return m.groupby(day).agg(
        samples=("gpu_temp_c", "size"),
        mean_temp_c=("gpu_temp_c", "mean"),
        max_temp_c=("gpu_temp_c", "max"),
        mean_power_w=("power_w", "mean"),
        mean_util_pct=("util_pct", "mean"),
    )


def hourly(m: pd.DataFrame) -> pd.DataFrame:
    """Mean temperature, power and utilization by hour of day (UTC)."""
    return m.groupby(m["time"].dt.hour)[["gpu_temp_c", "power_w", "util_pct"]].mean()


def spikes(m: pd.DataFrame) -> pd.DataFrame:
    """Samples whose temperature rose by at least SPIKE_C since the GPU's previous sample."""
    ordered = m.sort_values(["node", "gpu", "source", "time"])
    rise = ordered.groupby(["node", "gpu", "source"])["gpu_temp_c"].diff()
    found = ordered.assign(rise_c=rise)[rise >= SPIKE_C]
    return found[["time", "node", "gpu", "source", "gpu_temp_c", "rise_c"]].sort_values("rise_c", ascending=False)


def correlations(m: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation between the canonical metrics that vary."""
    numeric = m[CANONICAL].astype(float)
    return numeric.loc[:, numeric.std() > 0].corr()


def throttling(m: pd.DataFrame) -> pd.DataFrame:
    """Per GPU: share of samples (%) with each throttle cause set."""
    reasons = m["throttle_reasons"].fillna(0).astype("int64")
    shares = pd.DataFrame({name: (reasons & bit) != 0 for name, bit in THROTTLE_CAUSES.items()})
    shares["gpu"] = gpu_key(m)
    return shares.groupby("gpu").mean() * 100


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
