"""Alert episodes across objects (Alertmanager semantics, see docs/adr/0005-alert-episodes.md).

``detect()`` finds per-object alerts (*parts*). :func:`apply` folds the parts of
one object into the stored episodes of their *fingerprint* (node, GPU identity
— UUID when known, else ``gpu`` —, kind, metric):

- a part that starts within ``continue_within`` of a stored episode's span (either
  side, so late and out-of-order objects work) extends it: same ``episode_id``,
  min start, max end, samples summed over parts per source and the most of any
  source taken (one GPU seen by dcgm and nvidia-smi is not in the condition twice),
  peak and severity the max;
  a part bridging two episodes merges them into the earlier one (which lists the
  other's id in ``aliases``; per-object alerts keep the id they were first given);
- otherwise the part opens a new episode;
- a part already recorded (same ``alert_id``: the same object again) changes nothing;
  an episode remembers its newest :data:`gpulake.alerts.episode.MAX_PARTS` parts (bounding the item under
  DynamoDB's 400 KB however long it lasts) and keeps running totals of samples and parts.

``continue_within`` is ``continue_factor`` x the node's upload interval: the
median gap between the starts of the node's recent objects of that source
(kept in the node's item), at most ``upload_interval_s`` (see :func:`interval_ms`). Notifications are
decided in the same conditional write that records them, so exactly one writer
sends each: ``firing`` when a warning/critical episode opens, ``escalated`` when
its severity rises, ``repeat`` every ``repeat_interval_s`` (0: never) while it is
extended. :func:`sweep` closes episodes not extended for ``resolve_factor`` x the
interval and reports ``resolved`` for those that were notified.

Every event is staged, in that same write, into its node's notification group
(:mod:`gpulake.alerts.grouping`); what is sent is the group's batch, at most once
per ``group_interval_s`` per node, claimed by whoever is done with the node: the ingest of an object
(:meth:`gpulake.alerts.fold.ObjectFold.flush`, once however many windows the object had) or :func:`sweep`
(:attr:`SweepResult.notifications`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpulake.alerts import grouping
from gpulake.alerts.episode import SEVERITY_RANK, extend, grown, merge_into, new_episode, part_count
from gpulake.alerts.grouping import Event
from gpulake.alerts.state import EpisodeStore, Item, retry
from gpulake.timeutil import iso_to_ms, ms_to_iso

NOTIFIED = ("warning", "critical")
#: Sources whose objects list every GPU of the node (thermal CSVs list only hot ones, GPU-Z one GPU).
FULL_INVENTORY_SOURCES = ("dcgm", "nvidia-smi")
RECENT_OBJECTS = 16
EPISODE_PREFIX = "ep#"


@dataclass(frozen=True)
class LifecycleConfig:
    """Lifecycle settings; the Lambda reads them from ``GPULAKE_*`` env vars (settings.py)."""

    upload_interval_s: float = 300.0
    continue_factor: float = 2.0
    resolve_factor: float = 3.0
    repeat_interval_s: float = 4 * 3600.0
    closed_ttl_days: float = 30.0
    #: A node's changes are sent together at most this often (0: each object's changes at once). 30 minutes:
    #: Alertmanager's defaults wait 5 rule evaluations (group_interval 5m, Prometheus evaluation_interval 1m);
    #: here one evaluation is one 5-minute upload, rounded up to 6 (twice the resolve delay). ADR 0005.
    group_interval_s: float = 1800.0

    @property
    def group_interval_ms(self) -> int:
        return int(self.group_interval_s * 1000)


@dataclass
class ApplyResult:
    episode_of: dict[str, str] = field(default_factory=dict)
    #: The changes this object made (each staged into its node's group).
    events: list[Event] = field(default_factory=list)
    #: Closed episodes whose record changed (a late part), to rewrite under episodes/.
    closed: list[dict[str, Any]] = field(default_factory=list)
    #: Synthetic alerts of the lifecycle itself (gpu_missing).
    extra_alerts: list[dict[str, Any]] = field(default_factory=list)
    #: The node's group as last read or written here (its batch is the caller's to flush: saves that a read).
    group: Item | None = None


def gpu_identity(alert: dict[str, Any]) -> str:
    return str(alert.get("gpu_uuid") or alert["gpu"])


def fingerprint(alert: dict[str, Any]) -> str:
    """The episode identity: a hash of node, GPU identity, kind and metric (the label set)."""
    return _label_hash(f"{alert['node']}\0{gpu_identity(alert)}\0{alert['kind']}\0{alert['metric']}")


@functools.lru_cache(maxsize=4096)
def _label_hash(labels: str) -> str:
    """Hashed once per label set: an object's alerts are a few parts each of a few hundred fingerprints."""
    return EPISODE_PREFIX + hashlib.sha256(labels.encode()).hexdigest()[:24]


