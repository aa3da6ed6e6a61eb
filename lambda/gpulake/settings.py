"""Environment variables read by the Lambda (each listed in ``.env.example`` and README)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from gpulake import limits
from gpulake.alerts import AlertConfig, thresholds
from gpulake.alerts.lifecycle import LifecycleConfig
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
    #: The DynamoDB table of alert episodes; None: per-object alerts, no lifecycle (as before).
    episodes_table: str | None = None
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)


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
            rules=_rules(os.environ.get("GPULAKE_RULES_FILE", "")),
        ),
        episodes_table=os.environ.get("GPULAKE_EPISODES_TABLE") or None,
        lifecycle=LifecycleConfig(
            upload_interval_s=_positive("GPULAKE_UPLOAD_INTERVAL_S", LifecycleConfig.upload_interval_s),
            continue_factor=_positive("GPULAKE_CONTINUE_FACTOR", LifecycleConfig.continue_factor),
            resolve_factor=_positive("GPULAKE_RESOLVE_FACTOR", LifecycleConfig.resolve_factor),
            repeat_interval_s=_float("GPULAKE_REPEAT_INTERVAL_S", LifecycleConfig.repeat_interval_s),
            closed_ttl_days=_positive("GPULAKE_EPISODE_TTL_DAYS", LifecycleConfig.closed_ttl_days),
            group_interval_s=_not_negative("GPULAKE_GROUP_INTERVAL_S", LifecycleConfig.group_interval_s),
        ),
        max_inflated=limits.size_limit(),
    )


def _rules(path: str) -> tuple[thresholds.ThresholdRule, ...]:
    """Threshold rules of ``GPULAKE_RULES_FILE`` (absolute, or relative to the package); "" = the default file."""
    if path and not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), path)
    return thresholds.load(path or None)


def _not_negative(name: str, default: float) -> float:
    value = _float(name, default)
    if value < 0:
        raise ConfigError(f"{name}={value:g} must be 0 or more seconds")
    return value


def _positive(name: str, default: float) -> float:
    value = _float(name, default)
    if value <= 0:
        raise ConfigError(f"{name}={value:g} must be greater than 0")
    return value
