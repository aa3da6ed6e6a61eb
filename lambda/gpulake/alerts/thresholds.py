"""Threshold rules users set: a JSON Lines file (stdlib only), one rule per line.

A rule names a canonical column or an ``extra`` field (``extra:<key>``), a comparison, a threshold —
absolute, or relative to the GPU's own limit (``relative_to``: ``power_limit`` makes the threshold a
fraction of the reported power limit; ``slowdown``/``shutdown`` an offset in °C from the GPU's
temperature limit, see :mod:`gpulake.alerts.limits`) —, a minimum duration and a severity. Rule
alerts are kind ``threshold`` with the rule's name as metric, so they go through the same episode
lifecycle and notifications. A bad file raises :class:`~gpulake.errors.ConfigError` naming the line.

Example
-------
>>> rules = parse('{"name": "hot", "field": "gpu_temp_c", "op": ">", "threshold": 80}', "x.jsonl")
>>> rules[0].severity
'warning'
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpulake.errors import ConfigError
from gpulake.schema import CANONICAL_COLUMNS

DEFAULT_FILE = Path(__file__).with_name("rules.default.jsonl")
OPS: dict[str, Callable[[object, object], object]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
RELATIVE = ("power_limit", "slowdown", "shutdown")
SEVERITIES = ("info", "warning", "critical")
KEYS = {"name", "field", "op", "threshold", "relative_to", "min_duration_s", "severity"}
#: Where the power limit is found in ``extra`` (DCGM, nvidia-smi).
POWER_LIMIT_KEYS = ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "enforced.power.limit [W]", "power.limit [W]")


@dataclass(frozen=True)
class ThresholdRule:
    name: str
    field: str
    op: str
    threshold: float
    relative_to: str | None = None
    min_duration_s: float = 0.0
    severity: str = "warning"
    line: int = 0


def parse(text: str, origin: str) -> tuple[ThresholdRule, ...]:
    """Rules from JSON Lines text; ``origin`` names the file in errors."""
    rules: list[ThresholdRule] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{origin}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not a JSON object ({exc.msg}); one rule per line") from None
        rule = _rule(raw, where, number)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(f"{where}: rule name {rule.name!r} is used twice")
        rules.append(rule)
    return tuple(rules)


def _check(raw: object, where: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a rule is a JSON object")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; rules have {sorted(KEYS)}")
    missing = sorted({"name", "field", "op", "threshold"} - set(raw))
    if missing:
        raise ConfigError(f"{where}: missing {missing}")
    field = str(raw["field"])
    if not (field in CANONICAL_COLUMNS or (field.startswith("extra:") and len(field) > 6)):
        raise ConfigError(
            f"{where}: unknown field {field!r}: use a canonical column {list(CANONICAL_COLUMNS)} or 'extra:<key>'"
        )
    if raw["op"] not in OPS:
        raise ConfigError(f"{where}: op {raw['op']!r} is not one of {list(OPS)}")
    if raw.get("relative_to") not in (None, *RELATIVE):
        raise ConfigError(f"{where}: relative_to {raw['relative_to']!r} is not one of {list(RELATIVE)}")
    if raw.get("severity", "warning") not in SEVERITIES:
        raise ConfigError(f"{where}: severity {raw['severity']!r} is not one of {list(SEVERITIES)}")
    return raw


def _rule(raw: object, where: str, number: int) -> ThresholdRule:
    checked = _check(raw, where)
    try:
        threshold, duration = float(checked["threshold"]), float(checked.get("min_duration_s", 0))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: threshold and min_duration_s must be numbers") from None
    return ThresholdRule(
        str(checked["name"]),
        str(checked["field"]),
        checked["op"],
        threshold,
        checked.get("relative_to"),
        duration,
        checked.get("severity", "warning"),
        number,
    )


@functools.cache
def load(path: str | Path | None = None) -> tuple[ThresholdRule, ...]:
    """The rules of ``path`` (default: the packaged ``rules.default.jsonl``), read once per process.

    Every ``AlertConfig()`` and every SQS record's settings ask for them; the file does not change under a
    running process (a deployment is a new container).
    """
    path = Path(path) if path else DEFAULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the rules file {path}: {exc.strerror}") from None
    return parse(text, str(path))
