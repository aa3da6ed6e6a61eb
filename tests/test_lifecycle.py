"""Alert episodes across objects: continuation, late/out-of-order objects, redelivery, races, offline process."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from types import SimpleNamespace

from gpulake.alerts import grouping, notify
from gpulake.alerts.lifecycle import LifecycleConfig, apply, fingerprint, interval_ms, pending, public, sweep
from gpulake.alerts.state import SqliteEpisodeStore
from gpulake.context import SourceContext
from gpulake.ingest import Lifecycle, ingest
from gpulake.local import LocalOptions, episode_store, finish, process_file
from gpulake.output.sink import LocalSink
from gpulake.timeutil import ms_to_iso
from gpulake_cli.simulate_fleet import FleetSpec, simulate

T0 = 1_767_225_600_000
MIN = 60_000
CONFIG = LifecycleConfig(upload_interval_s=300, repeat_interval_s=3600)


def part(aid: str, start_min: float, end_min: float, samples: int = 5, severity: str = "warning", peak: float = 90):
    return {
        "alert_id": aid,
        "kind": "thermal_throttle",
        "severity": severity,
        "node": "n1",
        "gpu": "0",
        "gpu_uuid": "GPU-1",
        "metric": "throttle_reasons",
        "start": ms_to_iso(int(T0 + start_min * MIN)),
        "end": ms_to_iso(int(T0 + end_min * MIN)),
        "samples": samples,
        "peak": peak,
        "threshold": None,
    }


def fold(store, alerts, obj_start_min: float, now_min: float, config: LifecycleConfig = CONFIG):
    """One object of node n1 through the lifecycle, its batch (if any) sent as ingest and the handler do; what
    ``apply`` returned, with the ``notifications`` sent."""
    result = apply(
        store,
        alerts,
        node="n1",
        source="dcgm",
        start_ms=int(T0 + obj_start_min * MIN),
        gpus={"GPU-1": int(T0 + now_min * MIN)},
        now_ms=int(T0 + now_min * MIN),
        config=config,
    )
    batch = grouping.flush(store, "n1", int(T0 + now_min * MIN), config.group_interval_ms, known=result.group)
    grouping.confirm(store, [batch.claim])
    return SimpleNamespace(**vars(result), notifications=batch.events)


def episodes(store) -> list[dict]:
    return [e for e in store.load(fingerprint(part("x", 0, 0))) if e["state"] != "merged"]


def test_continuation_extends_and_redelivery_changes_nothing(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    first = fold(store, [part("a", 1, 4.9)], 0, 5)
    assert [e.state for e in first.events] == ["firing"]
    second = fold(store, [part("b", 5, 9.9, peak=95, severity="critical")], 5, 10)
    assert [e.state for e in second.events] == ["escalated"]
    assert first.episode_of["a"] == second.episode_of["b"]
    before = episodes(store)
    again = fold(store, [part("b", 5, 9.9, peak=95, severity="critical")], 5, 11)
    assert again.events == [] and again.episode_of == second.episode_of
    assert episodes(store) == before
    (ep,) = before
    assert (ep["samples"], ep["peak"], ep["severity"]) == (10, 95, "critical")
    assert (ep["start_ms"], ep["end_ms"]) == (T0 + MIN, int(T0 + 9.9 * MIN))


def resolutions_say_cleared_or_no_data(store) -> None:
    """GPU-1's throttle ends before the object's last sample (cleared); GPU-2's at it, then nothing comes."""
    # GIVEN one object (0-10 min) with a throttle on GPU-1 that ends at 6 min and one on GPU-2 that lasts to the
    # object's last sample, and later objects that carry GPU-1 only (GPU-2 fell silent)
    gpu2 = {**part("b", 2, 9.9), "gpu": "1", "gpu_uuid": "GPU-2"}
    seen = {"GPU-1": int(T0 + 9.9 * MIN), "GPU-2": int(T0 + 9.9 * MIN)}
    apply(store, [part("a", 1, 6), gpu2], node="n1", source="dcgm", start_ms=T0, gpus=seen, now_ms=T0 + 10 * MIN,
          config=CONFIG)  # fmt: skip
    later = {"GPU-1": int(T0 + 19.9 * MIN)}
    apply(store, [], node="n1", source="gpuz", start_ms=T0 + 10 * MIN, gpus=later, now_ms=T0 + 20 * MIN, config=CONFIG)
    # WHEN the sweeper resolves both
    swept = sweep(
        store, T0 + 60 * MIN, LifecycleConfig(upload_interval_s=300, repeat_interval_s=3600, group_interval_s=0)
    )
    # THEN each closed episode, its resolved notification line and the message attributes say why
    assert {e["gpu_uuid"]: e["resolution"] for e in swept.closed} == {"GPU-1": "cleared", "GPU-2": "no_data"}
    resolved = [e for e in swept.notifications if e.state == "resolved"]  # with the firings that waited
    assert {e.episode["gpu_uuid"]: e.episode["resolution"] for e in resolved} == {
        "GPU-1": "cleared",
        "GPU-2": "no_data",
    }
    (message,) = notify.messages(swept.notifications)
    assert json.loads(message["MessageAttributes"]["resolution"]["StringValue"]) == ["cleared", "no_data"]
    lines = [line for line in json.loads(message["Message"])["summary"].splitlines() if line.startswith("RESOLVED")]
    assert [line.split(" GPU ")[1].split(":")[0] for line in lines] == ["0", "1"]
    assert "cleared (later samples of the GPU show it gone)" in lines[0]
    assert "no data from the GPU after its end" in lines[1]


