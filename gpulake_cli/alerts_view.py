"""Alert episodes for ``automated_pipeline.py alerts``: read, filter, print as a table.

By default one line per episode (ADR 0005): closed episodes from ``episodes/``, open ones from
the offline state (``.gpulake/episodes.sqlite``) or, failing that, from the per-object alerts
grouped by ``episode_id``. ``--raw`` lists the per-object alerts instead.
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gpulake.alerts.lifecycle import SEVERITY_RANK, pending, public
from gpulake.alerts.state import SqliteEpisodeStore
from gpulake.errors import ConfigError
from gpulake.local import STATE_FILE
from gpulake.timeutil import iso_to_ms
from loaders.source import Source

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS = ("start", "end", "severity", "kind", "node", "gpu", "source", "peak", "threshold", "samples")
EPISODE_COLUMNS = (
    "state",
    "resolution",
    "start",
    "end",
    "severity",
    "kind",
    "metric",
    "node",
    "gpu",
    "peak",
    "threshold",
    "samples",
    "objects",
    "notifications",
)


def read(source: Source) -> list[dict[str, Any]]:
    """Every episode of the processed layout's alerts/, oldest first."""
    episodes = []
    for obj in source.list():
        if obj.kind == "alerts":
            episodes += [json.loads(line) for line in source.read(obj).decode().splitlines() if line.strip()]
    return sorted(episodes, key=lambda e: (e["start"], e["node"], e["gpu"], e["kind"]))


def episodes(source: Source) -> list[dict[str, Any]]:
    """One record per episode: closed (episodes/), open (offline state), else grouped per-object alerts."""
    by_id: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    keys = list(source.all_keys())
    for key in keys:
        if key.startswith("episodes/") and key.endswith(".json"):
            episode = {**json.loads(source.read_key(key)), "state": "closed"}
            by_id[episode["episode_id"]] = episode
            aliases.update({alias: episode["episode_id"] for alias in episode.get("aliases", [])})
    if STATE_FILE in keys:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "episodes.sqlite"
            path.write_bytes(source.read_key(STATE_FILE))
            for item in SqliteEpisodeStore(path).open_items():
                by_id.setdefault(item["sk"], public(item))
    for alert in read(source):
        eid = aliases.get(str(alert.get("episode_id")), alert.get("episode_id")) or alert["alert_id"]
        if eid in by_id and by_id[eid].get("objects") is not None:
            continue
        _fold(
            by_id.setdefault(eid, {"episode_id": eid, "state": "open", "notifications": None, "objects": None}), alert
        )
    found = [e for e in by_id.values() if not e.get("pending")]
    return sorted(found, key=lambda e: (e["start"], e["node"], e["gpu"], e["kind"]))


def _fold(episode: dict[str, Any], alert: dict[str, Any]) -> None:
    """Grow an episode known only from its per-object alerts by one of them."""
    if "kind" not in episode:
        episode.update(
            {k: alert.get(k) for k in ("kind", "metric", "node", "gpu", "start", "end", "peak", "threshold")}
        )
        episode.update(severity=alert["severity"], samples=0, parts=0)
    episode["start"], episode["end"] = min(episode["start"], alert["start"]), max(episode["end"], alert["end"])
    # a rule episode shorter than its rule's minimum is not an alert yet (the lifecycle's own test)
    span = {"start_ms": iso_to_ms(episode["start"]), "end_ms": iso_to_ms(episode["end"])}
    episode["pending"] = pending(
        {**span, "min_duration_s": alert.get("min_duration_s"), "step_ms": alert.get("step_ms")}
    )
    by_source = episode.setdefault("samples_by_source", {})  # the lifecycle's count: the most of any source
    source = str(alert.get("source") or "")
    by_source[source] = by_source.get(source, 0) + int(alert["samples"])
    episode["samples"] = max(by_source.values())
    episode["parts"] += 1
    if alert.get("peak") is not None and (episode["peak"] is None or alert["peak"] > episode["peak"]):
        episode["peak"] = alert["peak"]
    if SEVERITY_RANK.get(alert["severity"], 0) > SEVERITY_RANK.get(episode["severity"], 0):
        episode["severity"] = alert["severity"]


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


def table(episodes: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS, noun: str = "alerts") -> str:
    if not episodes:
        return f"no {noun} match"
    rows = [[_cell(e.get(c)) for c in columns] for e in episodes]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join([*lines, f"{len(episodes)} {noun}"])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("\n", "\\n")
