"""Environment variables read by the Lambda (each listed in ``.env.example`` and README)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from gpulake import limits
from gpulake.alerts import AlertConfig
from gpulake.errors import ConfigError
from gpulake.timeutil import check_zone


@dataclass(frozen=True)
class Settings:
    processed_bucket: str
    processed_prefix: str
    alerts_topic_arn: str | None
    source_tz: str
    alert_config: AlertConfig
    #: Caps on an object's decompressed size, from the function's memory or GPULAKE_MAX_INFLATED_MB.
    max_inflated: limits.SizeLimit


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def from_env() -> Settings:
    """Read and validate the settings; a missing bucket is a deployment error."""
    bucket = os.environ.get("GPULAKE_PROCESSED_BUCKET", "")
    if not bucket:
        raise ConfigError("GPULAKE_PROCESSED_BUCKET is not set: point it at the processed bucket")
    return Settings(
        processed_bucket=bucket,
        processed_prefix=os.environ.get("GPULAKE_PROCESSED_PREFIX", ""),
        alerts_topic_arn=os.environ.get("GPULAKE_ALERTS_TOPIC_ARN") or None,
        source_tz=check_zone(os.environ.get("GPULAKE_SOURCE_TZ", "UTC") or "UTC"),
        alert_config=AlertConfig(
            default_temp_limit_c=_float("GPULAKE_DEFAULT_TEMP_LIMIT_C", AlertConfig.default_temp_limit_c),
            hbm_temp_limit_c=_float("GPULAKE_HBM_TEMP_LIMIT_C", AlertConfig.hbm_temp_limit_c),
        ),
        max_inflated=limits.size_limit(),
    )
