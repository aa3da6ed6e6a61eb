"""Gauges and counters across object boundaries: what each GPU's previous object ended with.

``DCGM_FI_DEV_XID_ERRORS`` is a gauge of the *last* XID: it keeps its value until the next XID, so
every upload after one starts with it. ``DCGM_FI_DEV_ECC_DBE_VOL_TOTAL`` (and nvidia-smi's
``ecc.errors.uncorrected.volatile.total``) is a counter: a rise between the last sample of one
object and the first of the next happens between files. Looked at one object at a time, the first
re-fires a stale XID at every upload and the second misses the rise. So, per node, one store item
(``pk`` = ``carry#<node>``, ``sk`` = ``gpus``) keeps, per GPU identity (UUID when known, else
``gpu``), the recent objects' ``[start_ms, end_ms, last XID gauge, last DBE count, sample step]``
(:data:`RECENT_OBJECTS`, newest by start). :func:`exchange` reads what came before this object
(:class:`Carried`; ``detect`` starts its gauge and counter there) and records this object's end, in
one conditional write retried on conflict, like the episodes:

- the XID gauge: the last value of the latest earlier object, however long ago (a gauge that did not
  change over an outage is still the old XID);
- the DBE counter: the last value of the object just before, only when it ends within
  :data:`GAP_FACTOR` sample steps of this start (contiguous). A rise inside an object that has not
  arrived yet is that object's to report when it comes; a counter carried across the hole would
  report it a second time.

The same object again (redelivery, or a new version of the key with the same start) finds the
objects before it unchanged, so it gets the same :class:`Carried` and its alerts stay the same.
Limits: an object that arrives before its predecessor has no contiguous counter (a rise exactly at
that boundary is missed) and compares its gauge with an older object (an XID of the missing object is
reported at this start too, in the same episode when within ``continue_within``); objects of a single
sample (no step) are never contiguous, so boundary rises between them are missed as before.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from gpulake.alerts import series
from gpulake.alerts.rules import ECC_DBE_KEYS
from gpulake.alerts.state import EpisodeStore, Item, retry
from gpulake.formats.dcgm_fields import XID_NAMES
from gpulake.schema import codes, gpu_identity_codes

#: Objects kept per GPU (about 50 bytes each; 8 GPUs x 4 is about 2 KB: one read unit, 2-3 write units).
RECENT_OBJECTS = 4
#: Objects are contiguous when the gap between them is at most this many sample steps (rules' gap_factor).
GAP_FACTOR = 3.0

Key = tuple[str, str]


class Carried(NamedTuple):
    """What a GPU's earlier objects ended with (None: unknown)."""

    xid: float | None
    dbe: float | None


class End(NamedTuple):
    """What one object shows of one GPU: its time span, the last known gauge and counter, its sample step."""

    start_ms: int
    end_ms: int
    xid: float | None
    dbe: float | None
    step_ms: int


def _last_known(values: np.ndarray) -> float | None:
    known = values[np.isfinite(values)]
    return float(known[-1]) if known.size else None