def interval_ms(starts: list[int], config: LifecycleConfig) -> int:
    """The upload interval: the median gap between recent objects' starts, at most the configured one.

    The configured ``upload_interval_s`` is the fallback and the ceiling (the
    slowest collector's interval): until the gaps show a faster node, and
    whatever order objects arrive in, episodes are never joined across more
    than ``continue_factor`` x that. The median, not the smallest gap: one short
    object (a collector restart) must not shrink the continue and resolve windows.
    """
    ordered = sorted(set(starts))
    gaps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
    configured = int(config.upload_interval_s * 1000)
    return min(int(statistics.median_low(gaps)), configured) if gaps else configured


def _update_node(
    store: EpisodeStore, node: str, source: str, start_ms: int, seen: Mapping[str, int], config: LifecycleConfig
) -> tuple[int, list[str], Item]:
    """Record the object on the node's item; the source's upload interval, the GPUs that vanished, the group.

    The item also keeps each GPU's last sample time over all sources (``last_seen``): what the
    sweeper reads to tell a cleared episode from one whose data stopped (:func:`resolution`).
    The node's notification group shares the partition, so the same read returns it.
    """
    gpus = set(seen)

    def attempt() -> tuple[int, list[str], Item]:
        items = store.load(grouping.node_pk(node))
        group = grouping.find(items, node)
        pk = grouping.node_pk(node)
        item = next((i for i in items if i["sk"] == "node"), {"pk": pk, "sk": "node", "version": 0, "node": node})
        all_starts = dict(item.get("starts", {}))
        starts = [int(s) for s in all_starts.get(source, [])]
        known = dict(item.get("gpus", {}))
        latest = dict(item.get("latest_start", {}))
        missing = []
        if source in FULL_INVENTORY_SOURCES and gpus:
            before = set(known.get(source, []))
            if start_ms >= int(latest.get(source, 0)):  # only the newest object says what the node has now
                missing = sorted(before - gpus)
            known[source] = sorted(before | gpus)
        last_seen = dict(item.get("last_seen", {}))
        newer = {gpu: int(ms) for gpu, ms in seen.items() if int(ms) > int(last_seen.get(gpu, 0))}
        if start_ms in starts and known == item.get("gpus", {}) and not newer:
            return interval_ms(starts, config), missing, group  # seen before: nothing to write
        all_starts[source] = sorted(set(starts) | {start_ms})[-RECENT_OBJECTS:]
        latest[source] = max(int(latest.get(source, 0)), start_ms)
        item.update(starts=all_starts, gpus=known, latest_start=latest, last_seen=last_seen | newer)
        store.save([item])
        return interval_ms(all_starts[source], config), missing, group

    return retry(attempt)


def pending(ep: dict[str, Any]) -> bool:
    """A threshold-rule episode still shorter than its rule's minimum duration (Alertmanager's ``for``)."""
    need = ep.get("min_duration_s")
    return bool(need) and ep["end_ms"] - ep["start_ms"] + int(ep.get("step_ms") or 0) < need * 1000


def _notify(ep: Item, now_ms: int, config: LifecycleConfig) -> str | None:
    """The notification this change of an open episode sends, recorded on the episode."""
    if ep["state"] != "open" or ep["severity"] not in NOTIFIED or pending(ep):
        return None
    notified = ep.get("notified_severity")
    if notified is None:
        state = "firing"
    elif SEVERITY_RANK[ep["severity"]] > SEVERITY_RANK[notified]:
        state = "escalated"
    elif config.repeat_interval_s > 0 and now_ms - int(ep["last_notified_ms"]) >= config.repeat_interval_s * 1000:
        state = "repeat"
    else:
        return None
    ep.update(notified_severity=ep["severity"], last_notified_ms=now_ms, notifications=ep["notifications"] + 1)
    return state


