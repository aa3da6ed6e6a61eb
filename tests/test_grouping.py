"""Notification groups over time: a node's changes within one group interval go out as one message.

The clock is minutes after T0; objects arrive every 5 minutes and the sweeper runs every 5 minutes,
as in the cloud. ``group_interval_s`` is 15 minutes.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from gpulake.alerts import grouping, notify
from gpulake.alerts.grouping import Event
from gpulake.alerts.lifecycle import LifecycleConfig, sweep
from gpulake.alerts.state import EpisodeStore, SqliteEpisodeStore
from gpulake.errors import ConfigError
from tests.test_lifecycle import MIN, T0, fold, part

CONFIG = LifecycleConfig(upload_interval_s=300, repeat_interval_s=3600, group_interval_s=900)


def on_gpu(gpu: int, aid: str, start_min: float, end_min: float, severity: str = "warning") -> dict[str, Any]:
    return {**part(aid, start_min, end_min, severity=severity), "gpu": str(gpu), "gpu_uuid": f"GPU-{gpu}"}


def obj(store: EpisodeStore, alerts: list[dict[str, Any]], start_min: float, config: LifecycleConfig = CONFIG):
    """One 5-minute object of node n1 starting at ``start_min``, processed when it ends."""
    return fold(store, alerts, start_min, start_min + 5, config)


def sent(events: list[Event]) -> list[tuple[str, str]]:
    return sorted((e.state, e.episode["gpu"]) for e in events)


def test_changes_within_one_interval_are_one_message(tmp_path: Path) -> None:
    # GIVEN a quiet node whose first episode (GPU 1) is sent at once
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    assert sent(obj(store, [on_gpu(1, "a", 1, 4.9)], 0).notifications) == [("firing", "1")]
    # WHEN two more GPUs fire in the next uploads and the sweeper runs every 5 minutes
    for start, alerts in ((5, [on_gpu(2, "b", 6, 9.9)]), (10, [on_gpu(3, "c", 11, 14.9)])):
        result = obj(store, alerts, start)
        assert [e.state for e in result.events] == ["firing"] and result.notifications == []
        assert sweep(store, int(T0 + (start + 5) * MIN), CONFIG).notifications == []
    again = obj(store, [on_gpu(3, "c", 11, 14.9)], 10)  # the same object delivered again
    assert again.events == [] and again.notifications == []
    # THEN when the interval has passed, the sweeper sends both firings and GPU 1's resolution together
    swept = sweep(store, int(T0 + 21 * MIN), CONFIG)
    assert [e.state for e in swept.events] == ["resolved"]
    assert sent(swept.notifications) == [("firing", "2"), ("firing", "3"), ("resolved", "1")]
    (message,) = notify.messages(swept.notifications)
    assert json.loads(message["MessageAttributes"]["state"]["StringValue"]) == ["firing", "resolved"]
    assert message["Subject"] == "[FIRING] gpulake n1: thermal_throttle"
    assert [e["state"] for e in json.loads(message["Message"])["episodes"]] == ["firing", "firing", "resolved"]
    assert grouping.load(store, "n1")["pending"] == []
    # AND GPUs 2 and 3 resolve together in the next message, after which nothing is left to send
    later = sweep(store, int(T0 + 40 * MIN), CONFIG).notifications
    assert sent(later) == [("resolved", "2"), ("resolved", "3")]
    assert sweep(store, int(T0 + 60 * MIN), CONFIG).notifications == []


def test_a_nodes_first_critical_does_not_wait_and_takes_what_is_pending(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    obj(store, [on_gpu(1, "a", 1, 4.9)], 0)
    assert obj(store, [on_gpu(2, "b", 6, 9.9)], 5).notifications == []  # a warning waits
    result = obj(store, [on_gpu(3, "c", 11, 14.9, severity="critical")], 10)
    assert sent(result.notifications) == [("firing", "2"), ("firing", "3")]
    (message,) = notify.messages(result.notifications)
    assert message["MessageAttributes"]["severity"]["StringValue"] == "critical"
    # a second critical on the same node within the interval waits for the batch: the pager knows already
    assert obj(store, [on_gpu(4, "d", 16, 19.9, severity="critical")], 15).notifications == []
    later = sweep(store, int(T0 + 30 * MIN), CONFIG).notifications  # with what resolved meanwhile
    assert sent(later) == [("firing", "4"), ("resolved", "1"), ("resolved", "2")]


def test_without_a_group_interval_each_object_sends_its_own_changes(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    config = LifecycleConfig(upload_interval_s=300, group_interval_s=0)
    assert sent(obj(store, [on_gpu(1, "a", 1, 4.9)], 0, config).notifications) == [("firing", "1")]
    assert sent(obj(store, [on_gpu(2, "b", 6, 9.9)], 5, config).notifications) == [("firing", "2")]


def test_a_batch_over_the_limit_is_split_into_messages() -> None:
    events = [Event("firing", {**on_gpu(i, f"x{i}", 0, 1), "episode_id": f"e{i}"}) for i in range(250)]
    sizes = [len(json.loads(m["Message"])["episodes"]) for m in notify.messages(events)]
    assert sizes == [grouping.MAX_BATCH, grouping.MAX_BATCH, 50]


def _together(*calls: Any) -> list[list[Event]]:
    """Start every call at once (threads at a barrier); what each one was given to send."""
    barrier = threading.Barrier(len(calls))
    batches: list[list[Event]] = []
    errors: list[BaseException] = []

    def run(call: Any) -> None:
        barrier.wait()
        try:
            batches.append(call())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return batches


def race_on_one_group(make_store: Any) -> None:
    """Handlers and sweepers racing on one node's group: every change is sent once, by one caller."""
    store = make_store()
    # GIVEN eight handlers opening eight episodes of one quiet node at once, while two sweepers run
    handlers = [lambda g=g: obj(make_store(), [on_gpu(g, f"p{g}", 1, 4.9)], 0).notifications for g in range(1, 9)]
    sweepers = [lambda: sweep(make_store(), int(T0 + 5 * MIN), CONFIG).notifications] * 2
    first = _together(*handlers, *sweepers)
    # THEN exactly one of them sent (the node was quiet); what the others staged waits for the interval
    assert sum(1 for batch in first if batch) == 1
    # GIVEN one more change, then four callers that all read the group before any of them flushes
    obj(store, [on_gpu(9, "p9", 6, 9.9)], 5)
    stale = grouping.load(store, "n1")
    assert stale["pending"]
    now = int(T0 + 20 * MIN)
    flushers = [lambda: grouping.flush(make_store(), "n1", now, CONFIG.group_interval_ms, known=stale)] * 4
    second = _together(*flushers, lambda: sweep(make_store(), now, CONFIG).notifications)
    # THEN one of them sends the batch, and over both rounds no change is lost or sent twice
    assert sum(1 for batch in second if batch) == 1
    everything = [e for batch in first + second for e in batch]
    assert sent(everything) == sorted(("firing", str(g)) for g in range(1, 10))
    assert grouping.load(store, "n1")["pending"] == []


def test_racing_handlers_and_sweepers_on_one_group_lose_nothing_and_send_once(tmp_path: Path) -> None:
    race_on_one_group(lambda: SqliteEpisodeStore(tmp_path / "s.sqlite"))


def test_a_negative_group_interval_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpulake import settings

    monkeypatch.setenv("GPULAKE_PROCESSED_BUCKET", "b")
    monkeypatch.setenv("GPULAKE_GROUP_INTERVAL_S", "-1")
    with pytest.raises(ConfigError, match="GPULAKE_GROUP_INTERVAL_S=-1 must be 0 or more"):
        settings.from_env()
    monkeypatch.setenv("GPULAKE_GROUP_INTERVAL_S", "600")
    assert settings.from_env().lifecycle.group_interval_s == 600
