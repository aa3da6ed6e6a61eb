"""The last-XID gauge and the DBE counter across consecutive objects of one GPU (gpulake.alerts.carryover)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gpulake import formats, schema
from gpulake.alerts import carryover
from gpulake.alerts.lifecycle import fingerprint
from gpulake.alerts.state import DynamoEpisodeStore, EpisodeStore, SqliteEpisodeStore
from gpulake.context import SourceContext
from gpulake.ingest import IngestResult, Lifecycle, ingest
from gpulake.output.sink import LocalSink
from tests.e2e.test_episode_store_moto import TABLE, ddb  # noqa: F401  (the moto table fixture)
from tests.test_lifecycle import CONFIG, MIN, T0

STEP = 15_000
LABELS = 'gpu="0",UUID="GPU-1",modelName="NVIDIA H100 80GB HBM3",Hostname="n1"'


def scrape(start_ms: int, xid: list[int], dbe: list[int]) -> bytes:
    """A dcgm-exporter object: one scrape every 15 s with the last-XID gauge and the DBE counter."""
    blocks = []
    for i, (x, d) in enumerate(zip(xid, dbe)):
        blocks.append(
            f"# gpulake-scrape {start_ms + i * STEP}\n"
            f"DCGM_FI_DEV_GPU_TEMP{{{LABELS}}} 50\n"
            f"DCGM_FI_DEV_XID_ERRORS{{{LABELS}}} {x}\n"
            f"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{LABELS}}} {d}\n"
        )
    return "".join(blocks).encode()


def put(out: Path, store: EpisodeStore, name: str, data: bytes) -> IngestResult:
    ctx = SourceContext(key=f"n1/{name}.prom", object_time_ms=0, node="n1")
    return ingest(data, ctx, LocalSink(out), lifecycle=Lifecycle(store, CONFIG))


def live(store: EpisodeStore, kind: str, metric: str) -> list[dict]:
    pk = fingerprint({"node": "n1", "gpu_uuid": "GPU-1", "gpu": "0", "kind": kind, "metric": metric})
    return [e for e in store.load(pk) if e["state"] != "merged"]


@pytest.mark.parametrize("gap_min", [0, 30], ids=["consecutive", "after-a-30-minute-outage"])
def test_a_stale_xid_gauge_is_one_episode_across_objects(tmp_path: Path, gap_min: int) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    # GIVEN XID 79 appears half-way through the first 5-minute object ...
    first = put(tmp_path, store, "a", scrape(T0, [0] * 10 + [79] * 10, [0] * 20))
    # ... and the gauge still says 79 in the next object of the same GPU
    second = put(tmp_path, store, "b", scrape(T0 + (5 + gap_min) * MIN, [79] * 20, [0] * 20))
    # THEN only the first object has an XID alert, there is one xid episode and one firing message
    assert [a["metric"] for a in first.alerts] == ["xid:79"]
    assert second.alerts == [] and second.events == []
    (episode,) = live(store, "xid", "xid:79")
    assert episode["samples"] == 1 and [e.state for e in first.events] == ["firing"]


def test_a_new_xid_after_a_carried_one_still_fires(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    put(tmp_path, store, "a", scrape(T0, [0] * 10 + [79] * 10, [0] * 20))
    second = put(tmp_path, store, "b", scrape(T0 + 5 * MIN, [79] * 5 + [48] * 15, [0] * 20))
    assert [a["metric"] for a in second.alerts] == ["xid:48"]


def test_a_dbe_rise_at_the_file_boundary_is_detected(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    # GIVEN the DBE counter is 0 through the first object and 1 from the first sample of the next
    first = put(tmp_path, store, "a", scrape(T0, [0] * 20, [0] * 20))
    second = put(tmp_path, store, "b", scrape(T0 + 5 * MIN, [0] * 20, [1] * 20))
    # THEN the rise is one ecc_dbe alert at the second object's first sample
    assert first.alerts == []
    (dbe,) = second.alerts
    assert (dbe["kind"], dbe["start"], dbe["samples"], dbe["severity"]) == (
        "ecc_dbe",
        "2026-01-01T00:05:00.000Z",
        1,
        "critical",
    )
    assert [e.state for e in second.events] == ["firing"]
    # a third object that stays at 1 is not a new rise
    assert put(tmp_path, store, "c", scrape(T0 + 10 * MIN, [0] * 20, [1] * 20)).alerts == []


def test_a_counter_is_not_carried_across_a_hole(tmp_path: Path) -> None:
    # an object missing in between (it may still arrive, and report its own rise): no counter to compare with
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    put(tmp_path, store, "a", scrape(T0, [0] * 20, [0] * 20))
    assert put(tmp_path, store, "c", scrape(T0 + 10 * MIN, [0] * 20, [1] * 20)).alerts == []


def test_the_same_object_again_gets_the_same_carried_values_and_writes_nothing(tmp_path: Path) -> None:
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    put(tmp_path, store, "a", scrape(T0, [0] * 10 + [79] * 10, [0] * 20))
    put(tmp_path, store, "b", scrape(T0 + 5 * MIN, [79] * 20, [1] * 20))
    # GIVEN the ends of object b, recorded once already by its ingest
    ctx = SourceContext(key="b", object_time_ms=0)
    parsed = formats.get("dcgm").parse(scrape(T0 + 5 * MIN, [79] * 20, [1] * 20), ctx)
    ends = carryover.ends(pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA))
    writes = store.writes
    # WHEN it is exchanged again (a redelivery whose manifest was lost, or a second handler)
    again = carryover.exchange(store, ends)
    # THEN it sees object a's values, as the first time, and the store is not written
    assert again == {("n1", "GPU-1"): carryover.Carried(79.0, 0.0)}
    assert store.writes == writes
    (item,) = store.load("carry#n1")
    assert [h[0] for h in item["gpus"]["GPU-1"]] == [T0, T0 + 5 * MIN]


def test_the_dynamodb_store_keeps_the_ends_with_a_conditional_write(ddb: Any) -> None:  # noqa: F811
    store = DynamoEpisodeStore(ddb, TABLE)
    first = {("n1", "GPU-1"): carryover.End(T0, T0 + 5 * MIN - STEP, 79.0, None, STEP)}
    second = {("n1", "GPU-1"): carryover.End(T0 + 5 * MIN, T0 + 10 * MIN - STEP, 79.0, 2.0, STEP)}
    assert carryover.exchange(store, first) == {("n1", "GPU-1"): carryover.Carried(None, None)}
    assert carryover.exchange(store, second) == {("n1", "GPU-1"): carryover.Carried(79.0, None)}
    (item,) = store.load("carry#n1")
    assert item["version"] == 2 and [h[3] for h in item["gpus"]["GPU-1"]] == [None, 2.0]