def _apply_fingerprint(
    store: EpisodeStore,
    pk: str,
    parts: list[dict[str, Any]],
    now_ms: int,
    every_ms: int,
    config: LifecycleConfig,
    known_group: Item | None = None,
) -> tuple[dict[str, str], list[Event], list[dict[str, Any]], Item | None]:
    """``known_group``: the node's group as last read or written by this caller (saves a read per
    fingerprint); after a conflict the group is read again."""
    within = int(every_ms * config.continue_factor)
    latest = [known_group]

    def attempt() -> tuple[dict[str, str], list[Event], list[dict[str, Any]], Item | None]:
        last_group, latest[0] = latest[0], None
        episodes = store.load(pk)
        live = [e for e in episodes if e["state"] != "merged"]
        by_id = {e["sk"]: e for e in episodes}
        changed: dict[str, Item] = {}
        episode_of: dict[str, str] = {}
        for alert in parts:
            aid = str(alert["alert_id"])
            known = next((e for e in live if aid in e["parts"]), None)
            if known is not None:
                episode_of[aid] = known["parts"][aid][1]
                if grown(known, alert):  # a new version of the key with the part longer or hotter
                    extend(known, alert, now_ms, every_ms)
                    changed[known["sk"]] = known
                continue
            start, end = iso_to_ms(str(alert["start"])), iso_to_ms(str(alert["end"]))
            # a resolved episode takes late parts inside its span only: data past its end after it was
            # told resolved is the problem back (a new episode fires), never a silent extension
            near = sorted(
                (
                    e
                    for e in live
                    if start <= e["end_ms"] + within
                    and end >= e["start_ms"] - within
                    and (e["state"] == "open" or end <= e["end_ms"])
                ),
                key=lambda e: (e["start_ms"], e["sk"]),
            )
            if near:
                target = near[0]
                for other in near[1:]:
                    merge_into(target, other)
                    live.remove(other)
                    changed[other["sk"]] = other
            else:
                target = new_episode(pk, alert, now_ms, every_ms)
                live.append(target)
                by_id[target["sk"]] = target
            extend(target, alert, now_ms, every_ms)
            changed[target["sk"]] = target
            episode_of[aid] = target["parts"][aid][1]
        events = []
        for ep in changed.values():
            state = _notify(ep, now_ms, config)
            if state:
                events.append(Event(state, public(ep)))
        # the events go into the node's group in the same conditional write that decided them
        group = None
        if events:
            current = last_group if last_group is not None else grouping.load(store, parts[0]["node"])
            group = grouping.stage(current, events)
        store.save([*changed.values(), *([group] if group else [])])
        closed = [public(e) for e in changed.values() if e["state"] == "closed"]
        return episode_of, events, closed, group

    return retry(attempt)


def apply(
    store: EpisodeStore,
    alerts: list[dict[str, Any]],
    *,
    node: str,
    source: str,
    start_ms: int,
    gpus: Mapping[str, int],
    now_ms: int,
    config: LifecycleConfig,
) -> ApplyResult:
    """Fold one object's (or window's) alerts into the stored episodes, staging what changed into the node's
    group; the caller flushes the group (:func:`grouping.flush`) once it is done with the node.

    ``gpus``: each GPU identity (UUID, else ``gpu``) of the node in the object and its last sample time.
    """
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        grouped[fingerprint(alert)].append(alert)
    store.prefetch([grouping.node_pk(node), *grouped])
    every_ms, missing, group = _update_node(store, node, source, start_ms, gpus, config)
    result = ApplyResult()
    parts = list(alerts)
    for gpu in missing:
        stamp = ms_to_iso(start_ms)
        identity = f"{node}\n{gpu}\ngpu_missing\n{source}\n{start_ms}"
        parts.append(
            {
                "alert_id": hashlib.sha256(identity.encode()).hexdigest()[:24],
                "kind": "gpu_missing",
                "severity": "critical",
                "node": node,
                "gpu": gpu,
                "gpu_uuid": gpu if gpu.startswith("GPU-") else None,
                "metric": "gpus",
                "start": stamp,
                "end": stamp,
                "samples": 1,
                "peak": None,
                "threshold": None,
                "source": source,
                "message": f"gpu missing on {node}: GPU {gpu} is no longer in the {source} telemetry "
                "(fallen off the bus? check nvidia-smi, dmesg for XID 79)",
            }
        )
    result.extra_alerts = parts[len(alerts) :]
    for alert in result.extra_alerts:
        grouped[fingerprint(alert)].append(alert)
    for pk in sorted(grouped):
        episode_of, events, closed, staged = _apply_fingerprint(store, pk, grouped[pk], now_ms, every_ms, config, group)
        result.episode_of.update(episode_of)
        result.events += events
        result.closed += [e for e in closed if not e["pending"]]
        group = staged or group
    result.group = group
    return result


