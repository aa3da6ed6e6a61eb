"""Throttling and thermal alerts derived from canonical metrics."""

from gpulake.alerts.rules import AlertConfig, detect

__all__ = ["AlertConfig", "detect"]
