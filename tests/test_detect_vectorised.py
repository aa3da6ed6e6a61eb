"""Vectorised detection gives the alerts the per-sample loops gave, byte for byte.

The references below are the loops ``gpulake.alerts.rules`` used before detection was
vectorised (kept here, in the test, as the definition); hypothesis compares them with the
numpy versions. End to end, detection over a whole object must equal detection GPU by GPU,
and the alerts JSONL ``process`` writes must be the same whether the table comes from the
compiled or the pure-Python scanner, on the simulator's fleet and on every real fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpulake import formats, schema
from gpulake.alerts import carryover, detect
from gpulake.alerts.series import (
    ExtraIndex,
    changes_to_nonzero,
    rises,
    rises_from_zero,
    run_bounds,
    runs,
    typical_step,
    window_counts,
    window_reduce,
)
from gpulake.context import SourceContext
from gpulake.formats import _expo_scan
from gpulake.identity import SORT_KEYS
from gpulake.local import LocalOptions, iter_files, process_file
from gpulake.timeutil import ms_to_iso, ms_to_iso_many
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.conftest import REAL

# --- the loops detection used to run, sample by sample ---------------------------------------


def loop_episodes(time: np.ndarray, hit: np.ndarray, gap_factor: float) -> list[tuple[int, int]]:
    if len(time) > 1:
        diffs = np.diff(time)
        typical = float(np.median(diffs[diffs > 0])) if (diffs > 0).any() else 0.0
    else:
        typical = 0.0
    max_gap = max(typical * gap_factor, 1000.0)
    out, start = [], None
    for i in range(len(hit)):
        if hit[i] and start is not None and time[i] - time[i - 1] > max_gap:
            out.append((start, i - 1))
            start = None
        if hit[i] and start is None:
            start = i
        elif not hit[i] and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(hit) - 1))
    return out


def loop_increase(values: np.ndarray, before: float | None = None) -> np.ndarray:
    out, last = np.zeros(len(values), dtype=bool), np.nan if before is None else before
    for i, v in enumerate(values):
        if not np.isnan(v):
            out[i] = not np.isnan(last) and v > last
            last = v
    return out


def loop_counter_seen(values: np.ndarray) -> np.ndarray:
    out, last = np.zeros(len(values), dtype=bool), 0.0
    for i, v in enumerate(values):
        if not np.isnan(v):
            out[i] = v > last
            last = v
    return out


def loop_new_xid(values: np.ndarray, before: float | None = None) -> np.ndarray:
    out, last = np.zeros(len(values), dtype=bool), 0.0 if before is None else before
    for i, v in enumerate(values):
        if not np.isnan(v):
            out[i] = v != 0 and v != last
            last = v
    return out


# --- primitives against the loops ---------------------------------------------------------------

readings = hnp.arrays(np.float64, st.integers(0, 40), elements=st.sampled_from([np.nan, 0.0, 1.0, 2.0, 3.0, 79.0]))


@settings(max_examples=300, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0, 1, 1000, 1000, 1000, 2500, 9000]), max_size=40),
    hits=st.lists(st.booleans(), min_size=40, max_size=40),
    factor=st.sampled_from([1.0, 2.0, 3.0]),
)
def test_runs_split_like_the_loop(gaps: list[int], hits: list[bool], factor: float) -> None:
    time = np.cumsum(np.array([1_700_000_000_000, *gaps], dtype=np.int64))
    hit = np.array(hits[: len(time)], dtype=bool)
    assert runs(time, hit, max(typical_step(time) * factor, 1000.0)) == loop_episodes(time, hit, factor)


@settings(max_examples=300, deadline=None)
@given(values=readings, before=st.sampled_from([None, 0.0, 1.0, 3.0, 79.0]))
def test_counter_helpers_match_the_loops(values: np.ndarray, before: float | None) -> None:
    assert np.array_equal(rises(values, before), loop_increase(values, before))
    assert np.array_equal(rises_from_zero(values), loop_counter_seen(values))
    assert np.array_equal(changes_to_nonzero(values, before), loop_new_xid(values, before))


@settings(max_examples=200, deadline=None)
@given(
    series_hits=st.lists(st.lists(st.booleans(), min_size=1, max_size=12), min_size=1, max_size=4),
    gaps=st.lists(st.sampled_from([1000, 2500]), min_size=4, max_size=4),
)
def test_runs_of_series_end_to_end_equal_runs_of_each(series_hits: list[list[bool]], gaps: list[int]) -> None:
    # GIVEN several series (GPUs) laid end to end, each with its own step and so its own splitting gap
    times = [np.arange(len(h), dtype=np.int64) * step for h, step in zip(series_hits, gaps, strict=False)]
    expected, offset = [], 0
    for hit, time in zip(series_hits, times, strict=True):
        expected += [
            (a + offset, b + offset) for a, b in runs(time, np.array(hit), max(typical_step(time) * 1.5, 1000))
        ]
        offset += len(hit)
    sizes = [len(h) for h in series_hits]
    breaks = np.zeros(offset, dtype=bool)
    breaks[np.cumsum(sizes) - sizes] = True
    max_gap = np.repeat([max(typical_step(t) * 1.5, 1000) for t in times], sizes)
    # WHEN their runs are found in one pass THEN no run crosses from one series to the next
    first, last = run_bounds(np.concatenate(times), np.concatenate(series_hits), max_gap, breaks)
    assert list(zip(first.tolist(), last.tolist(), strict=True)) == expected


@settings(max_examples=300, deadline=None)
@given(values=readings, data=st.data())
def test_window_reductions_equal_one_window_at_a_time(values: np.ndarray, data: st.DataObject) -> None:
    hit = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))), dtype=bool)
    time = np.arange(len(values), dtype=np.int64) * 1000
    first, last = run_bounds(time, hit, 1000.0)
    masked = np.where(hit, values, np.nan)
    peaks = window_reduce(np.fmax, masked, first, last)
    lows = window_reduce(np.fmin, values, first, last)
    for i, (a, b) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
        window = slice(a, b + 1)
        assert window_counts(hit, first, last)[i] == hit[window].sum()
        finite = values[window][hit[window]]
        finite = finite[~np.isnan(finite)]
        assert np.array_equal(peaks[i], finite.max() if finite.size else np.nan, equal_nan=True)
        known = values[window][~np.isnan(values[window])]
        assert np.array_equal(lows[i], known.min() if known.size else np.nan, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(
    maps=st.lists(
        st.one_of(
            st.none(),
            st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from([1.0, 2.5, -3.0, None])), max_size=5),
        ),
        max_size=12,
    ),
    start=st.integers(0, 3),
)
def test_extra_index_equals_map_lookup(maps: list, start: int) -> None:
    extra = pa.array(maps, schema.EXTRA_TYPE).slice(min(start, len(maps)))
    index = ExtraIndex(extra)
    for key in "abcde":
        expected = pc.map_lookup(extra, pa.scalar(key), "first").to_numpy(zero_copy_only=False).astype(np.float64)
        assert np.array_equal(index.value(key), expected, equal_nan=True)


@given(ms=hnp.arrays(np.int64, st.integers(0, 20), elements=st.integers(946_684_800_000, 4_102_444_800_000)))
def test_iso_times_at_once_equal_one_by_one(ms: np.ndarray) -> None:
    assert ms_to_iso_many(ms) == [ms_to_iso(int(v)) for v in ms]


# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("fleet")
    simulate(root, FleetSpec(nodes=2, gpus=4, minutes=30))
    return [p for p in iter_files([root]) if "dcgm" in p.parts]


def _table(path: Path) -> pa.Table:
    parsed = formats.get("dcgm").parse(path.read_bytes(), SourceContext(key=path.name, object_time_ms=0))
    return pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA)


def test_detection_over_an_object_equals_detection_gpu_by_gpu(fleet: list[Path]) -> None:
    for path in fleet:
        table = _table(path).sort_by(SORT_KEYS)
        whole = detect(table)
        keys = {(n, g) for n, g in zip(table["node"].to_pylist(), table["gpu"].to_pylist(), strict=True)}
        one_by_one = []
        for node, gpu in keys:
            mask = pc.and_(pc.equal(table["node"], node), pc.equal(table["gpu"], gpu))
            one_by_one += detect(table.filter(mask))
        one_by_one.sort(key=lambda a: (a["start"], a["node"], a["gpu"], a["kind"], a["metric"]))
        assert whole and json.dumps(whole, sort_keys=True) == json.dumps(one_by_one, sort_keys=True)
        # shuffled rows: the same alerts (detect sorts what it is given)
        order = np.random.default_rng(7).permutation(table.num_rows)
        shuffled = table.take(pa.array(order))
        assert detect(shuffled) == whole
        # an extra index of the shuffled rows, as ingest shares with carryover.ends: still the same alerts
        index = ExtraIndex(shuffled["extra"])
        assert detect(shuffled, extra=index) == whole
        ends = carryover.ends(table)
        assert ends and carryover.ends(shuffled, index) == carryover.ends(shuffled) == ends


@pytest.mark.skipif(not _expo_scan.COMPILED, reason="compiled scanner not built; `make scanner` builds it")
def test_alerts_jsonl_is_the_same_from_either_scanner(fleet: list[Path], tmp_path: Path) -> None:
    inputs = [*fleet, *(p for p in sorted((REAL / "dcgm").rglob("*")) if p.is_file() and "counters" not in p.parts)]
    outputs = {}
    for name, scan in (("compiled", _expo_scan.scan_compiled), ("python", _expo_scan.scan_python)):
        dcgm = formats.FORMATS["dcgm"]
        saved, dcgm.scan = dcgm.scan, scan
        try:
            out = tmp_path / name
            for path in inputs:
                process_file(path, out, LocalOptions(format_name="dcgm"))
        finally:
            dcgm.scan = saved
        outputs[name] = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("alerts/**/*.jsonl"))}
    assert outputs["compiled"] and outputs["compiled"] == outputs["python"]
    assert sum(body.count(b"\n") for body in outputs["compiled"].values()) > 10