def public(ep: Item) -> dict[str, Any]:
    """The episode as written to episodes/ and sent in notifications (no store bookkeeping)."""
    out = {k: v for k, v in ep.items() if k not in ("pk", "sk", "version", "parts", "part_count", "expires_at")}
    out["episode_id"] = ep["sk"]
    out["fingerprint"] = ep["pk"]
    out["objects"] = part_count(ep)
    out["pending"] = pending(ep)
    out["start"] = ms_to_iso(int(ep["start_ms"]))
    out["end"] = ms_to_iso(int(ep["end_ms"]))
    return out


@dataclass
class SweepResult:
    #: Episodes closed by this sweep (to write under episodes/).
    closed: list[dict[str, Any]] = field(default_factory=list)
    #: ``resolved`` changes this sweep made (each staged into its node's group).
    events: list[Event] = field(default_factory=list)
    #: What to send now: every group batch that was due (resolutions and changes that waited).
    notifications: list[Event] = field(default_factory=list)
    #: The claims to confirm once ``notifications`` are published (gpulake.alerts.grouping.confirm).
    claims: list[grouping.Claim] = field(default_factory=list)


def sweep(store: EpisodeStore, now_ms: int, config: LifecycleConfig) -> SweepResult:
    """Close open episodes not extended for ``resolve_factor`` x their node's interval; flush due groups.

    One pass over the store finds both the open episodes and the groups with
    pending changes, so a node that stopped uploading still gets its resolutions
    and the firings that waited for its group interval.
    """
    result = SweepResult()
    items = list(store.items_in_state("open", grouping.PENDING))
    groups: dict[str, Item | None] = {i["node"]: i for i in items if i["sk"] == grouping.SK}
    for ep in items:
        if ep["pk"].startswith(EPISODE_PREFIX) and ep["state"] == "open" and _stale(ep, now_ms, config):
            closed, event = _close(store, ep, now_ms, config)
            if closed is not None and not closed["pending"]:  # shorter than its rule's minimum: never an alert
                result.closed.append(closed)
            if event is not None:
                result.events.append(event)
                groups[ep["node"]] = None  # staged just now: the scanned copy is stale
    for node in sorted(groups):
        batch = grouping.flush(store, node, now_ms, config.group_interval_ms, known=groups[node])
        result.notifications += batch.events
        result.claims += [batch.claim] if batch.claim else []
    return result


#: Why an episode resolved: later samples of its GPU show the condition gone, or none came after its end.
CLEARED, NO_DATA = "cleared", "no_data"


def resolution(ep: Item, node_items: list[Item]) -> str:
    """``cleared`` when the GPU has samples past the episode's end (none of them continued it), else ``no_data``.

    ``no_data``: the node, its collector or the GPU stopped reporting while the condition held,
    so nothing says it ended. The GPU's last sample time is on the node's item (``last_seen``).
    """
    node = next((i for i in node_items if i["sk"] == "node"), {})
    last = int(node.get("last_seen", {}).get(gpu_identity(ep), 0))
    return CLEARED if last > int(ep["end_ms"]) else NO_DATA


def _stale(ep: Item, now_ms: int, config: LifecycleConfig) -> bool:
    return now_ms - int(ep["last_extended_ms"]) > int(ep["interval_ms"]) * config.resolve_factor


def _close(
    store: EpisodeStore, scanned: Item, now_ms: int, config: LifecycleConfig
) -> tuple[Item | None, Event | None]:
    """Close one episode and stage its ``resolved`` change in the node's group, in one conditional write.

    The scan is eventually consistent: after a conflict the episode is read again and
    left alone if it was extended (or closed) meanwhile.
    """
    latest: list[Item | None] = [scanned]

    def attempt() -> tuple[Item | None, Event | None]:
        ep = latest[0] or next((e for e in store.load(scanned["pk"]) if e["sk"] == scanned["sk"]), None)
        latest[0] = None
        if ep is None or ep["state"] != "open" or not _stale(ep, now_ms, config):
            return None, None
        node_items = store.load(grouping.node_pk(ep["node"]))  # the GPU's last sample, the node's group
        ep = {**ep, "state": "closed", "closed_ms": now_ms, "resolution": resolution(ep, node_items)}
        ep["expires_at"] = now_ms // 1000 + int(config.closed_ttl_days * 86400)
        event = Event("resolved", public(ep)) if ep.get("notifications", 0) > 0 else None
        group = [grouping.stage(grouping.find(node_items, ep["node"]), [event])] if event else []
        store.save([ep, *group])
        return public(ep), event

    return retry(attempt)
