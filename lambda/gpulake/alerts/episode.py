"""One episode item and how the parts of per-object alerts fold into it.

The arithmetic of an episode, apart from where it is stored (``lifecycle`` reads, decides and writes
under conditional writes): a new episode from its first part, a part extending it (min start, max end,
peak and severity the max, samples per source with the most of any source taken: one GPU seen by dcgm
and nvidia-smi is not in the condition twice, ADR 0005), two episodes merged by a bridging part, and
the newest :data:`MAX_PARTS` parts remembered with running totals.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gpulake.alerts.state import Item
from gpulake.timeutil import iso_to_ms

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
#: Parts an episode remembers (about 70 bytes each: 256 are ~18 KB of DynamoDB's 400 KB item limit).
#: An older part's object coming back as a new version counts as a new part of the same episode.
MAX_PARTS = 256


def new_episode(pk: str, alert: dict[str, Any], now_ms: int, every_ms: int) -> Item:
    """An open episode named after its first part (the same part always names the same episode)."""
    return {
        "pk": pk,
        "sk": hashlib.sha256(f"{pk}\n{alert['alert_id']}".encode()).hexdigest()[:24],
        "version": 0,
        "state": "open",
        "node": alert["node"],
        "gpu": alert["gpu"],
        "gpu_uuid": alert.get("gpu_uuid"),
        "gpu_model": alert.get("gpu_model"),
        "kind": alert["kind"],
        "metric": alert["metric"],
        "severity": alert["severity"],
        "start_ms": iso_to_ms(str(alert["start"])),
        "end_ms": iso_to_ms(str(alert["end"])),
        "peak": alert.get("peak"),
        "threshold": alert.get("threshold"),
        "threshold_source": alert.get("threshold_source"),
        "message": alert.get("message"),
        "action": alert.get("action"),
        "min_duration_s": alert.get("min_duration_s"),
        "step_ms": alert.get("step_ms", 0),
        "parts": {},
        "samples": 0,
        "samples_by_source": {},
        "first_seen_ms": now_ms,
        "last_extended_ms": now_ms,
        "interval_ms": every_ms,
        "notified_severity": None,
        "last_notified_ms": None,
        "notifications": 0,
    }


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def grown(ep: Item, alert: dict[str, Any]) -> bool:
    """Whether a part the episode holds came back with more than it had (samples, end, peak or severity)."""
    return (
        int(alert["samples"]) != ep["parts"][str(alert["alert_id"])][0]
        or iso_to_ms(str(alert["end"])) > ep["end_ms"]
        or (alert.get("peak") is not None and (ep.get("peak") is None or alert["peak"] > ep["peak"]))
        or SEVERITY_RANK[str(alert["severity"])] > SEVERITY_RANK[ep["severity"]]
    )


def part_count(ep: Item) -> int:
    """Parts ever folded in (items written before the running count was kept: the parts they hold)."""
    return int(ep.get("part_count", len(ep.get("parts", {}))))


def _part_end(part: list[Any]) -> int:
    return int(part[2]) if len(part) > 2 else 0  # items written before part ends were kept: oldest


def _keep_recent(ep: Item) -> None:
    """Forget all but the newest :data:`MAX_PARTS` parts (by end); the totals stay."""
    if len(ep["parts"]) > MAX_PARTS:
        newest = sorted(ep["parts"].items(), key=lambda kv: (_part_end(kv[1]), kv[0]))[-MAX_PARTS:]
        ep["parts"] = dict(newest)


def _by_source(ep: Item) -> dict[str, int]:
    """Samples per source (items written before they were kept: their total under ``""``)."""
    if "samples_by_source" in ep:
        return dict(ep["samples_by_source"])
    return {"": int(ep["samples"])} if int(ep.get("samples") or 0) else {}


def _count(ep: Item, by_source: dict[str, int]) -> None:
    """Set the episode's samples: the most any one source reported (sources sample the same GPU, ADR 0005)."""
    ep["samples_by_source"] = by_source
    ep["samples"] = max(by_source.values(), default=0)


def extend(ep: Item, alert: dict[str, Any], now_ms: int, every_ms: int) -> None:
    """Fold one part (a per-object alert) into the episode, or update the part it already holds."""
    # per part: samples, the episode id it was first given (its alerts JSONL keeps that id on
    # redelivery) and its end (the newest parts are the ones kept)
    aid = str(alert["alert_id"])
    old = ep["parts"].get(aid)
    first_id = old[1] if old else ep["sk"]
    ep["part_count"] = part_count(ep) + (0 if old else 1)
    end_ms = iso_to_ms(str(alert["end"]))
    ep["parts"][aid] = [int(alert["samples"]), first_id, end_ms]
    by_source, source = _by_source(ep), str(alert.get("source") or "")
    by_source[source] = by_source.get(source, 0) + int(alert["samples"]) - (int(old[0]) if old else 0)
    _count(ep, by_source)
    _keep_recent(ep)
    ep["start_ms"] = min(ep["start_ms"], iso_to_ms(str(alert["start"])))
    ep["end_ms"] = max(ep["end_ms"], end_ms)
    if alert.get("peak") is not None and (ep.get("peak") is None or alert["peak"] >= ep["peak"]):
        ep.update(peak=alert["peak"], threshold=alert.get("threshold"), threshold_source=alert.get("threshold_source"))
        ep["message"] = alert.get("message")
    if SEVERITY_RANK[str(alert["severity"])] > SEVERITY_RANK[ep["severity"]]:
        ep["severity"] = alert["severity"]
    ep["last_extended_ms"] = max(int(ep["last_extended_ms"]), now_ms)
    ep["interval_ms"] = every_ms


def merge_into(target: Item, other: Item) -> None:
    """Fold ``other`` into ``target`` (a part bridged them); ``other`` stays as a ``merged`` pointer."""
    target["part_count"] = part_count(target) + part_count(other)
    target["parts"].update(other["parts"])
    by_source = _by_source(target)
    for source, samples in _by_source(other).items():
        by_source[source] = by_source.get(source, 0) + samples
    _count(target, by_source)
    _keep_recent(target)
    target["aliases"] = sorted({*target.get("aliases", []), other["sk"], *other.get("aliases", [])})
    target["start_ms"] = min(target["start_ms"], other["start_ms"])
    target["end_ms"] = max(target["end_ms"], other["end_ms"])
    target["peak"] = _max(target.get("peak"), other.get("peak"))
    if SEVERITY_RANK[other["severity"]] > SEVERITY_RANK[target["severity"]]:
        target["severity"] = other["severity"]
    target["notifications"] += other["notifications"]
    if other.get("notified_severity") and not target.get("notified_severity"):
        target["notified_severity"] = other["notified_severity"]
        target["last_notified_ms"] = other["last_notified_ms"]
    if other["state"] == "open":
        target["state"] = "open"
        for stale in ("closed_ms", "expires_at", "resolution"):
            target.pop(stale, None)
    target["last_extended_ms"] = max(target["last_extended_ms"], other["last_extended_ms"])
    other.update(state="merged", merged_into=target["sk"], parts={}, samples=0, samples_by_source={}, part_count=0)