def test_resolution_says_whether_the_condition_cleared_or_the_data_stopped(tmp_path: Path) -> None:
    resolutions_say_cleared_or_no_data(SqliteEpisodeStore(tmp_path / "s.sqlite"))


def test_one_gpu_reported_by_two_sources_counts_its_samples_once(tmp_path: Path) -> None:
    # GIVEN one GPU (one UUID) whose throttle dcgm-exporter and nvidia-smi both report, each with 20 samples
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    dcgm, smi = (
        {**part("d", 1, 6, samples=20), "source": "dcgm"},
        {**part("s", 1, 6, samples=20), "source": "nvidia-smi"},
    )
    fold(store, [dcgm], 0, 10)
    fold(store, [smi], 0, 10)
    fold(store, [smi], 0, 10)  # redelivered
    # THEN the episode counts the GPU's samples once (the most any source saw), and keeps each source's count
    (ep,) = episodes(store)
    assert (ep["samples"], ep["part_count"]) == (20, 2)
    assert ep["samples_by_source"] == {"dcgm": 20, "nvidia-smi": 20}
    # AND a later dcgm object that continues it adds to dcgm's count only
    fold(store, [{**part("d2", 10, 14, samples=16), "source": "dcgm"}], 10, 15)
    (ep,) = episodes(store)
    assert (ep["samples"], ep["samples_by_source"]) == (36, {"dcgm": 36, "nvidia-smi": 20})


