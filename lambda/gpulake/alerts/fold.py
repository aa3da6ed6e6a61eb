"""One object's alerts folded into the stored episodes, window by window (ADR 0008).

Each window is folded as the upload it would have been (:func:`gpulake.alerts.lifecycle.apply`, node by node),
and the nodes' notification groups are flushed once, when the object is done: a window's claim would hold the
rest of the object's changes back for the claim's lease (:data:`gpulake.alerts.grouping.LEASE_MS`). A fold
outlives a retry of its object in another text encoding, so the changes an abandoned attempt stored are
still reported and sent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from gpulake import schema
from gpulake.alerts import grouping
from gpulake.alerts.grouping import Claim, Event
from gpulake.alerts.lifecycle import LifecycleConfig, apply
from gpulake.alerts.state import EpisodeStore, Item
from gpulake.output.episodes import write_episode
from gpulake.output.sink import Sink


@dataclass(frozen=True)
class Lifecycle:
    """Episode state across objects: a store, its settings and the clock (None: the object's data time)."""

    store: EpisodeStore
    config: LifecycleConfig = field(default_factory=LifecycleConfig)
    now_ms: int | None = None


class ObjectFold:
    """The episodes one object changes: :meth:`apply` each window's alerts, then :meth:`flush` once."""

    def __init__(self, lifecycle: Lifecycle, sink: Sink) -> None:
        self.lifecycle = lifecycle
        self._sink = sink
        #: The changes the object made (each staged into its node's group), over every attempt.
        self.events: list[Event] = []
        #: Per node folded, the clock its group is flushed at and the group as this fold last saw it.
        self._nodes: dict[str, tuple[int, Item | None]] = {}

    def apply(self, alerts: list[dict[str, object]], table: pa.Table, source: str) -> None:
        """Fold a window's alerts, node by node, into the stored episodes; each alert gains its ``episode_id``,
        and the window's ``gpu_missing`` alerts join ``alerts``. Closed episodes that changed are rewritten."""
        lifecycle = self.lifecycle
        times = table.column("time").cast(pa.int64()).to_numpy()
        node_names, nodes = schema.codes(table.column("node"))
        gpu_names, gpus = schema.gpu_identity_codes(table)
        by_node: dict[str, list[dict[str, object]]] = defaultdict(list)
        for alert in alerts:
            by_node[str(alert["node"])].append(alert)
        for code, node in sorted(enumerate(node_names), key=lambda named: named[1]):
            rows = np.flatnonzero(nodes == code)
            node_times = times[rows]
            now = lifecycle.now_ms if lifecycle.now_ms is not None else int(node_times.max())
            applied = apply(
                lifecycle.store,
                by_node[node],
                node=node,
                source=source,
                start_ms=int(node_times.min()),
                gpus=_last_sample(gpus[rows], node_times, gpu_names),
                now_ms=now,
                config=lifecycle.config,
            )
            alerts += applied.extra_alerts  # gpu_missing: a fact of this object, like the rest
            for alert in [*by_node[node], *applied.extra_alerts]:
                alert["episode_id"] = applied.episode_of.get(str(alert["alert_id"]))
            self.events += applied.events
            self._nodes[node] = (max(self._nodes.get(node, (now, None))[0], now), applied.group)
            for episode in applied.closed:
                write_episode(self._sink, episode)

    def flush(self) -> tuple[list[Event], list[Claim]]:
        """Claim each folded node's batch if it is due: what to send now, and the claims to confirm once sent."""
        store, interval = self.lifecycle.store, self.lifecycle.config.group_interval_ms
        notifications: list[Event] = []
        claims: list[Claim] = []
        with store.batch():
            for node, (now, group) in sorted(self._nodes.items()):
                batch = grouping.flush(store, node, now, interval, known=group)
                notifications += batch.events
                claims += [batch.claim] if batch.claim else []
        return notifications, claims


def _last_sample(gpus: np.ndarray, times: np.ndarray, names: list[str]) -> dict[str, int]:
    """Each GPU's last sample time (ms), GPUs given as indices into ``names``: what tells a cleared
    episode from one whose data stopped."""
    last = np.full(len(names), np.iinfo(np.int64).min)
    np.maximum.at(last, gpus, times)
    return {names[gpu]: int(last[gpu]) for gpu in np.unique(gpus).tolist()}