def ends(table: pa.Table, extra: series.ExtraLookup | None = None) -> dict[Key, End]:
    """Per (node, GPU identity) with an XID gauge or DBE counter, the object's :class:`End`.

    ``extra``: the rows' ``extra`` values when the caller has them (detection reads the same ones).
    """
    extra = extra if extra is not None else series.ExtraIndex(table.column("extra"))
    xid, dbe = extra.values(XID_NAMES), extra.values(ECC_DBE_KEYS)
    known = np.isfinite(xid) | np.isfinite(dbe)
    if not known.any():
        return {}
    nodes, node = codes(table.column("node"))
    identities, identity = gpu_identity_codes(table)
    time = table.column("time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    group = node.astype(np.int64) * len(identities) + identity  # one integer per (node, identity)
    order = np.lexsort((time, group))
    out = {}
    for rows in np.split(order, np.flatnonzero(np.diff(group[order])) + 1):
        if not known[rows].any():
            continue
        n, i = nodes[node[rows[0]]], identities[identity[rows[0]]]
        steps = np.diff(time[rows])
        step = int(np.median(steps[steps > 0])) if (steps > 0).any() else 0
        out[(n, i)] = End(int(time[rows[0]]), int(time[rows[-1]]), _last_known(xid[rows]), _last_known(dbe[rows]), step)
    return out


def _before(history: list[list], end: End) -> Carried:
    """The gauge of the latest earlier object, and the counter of the contiguous one before ``end``."""
    earlier = sorted((h for h in history if h[0] < end.start_ms), key=lambda h: h[0])
    xid = next((h[2] for h in reversed(earlier) if h[2] is not None), None)
    if not earlier:
        return Carried(xid, None)
    _, prev_end, _, prev_dbe, prev_step = earlier[-1]
    contiguous = end.start_ms - prev_end <= GAP_FACTOR * max(end.step_ms, prev_step, 1000)
    return Carried(xid, prev_dbe if contiguous else None)


def read(store: EpisodeStore, object_ends: dict[Key, End]) -> dict[Key, Carried]:
    """Per GPU, what its earlier objects ended with, recording nothing (:func:`exchange` records)."""
    carried: dict[Key, Carried] = {}
    for node in sorted({n for n, _ in object_ends}):
        items = store.load(f"carry#{node}")
        gpus = items[0].get("gpus", {}) if items else {}
        for (n, gpu), end in sorted(object_ends.items()):
            if n == node:
                carried[(n, gpu)] = _before([list(h) for h in gpus.get(gpu, [])], end)
    return carried


class AcrossWindows:
    """Gauges and counters across the windows of one object (ADR 0008).

    A GPU's first window gets what its earlier objects ended with (:func:`read`; nothing without a store),
    each later window what the window before ended with; the object's ends are recorded once, when it is
    done (:meth:`record`), as one upload's are: a rerun after a kill, or a new version of the key, reads
    what the first run read.
    """

    def __init__(self, store: EpisodeStore | None) -> None:
        self.store = store
        #: Per GPU, the object's end so far: its first start, its last end, gauge and counter.
        self.ends: dict[Key, End] = {}

    def carried(self, window_ends: dict[Key, End]) -> dict[Key, Carried]:
        """What each GPU of the next window carries in; the window's ends join the object's."""
        first = {key: end for key, end in window_ends.items() if key not in self.ends}
        carried = read(self.store, first) if first and self.store is not None else {}
        for key, end in window_ends.items():
            before = self.ends.get(key)
            if before is not None:
                carried[key] = Carried(before.xid, before.dbe)
                end = End(
                    before.start_ms,
                    end.end_ms,
                    before.xid if end.xid is None else end.xid,
                    before.dbe if end.dbe is None else end.dbe,
                    before.step_ms or end.step_ms,
                )
            self.ends[key] = end
        return carried

    def record(self) -> None:
        """Record the object's ends in the store, if there is one (one conditional write per node)."""
        if self.ends and self.store is not None:
            with self.store.batch():
                exchange(self.store, self.ends)


def exchange(store: EpisodeStore, object_ends: dict[Key, End]) -> dict[Key, Carried]:
    """Per GPU, what its earlier objects ended with; records this object's ends (one item per node)."""
    carried: dict[Key, Carried] = {}
    for node in sorted({n for n, _ in object_ends}):
        mine = {gpu: end for (n, gpu), end in object_ends.items() if n == node}

        def attempt(node: str = node, mine: dict[str, End] = mine) -> dict[Key, Carried]:
            items = store.load(f"carry#{node}")
            item: Item = items[0] if items else {"pk": f"carry#{node}", "sk": "gpus", "version": 0, "node": node}
            gpus = dict(item.get("gpus", {}))
            out = {}
            for gpu, end in sorted(mine.items()):
                history = [list(h) for h in gpus.get(gpu, [])]
                out[(node, gpu)] = _before(history, end)
                entry = list(end)
                if entry not in history:
                    kept = [h for h in history if h[0] != end.start_ms] + [entry]
                    gpus[gpu] = sorted(kept, key=lambda h: h[0])[-RECENT_OBJECTS:]
            if gpus != item.get("gpus", {}):
                item["gpus"] = gpus
                store.save([item])
            return out

        carried.update(retry(attempt))
    return carried
