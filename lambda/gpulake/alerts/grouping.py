"""Notification groups: one node's episode changes batched over time (Alertmanager's ``group_interval``).

Each node has one *group* item in the episode store, beside its node item
(``pk`` = ``node#<node>``, ``sk`` = ``group``): the changes not sent yet
(``pending``), when the group last sent (``last_sent_ms``) and when it last
paged for a critical episode (``last_critical_ms``). See ADR 0005.

- :func:`stage` appends events to the pending batch. The caller saves the group
  in the same conditional write that decided the events (the episode's), so an
  event is recorded exactly once or not at all, and a redelivered object, which
  decides nothing, adds nothing.
- :func:`flush` claims the batch when the group is *due* (:func:`due`): a
  conditional write moves it to ``sending`` under a claim id and records the send
  time, so of two racing Lambdas exactly one sends it. The ingest Lambda flushes
  after each object, the sweeper every 5 minutes (so a node that stops uploading
  still gets its resolutions and the firings that waited).
- :func:`confirm`, once the batch is published, empties ``sending``. A batch whose
  sender failed (SNS refused, the Lambda died) stays there and is claimed again by
  the first flush after :data:`LEASE_MS`: delivery is at least once, never lost.

Example
-------
>>> from gpulake.alerts.state import SqliteEpisodeStore
>>> store = SqliteEpisodeStore(":memory:")
>>> event = Event("firing", {"node": "n1", "episode_id": "e1", "severity": "warning"})
>>> store.save([stage(load(store, "n1"), [event])])
>>> batch = flush(store, "n1", now_ms=0, interval_ms=900_000)
>>> [e.state for e in batch.events]
['firing']
>>> confirm(store, [batch.claim])  # published
>>> store.save([stage(load(store, "n1"), [Event("resolved", event.episode)])])
>>> flush(store, "n1", now_ms=60_000, interval_ms=900_000).events  # sent a minute ago: it waits
[]
>>> [e.state for e in flush(store, "n1", now_ms=900_000, interval_ms=900_000).events]
['resolved']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpulake.alerts.state import EpisodeStore, Item, retry

SK = "group"
#: The group item's ``state`` while it holds changes (the sweeper scans for it) and once it is empty.
PENDING, IDLE = "pending", "idle"
#: A batch this large is sent at once: it bounds the item (DynamoDB's 400 KB) and the SNS message (256 KB);
#: an entry is one episode as published, about 1 KB.
MAX_BATCH = 100
#: Changes of a critical episode that may page before the group interval has passed.
URGENT_STATES = ("firing", "escalated")
#: A claimed batch not confirmed within this long is claimed again: longer than a Lambda can run
#: (15 minutes), so a live sender is never raced; a dead one delays its batch by at most this plus a sweep.
LEASE_MS = 15 * 60_000


@dataclass(frozen=True)
class Event:
    """One notification-worthy change of one episode."""

    state: str  # firing | escalated | repeat | resolved
    episode: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """A batch taken for sending: :func:`confirm` it once published."""

    node: str
    claim_id: str


@dataclass(frozen=True)
class Batch:
    """What one :func:`flush` took: the events to publish, and the claim to confirm (None: nothing taken)."""

    events: list[Event]
    claim: Claim | None = None


def node_pk(node: str) -> str:
    """The partition of a node: its node item (``sk`` = ``node``) and its group (``sk`` = ``group``)."""
    return f"node#{node}"


def find(items: list[Item], node: str) -> Item:
    """The group among a node partition's items (a new, empty one if there is none)."""
    for item in items:
        if item["sk"] == SK:
            return item
    return {"pk": node_pk(node), "sk": SK, "version": 0, "node": node, "state": IDLE, "pending": []}


def load(store: EpisodeStore, node: str) -> Item:
    """The node's group as stored now (one consistent read)."""
    return find(store.load(node_pk(node)), node)


