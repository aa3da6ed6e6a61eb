"""The report's numbers, without plots: the health score formula of docs/cli.md on hand-made GPUs."""

from __future__ import annotations

import pandas as pd

from gpulake_cli import analytics


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
    # hot: 89 °C slowdown (H100, gpulake.alerts.limits) - p95 85 °C = 4 °C headroom -> 3 x (10 - 4) = 18; half the
    # samples thermally throttled -> min(30, 100 x 0.5) = 30; no errors, constant readings -> 100 - 18 - 30 = 52
    assert health.loc["a / GPU 0", ["temp_penalty", "throttle_penalty", "score"]].tolist() == [18.0, 30.0, 52.0]
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
