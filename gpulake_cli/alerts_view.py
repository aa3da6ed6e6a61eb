"""Alert episodes for ``automated_pipeline.py alerts``: read, filter, print as a table."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from gpulake.errors import ConfigError
from loaders.source import Source

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS = ("start", "end", "severity", "kind", "node", "gpu", "source", "peak", "threshold", "samples")


def read(source: Source) -> list[dict[str, Any]]:
    """Every episode of the processed layout's alerts/, oldest first."""
    episodes = []
    for obj in source.list():
        if obj.kind == "alerts":
            episodes += [json.loads(line) for line in source.read(obj).decode().splitlines() if line.strip()]
    return sorted(episodes, key=lambda e: (e["start"], e["node"], e["gpu"], e["kind"]))


def parse_since(text: str) -> timedelta:
    match = _SINCE.match(text.strip())
    if not match:
        raise ConfigError(f"--since {text!r}: use a number and a unit, e.g. 30m, 24h, 7d")
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def select(
    episodes: list[dict[str, Any]], since: str | None, kind: str | None, node: str | None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Episodes that ended within ``since`` of now, of ``kind``, on ``node``."""
    if since:
        cutoff = ((now or datetime.now(UTC)) - parse_since(since)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        episodes = [e for e in episodes if e["end"] >= cutoff]
    if kind:
        episodes = [e for e in episodes if e["kind"] == kind]
    if node:
        episodes = [e for e in episodes if e["node"] == node]
    return episodes


def table(episodes: list[dict[str, Any]]) -> str:
    if not episodes:
        return "no alert episodes match"
    rows = [[_cell(e.get(c)) for c in COLUMNS] for e in episodes]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join([*lines, f"{len(episodes)} episodes"])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("\n", "\\n")