def test_late_objects_extend_backwards_or_insert(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    for k in range(8):  # objects without alerts every 5 minutes: the node's interval is 5 minutes
        fold(store, [], k * 5, 0)
    fold(store, [part("c", 30, 34)], 30, 35)
    late = fold(store, [part("b", 25, 29.9)], 25, 36)  # within continue_within before it: same episode
    assert late.events == []
    old = fold(store, [part("a", 0, 3)], 0, 37)  # far earlier: its own episode (fires once)
    assert [e.state for e in old.events] == ["firing"]
    spans = sorted((e["start_ms"], e["end_ms"], e["samples"]) for e in episodes(store))
    assert spans == [(T0, T0 + 3 * MIN, 5), (T0 + 25 * MIN, T0 + 34 * MIN, 10)]
    bridge = fold(store, [part("m", 8, 20)], 5, 38)  # a part between both merges them into the earlier
    (merged,) = episodes(store)
    assert merged["sk"] == old.episode_of["a"] == bridge.episode_of["m"] and merged["samples"] == 20


def test_repeat_and_resolve(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    states = []
    for i in range(0, 24):  # two hours of 5-minute objects, repeat every hour
        states += [e.state for e in fold(store, [part(f"p{i}", i * 5, i * 5 + 4.9)], i * 5, i * 5 + 5).events]
    assert states == ["firing", "repeat"]  # at 5 and 65 minutes (the next would be at 125)
    early = sweep(store, T0 + 125 * MIN, CONFIG)
    assert early.closed == [] and early.events == []  # 5 minutes since the last extension: not yet
    swept = sweep(store, T0 + 136 * MIN, CONFIG)
    assert [e.state for e in swept.events] == ["resolved"] and swept.closed[0]["notifications"] == 2


def test_data_that_continues_after_a_resolution_fires_again(tmp_path: Path) -> None:
    # GIVEN an episode notified at 5 minutes, then a collector that stalls: the sweeper resolves it at 21
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    first = fold(store, [part("a", 1, 4.9)], 0, 5)
    swept = sweep(store, T0 + 21 * MIN, CONFIG)
    assert [e.state for e in swept.events] == ["resolved"]
    # WHEN the backlog arrives: the throttle never stopped (5..20 minutes, then on)
    later = [fold(store, [part(f"b{i}", i, i + 4.9)], i, 22 + i) for i in (5, 10, 15, 20)]
    # THEN the operator is told it is firing again (a new episode), not left with a silent "resolved"
    assert [e.state for e in later[0].events] == ["firing"]
    assert later[0].episode_of["b5"] != first.episode_of["a"]
    assert {r.episode_of[f"b{i}"] for r, i in zip(later, (5, 10, 15, 20))} == {later[0].episode_of["b5"]}
    # AND a late part inside the resolved episode's span still joins it, silently
    inside = fold(store, [part("a2", 2, 3)], 2, 40)
    assert inside.episode_of["a2"] == first.episode_of["a"] and inside.events == []


def test_a_part_that_grew_in_a_new_version_of_its_key_extends_its_episode(tmp_path: Path) -> None:
    # GIVEN a GPU-Z log uploaded under one key while it grows: its throttle part keeps its alert id
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    first = fold(store, [part("g", 1, 4.9, samples=5)], 0, 5)
    # WHEN the next version of the key shows the same part longer, hotter and critical
    grown = fold(store, [part("g", 1, 9.9, samples=10, peak=97, severity="critical")], 0, 10)
    # THEN the episode grows with it (end, samples, peak) and escalates, instead of ignoring the part
    (ep,) = episodes(store)
    assert (ep["end_ms"], ep["samples"], ep["peak"]) == (int(T0 + 9.9 * MIN), 10, 97)
    assert [e.state for e in grown.events] == ["escalated"]
    assert grown.episode_of["g"] == first.episode_of["g"]
    # AND the same version again changes nothing
    assert fold(store, [part("g", 1, 9.9, samples=10, peak=97, severity="critical")], 0, 11).events == []


def test_a_long_episode_keeps_its_item_bounded_and_its_totals(tmp_path: Path) -> None:
    # GIVEN two weeks of continuous power capping, one part per 5-minute object, in one episode
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    objects = 14 * 24 * 12
    for i in range(objects):
        fold(store, [part(f"p{i}", i * 5, i * 5 + 4.9, samples=3)], i * 5, i * 5 + 5)
    (ep,) = episodes(store)
    # THEN the item stays small (DynamoDB refuses items over 400 KB), the totals are whole
    assert len(json.dumps(ep)) < 40_000
    assert ep["samples"] == 3 * objects and public(ep)["objects"] == objects
    # AND the newest parts are still recognised when delivered again
    assert fold(store, [part(f"p{objects - 1}", 0, 0)], 0, objects * 5 + 5).episode_of[f"p{objects - 1}"] == ep["sk"]


def test_the_upload_interval_is_not_set_by_one_short_gap() -> None:
    # a collector restart gives one 10-second gap among 5-minute ones
    starts = [0, 300_000, 310_000, 610_000, 910_000, 1_210_000]
    assert interval_ms(starts, CONFIG) == 300_000
    assert interval_ms([0, 60_000, 120_000], CONFIG) == 60_000  # a faster node still shows its own interval
    assert interval_ms([0], CONFIG) == 300_000


def test_rule_episodes_shorter_than_their_minimum_are_not_written_as_closed(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    short = {**part("r", 1, 1.5), "kind": "rule", "min_duration_s": 600, "step_ms": 60_000}
    fold(store, [short], 0, 5)
    swept = sweep(store, T0 + 30 * MIN, CONFIG)
    assert swept.closed == [] and swept.events == []


def test_racing_handlers_lose_no_extension(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    fold(store, [part("p0", 0, 4.9, samples=1)], 0, 5)
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        fold(SqliteEpisodeStore(tmp_path / "s.sqlite"), [part(f"p{i}", 5 + i * 0.5, 6 + i * 0.5, samples=1)], 5, 10)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (ep,) = episodes(store)
    assert ep["samples"] == 9 and len(ep["parts"]) == 9 and ep["notifications"] == 1


def _episode_set(out: Path) -> list[tuple]:
    store = episode_store(out)
    rows = []
    for item in [*store.open_items(), *_closed(out)]:
        if pending(item):
            continue  # shorter than its rule's minimum duration: not an alert
        rows.append((item["node"], item["gpu"], item["kind"], item["metric"], item["start_ms"], item["end_ms"]))
        rows[-1] += (item["samples"], item["peak"], item["severity"])
    return sorted(rows)


def _closed(out: Path) -> list[dict]:
    return (
        [json.loads(p.read_text()) for p in sorted((out / "episodes").rglob("*.json"))]
        if (out / "episodes").exists()
        else []
    )


def test_process_over_consecutive_files_equals_the_concatenated_file(tmp_path: Path) -> None:
    spec = FleetSpec(nodes=1, gpus=2, minutes=60, interval_s=15, seed=5, formats=("dcgm",), upload_minutes=5)
    files = simulate(tmp_path / "split", spec)
    assert len(files) == 12
    whole = tmp_path / "whole.prom"
    whole.write_bytes(b"".join(p.read_bytes() for p in files))
    options = LocalOptions(node="gpu-node-00")
    for path in files:
        process_file(path, tmp_path / "a", options)
    finish(tmp_path / "a", options)
    process_file(whole, tmp_path / "b", options)
    finish(tmp_path / "b", options)
    split, concatenated = _episode_set(tmp_path / "a"), _episode_set(tmp_path / "b")
    assert split == concatenated and len(split) >= 3
    # every per-object alert names its episode
    records = [json.loads(x) for p in (tmp_path / "a" / "alerts").rglob("*.jsonl") for x in p.read_text().splitlines()]
    assert records and all(r["episode_id"] for r in records)


def test_redelivered_and_shuffled_objects_give_the_same_episodes_and_bytes(tmp_path: Path) -> None:
    spec = FleetSpec(nodes=1, gpus=2, minutes=60, interval_s=15, seed=5, formats=("dcgm",), upload_minutes=5)
    files = simulate(tmp_path / "raw", spec)
    outputs = {}
    for label, order in (("ordered", files), ("shuffled", random.Random(3).sample(files * 3, len(files) * 3))):
        out = tmp_path / label
        store = episode_store(out)
        events = []
        snapshot = {}
        for path in order:
            data = path.read_bytes()
            ctx = SourceContext(key=path.name, object_time_ms=0, node="gpu-node-00")
            result = ingest(data, ctx, LocalSink(out), lifecycle=Lifecycle(store, CONFIG))
            events += result.events
            for key in result.keys:
                if key.startswith("alerts/"):
                    body = (out / key).read_bytes()
                    assert snapshot.setdefault(key, body) == body  # byte-identical on redelivery
        outputs[label] = (_episode_set(out), sum(e.state == "firing" for e in events))
    assert outputs["ordered"] == outputs["shuffled"]


def test_a_gpu_that_vanishes_raises_gpu_missing_once(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")

    def obj(start_min: float, gpus: set[str], source: str = "dcgm"):
        return apply(
            store,
            [],
            node="n1",
            source=source,
            start_ms=int(T0 + start_min * MIN),
            gpus=dict.fromkeys(gpus, int(T0 + start_min * MIN)),
            now_ms=int(T0 + start_min * MIN),
            config=CONFIG,
        )

    assert obj(0, {"GPU-1", "GPU-2"}).events == []
    assert obj(5, {"GPU-1"}, source="gpuz").events == []  # GPU-Z logs one GPU: not an inventory
    missing = obj(5, {"GPU-1"})
    (event,) = missing.events
    assert (event.state, event.episode["kind"], event.episode["gpu"], event.episode["severity"]) == (
        "firing",
        "gpu_missing",
        "GPU-2",
        "critical",
    )
    assert obj(10, {"GPU-1"}).events == []  # still missing: the same episode, no new page
    assert obj(5, {"GPU-1"}).events == []  # redelivery


def test_gpu_missing_lands_in_the_objects_alerts_file(tmp_path: Path) -> None:
    # GIVEN two dcgm scrapes of one node, the second without GPU-b (fallen off the bus)
    def scrape(name: str, minute: int, uuids: list[str]) -> Path:
        ms = int(T0 + minute * MIN)
        lines = [
            f'DCGM_FI_DEV_GPU_TEMP{{gpu="{i}",UUID="{u}",Hostname="n1",modelName="NVIDIA H100"}} 40 {ms}'
            for i, u in enumerate(uuids)
        ]
        path = tmp_path / "raw" / "n1" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    out = tmp_path / "out"
    options = LocalOptions(format_name="dcgm", node="n1")
    process_file(scrape("a.prom", 0, ["GPU-a", "GPU-b"]), out, options)
    second = process_file(scrape("b.prom", 5, ["GPU-a"]), out, options)
    # THEN the second object's alerts JSONL (what the loaders and dashboards read) holds the gpu_missing
    # alert with its episode, as the notification does
    (event,) = [e for e in second.events if e.episode["kind"] == "gpu_missing"]
    records = [json.loads(line) for f in (out / "alerts").rglob("*.jsonl") for line in f.read_text().splitlines()]
    (missing,) = [r for r in records if r["kind"] == "gpu_missing"]
    assert (missing["gpu"], missing["severity"], missing["episode_id"]) == (
        "GPU-b",
        "critical",
        event.episode["episode_id"],
    )


def test_an_objects_fingerprints_are_read_in_one_query_inside_a_batch(tmp_path: Path) -> None:
    # GIVEN one object's alerts on six GPUs of a node (six fingerprints), folded in the store's batch as ingest does
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    alerts = [{**part(f"p{g}", 0, 4), "gpu": str(g), "gpu_uuid": f"GPU-{g}"} for g in range(6)]
    with store.batch():
        gpus = {f"GPU-{g}": T0 for g in range(6)}
        result = apply(store, alerts, node="n1", source="dcgm", start_ms=T0, gpus=gpus, now_ms=T0, config=CONFIG)
        grouping.flush(store, "n1", T0, CONFIG.group_interval_ms, known=result.group)
    # THEN the node and the six fingerprints took one read (not one per fingerprint and one more per group change)
    assert store.reads == 1
    assert len(result.episode_of) == 6 and [e.state for e in result.events] == ["firing"] * 6
    assert len(grouping.load(store, "n1")["sending"]) == 6


def test_a_partition_read_ahead_answers_one_load_and_never_after_a_write(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    store.save([{"pk": "a", "sk": "1", "version": 0, "state": "open"}])
    store.prefetch(["a"])  # outside a batch another writer may come: nothing is read ahead
    assert store.reads == 0
    with store.batch():
        store.prefetch(["a", "b"])
        (item,) = store.load("a")
        assert store.load("b") == [] and store.reads == 1
        store.load("a")  # a second load reads the table again
        assert store.reads == 2
        store.prefetch(["a"])
        store.save([{**item, "state": "closed"}])
        assert [i["state"] for i in store.load("a")] == ["closed"] and store.reads == 4
