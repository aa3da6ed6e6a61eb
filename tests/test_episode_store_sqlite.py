"""SqliteEpisodeStore batches: versions checked against the batch's own reads and writes, rows written together.

Inside a batch the store is the only writer (``BEGIN IMMEDIATE``), so it keeps what it saved in memory and
writes it before its next read and at commit. These tests hold it to what saves one by one would do.
"""

from __future__ import annotations

import random
import sqlite3
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from gpulake.alerts.lifecycle import LifecycleConfig
from gpulake.alerts.state import Conflict, SqliteEpisodeStore
from gpulake.context import SourceContext
from gpulake.ingest import Lifecycle, ingest
from gpulake.output.sink import LocalSink
from gpulake_cli.simulate_fleet import FleetSpec, simulate

CONFIG = LifecycleConfig(upload_interval_s=300, repeat_interval_s=3600)


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT pk, sk, version, state, doc FROM items ORDER BY pk, sk").fetchall()


class OneByOne(SqliteEpisodeStore):
    """The same store without batches: every save is its own transaction, every load a query."""

    def batch(self) -> AbstractContextManager[None]:
        return nullcontext()


def test_a_batch_checks_versions_against_what_it_read_and_wrote(tmp_path: Path) -> None:
    # GIVEN a stored item and a batch that reads it, saves it twice and adds another
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    store.save([{"pk": "p", "sk": "a", "version": 0, "state": "open", "n": 1}])
    with store.batch():
        (item,) = store.load("p")
        stale = dict(item)
        store.save([{**item, "n": 2}])
        item["version"] += 1  # what the save above bumped in its own dict
        store.save([{**item, "n": 3}, {"pk": "p", "sk": "b", "version": 0, "state": "open"}])
        # THEN a copy read before those saves conflicts, and a save of two items with one stale writes neither
        with pytest.raises(Conflict):
            store.save([{**stale, "n": 4}])
        with pytest.raises(Conflict):
            store.save([{"pk": "p", "sk": "c", "version": 0, "state": "open"}, {**stale, "n": 5}])
        with pytest.raises(Conflict):  # "b" exists now (saved in this batch, not yet in the table)
            store.save([{"pk": "p", "sk": "b", "version": 0, "state": "closed"}])
        # AND a load in the batch sees the batch's own saves; another connection sees none before the commit
        assert [(i["sk"], i.get("n"), i["version"]) for i in store.load("p")] == [("a", 3, 3), ("b", None, 1)]
        assert [r[:3] for r in rows(tmp_path / "s.sqlite")] == [("p", "a", 1)]
    assert [r[:4] for r in rows(tmp_path / "s.sqlite")] == [("p", "a", 3, "open"), ("p", "b", 1, "open")]


def test_a_batch_that_fails_leaves_the_table_as_it_was(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    store.save([{"pk": "p", "sk": "a", "version": 0, "state": "open"}])
    before = rows(tmp_path / "s.sqlite")
    with pytest.raises(RuntimeError), store.batch():
        (item,) = store.load("p")
        store.save([{**item, "state": "closed"}])
        store.load("q")  # a read: the save above is in the table now, inside the open transaction
        store.save([{"pk": "q", "sk": "x", "version": 0, "state": "open"}])  # kept in memory only
        raise RuntimeError("the object failed")
    assert rows(tmp_path / "s.sqlite") == before
    with store.batch():  # and the next batch starts from the table, not from the failed one's memory
        assert [i["state"] for i in store.load("p")] == ["open"] and store.load("q") == []


def test_objects_folded_in_batches_store_what_saves_one_by_one_store(tmp_path: Path) -> None:
    # GIVEN an hour of a node's uploads, redelivered and shuffled, folded as ingest does: once in the store's
    # batches, once with every save its own transaction
    spec = FleetSpec(nodes=1, gpus=2, minutes=60, interval_s=15, seed=5, formats=("dcgm",), upload_minutes=5)
    files = simulate(tmp_path / "raw", spec)
    order = random.Random(7).sample(files * 2, len(files) * 2)
    outputs = {}
    for label, store_type in (("batched", SqliteEpisodeStore), ("one-by-one", OneByOne)):
        out = tmp_path / label
        store = store_type(out / "episodes.sqlite")
        events = []
        for path in order:
            ctx = SourceContext(key=path.name, object_time_ms=0, node="gpu-node-00")
            result = ingest(path.read_bytes(), ctx, LocalSink(out), lifecycle=Lifecycle(store, CONFIG))
            events += [(e.state, e.episode["episode_id"]) for e in result.events + result.notifications]
        alerts = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "alerts").rglob("*.jsonl"))}
        outputs[label] = (rows(out / "episodes.sqlite"), alerts, events)
    # THEN the same items at the same versions, the same alerts files and the same notifications
    assert outputs["batched"] == outputs["one-by-one"]
    assert outputs["batched"][2] and len(outputs["batched"][0]) > 3