def stage(group: Item, events: list[Event]) -> Item:
    """A copy of ``group`` with ``events`` added to its pending batch (save it with the episodes they came from)."""
    pending = [*group["pending"], *({"state": e.state, "episode": e.episode} for e in events)]
    return {**group, "pending": pending, "state": _state(pending, group.get("sending"))}


def _state(pending: list[Any], sending: list[Any] | None) -> str:
    """PENDING while anything is unsent or unconfirmed (the sweeper scans for it), else IDLE."""
    return PENDING if pending or sending else IDLE


def _urgent(pending: list[dict[str, Any]]) -> bool:
    return any(p["state"] in URGENT_STATES and p["episode"].get("severity") == "critical" for p in pending)


def _elapsed(since: Any, now_ms: int, interval_ms: int) -> bool:
    return since is None or now_ms - int(since) >= interval_ms


def due(group: Item, now_ms: int, interval_ms: int) -> bool:
    """Whether the pending batch goes out now.

    It does when the group has not sent for ``interval_ms`` (a quiet node's
    first change is not delayed: one object is already one evaluation, so
    Alertmanager's ``group_wait`` has nothing to wait for); when it opens or
    escalates a critical episode and the group has not paged for a critical one
    within ``interval_ms`` (a pager learns of a node's first critical at once;
    more criticals on that node wait for the batch); or when it holds
    :data:`MAX_BATCH` changes.
    """
    pending = group["pending"]
    if not pending:
        return False
    return (
        _elapsed(group.get("last_sent_ms"), now_ms, interval_ms)
        or (_urgent(pending) and _elapsed(group.get("last_critical_ms"), now_ms, interval_ms))
        or len(pending) >= MAX_BATCH
    )


def flush(store: EpisodeStore, node: str, now_ms: int, interval_ms: int, known: Item | None = None) -> Batch:
    """Claim the node's pending batch if it is due, or a claimed batch never confirmed (older than
    :data:`LEASE_MS`) with whatever is pending; exactly one caller gets it.

    ``known`` is the group as last read or written by this caller (saves a read); after a
    conflict the group is read again.
    """
    latest = [known]

    def attempt() -> Batch:
        group = latest[0] if latest[0] is not None else load(store, node)
        latest[0] = None
        sending = group.get("sending") or []
        if sending and not _elapsed(group.get("sending_since_ms"), now_ms, LEASE_MS):
            return Batch([])  # a sender has it
        if not sending and not due(group, now_ms, interval_ms):
            return Batch([])
        entries = [*sending, *group["pending"]]
        claim = Claim(node, f"{now_ms}-{group['version']}")
        claimed = {
            **group,
            "pending": [],
            "sending": entries,
            "claim": claim.claim_id,
            "sending_since_ms": now_ms,
            "state": PENDING,
            "last_sent_ms": _later(group.get("last_sent_ms"), now_ms),
        }
        if _urgent(entries):
            claimed["last_critical_ms"] = _later(group.get("last_critical_ms"), now_ms)
        store.save([claimed])
        return Batch([Event(p["state"], p["episode"]) for p in entries], claim)

    return retry(attempt)


def confirm(store: EpisodeStore, claims: list[Claim | None]) -> None:
    """Mark claimed batches as published (a claim taken over after its lease is left to its new sender).

    All in one :meth:`~gpulake.alerts.state.EpisodeStore.batch` (SQLite: one transaction and one read, not
    one per node; each write is still conditional on the version read).
    """
    taken = [claim for claim in claims if claim is not None]
    with store.batch():
        store.prefetch([node_pk(claim.node) for claim in taken])
        for claim in taken:
            _confirm(store, claim)


def _confirm(store: EpisodeStore, claim: Claim) -> None:
    def attempt() -> None:
        group = load(store, claim.node)
        if group.get("claim") != claim.claim_id:
            return
        store.save([{**group, "sending": [], "claim": None, "state": _state(group["pending"], None)}])

    retry(attempt)


def _later(stamp: Any, now_ms: int) -> int:
    """``now_ms``, unless the stored time is later (offline, the clock is data time and objects come in any order)."""
    return max(now_ms, int(stamp if stamp is not None else now_ms))
