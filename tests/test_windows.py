"""A large dcgm object ingested as windows of whole scrapes (ADR 0008): the same rows as the object processed
whole, the alerts its windows would raise uploaded one after the other, line numbers of the whole object,
one row per identity when a scrape time comes back, and a kill between windows then a rerun equal to a
clean run."""

from __future__ import annotations

import json
import sqlite3
import weakref
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gpulake import ingest as ingest_mod
from gpulake.alerts import grouping
from gpulake.alerts.state import SqliteEpisodeStore
from gpulake.context import SourceContext
from gpulake.decode import NotUtf8
from gpulake.formats import dcgm
from gpulake.formats.dcgm import MARKER, _Windows
from gpulake.identity import DUPLICATE_REASON
from gpulake.ingest import IngestResult, Lifecycle, ingest
from gpulake.limits import SizeLimit
from gpulake.output.sink import LocalSink
from gpulake_cli.simulate_fleet import FleetSpec, _fleet, _times, dcgm_text
from tests.test_lifecycle import CONFIG
from tests.test_streaming import scrapes

#: Text per window in these tests: a few scrapes of the objects below.
WINDOW = 48 << 10


def fleet_object(minutes: float = 60.0) -> bytes:
    """One node's scrapes as the exporter writes them (HELP/TYPE in each), GPU 1 running hot: alerts."""
    spec = FleetSpec(nodes=1, gpus=4, minutes=minutes, interval_s=15.0, formats=("dcgm",))
    ((node, gpus),) = _fleet(spec)
    return dcgm_text(node, gpus, _times(spec)).encode()


def windows_of(data: bytes, size: int = WINDOW) -> list[bytes]:
    """The object cut as ingest cuts it, each window's text."""
    lines = data.splitlines(keepends=True)
    pieces = (b"".join(lines[i : i + 50]) for i in range(0, len(lines), 50))  # at line ends, as decoding gives
    return [b"".join(bytes(p) for p in window) for window in _Windows(pieces, size)]


def run(
    out: Path,
    data: bytes,
    key: str = "dcgm/gpu-node-00/big.prom",
    store: SqliteEpisodeStore | None = None,
    now_ms: int | None = None,
) -> IngestResult:
    ctx = SourceContext(key=key, object_time_ms=0, node=None)
    lifecycle = Lifecycle(store, CONFIG, now_ms) if store is not None else None
    return ingest(data, ctx, LocalSink(out), lifecycle=lifecycle)


def last_scrape_ms(data: bytes) -> int:
    return int(data[data.rindex(MARKER) + len(MARKER) :].split(b"\n", 1)[0])


def left_in_groups(path: Path) -> list[object]:
    """What the node groups still hold unsent or unconfirmed."""
    with sqlite3.connect(path) as conn:
        groups = [json.loads(doc) for (doc,) in conn.execute("SELECT doc FROM items WHERE sk = 'group'")]
    return [entry for g in groups for entry in [*g["pending"], *(g.get("sending") or [])]]


def told(result: IngestResult) -> list[tuple[object, ...]]:
    """What the notifications say (state, kind, GPU, severity), in order."""
    return [(e.state, e.episode["kind"], e.episode["gpu"], e.episode["severity"]) for e in result.notifications]


def metrics(out: Path) -> pa.Table:
    """Every metrics row written under ``out``, in identity order."""
    tables = [pq.read_table(p) for p in sorted(out.glob("metrics/**/*.parquet"))]
    table = pa.concat_tables(tables)
    return table.sort_by([("node", "ascending"), ("gpu", "ascending"), ("time", "ascending")])


def quarantine(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for p in sorted(out.glob("quarantine/*.jsonl")) for line in p.read_text().splitlines()]


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def episodes(path: Path) -> list[tuple[object, ...]]:
    """Each episode's condition as stored (not its id: an object's parts name it after their own ids)."""
    with sqlite3.connect(path) as conn:
        docs = [json.loads(doc) for (doc,) in conn.execute("SELECT doc FROM items WHERE pk LIKE 'ep#%'")]
    return sorted(
        (e["kind"], e["metric"], e["gpu"], e["state"], e["severity"], e["start_ms"], e["end_ms"], e["samples"])
        for e in docs
    )


def condition(alert: dict[str, object]) -> tuple[object, ...]:
    """What an alert says of the GPU (not its id, object or episode)."""
    return tuple(alert[k] for k in ("kind", "metric", "node", "gpu", "severity", "start", "end", "samples", "peak"))


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dcgm, "WINDOW_BYTES", WINDOW)


def test_windows_are_whole_scrapes_cut_before_a_valid_marker() -> None:
    data = fleet_object(30)
    bad = data.replace(MARKER + b" ", MARKER + b" x", 3)  # not a time: never a place to cut
    for text in (data, bad):
        windows = windows_of(text)
        assert len(windows) > 5 and b"".join(windows) == text
        for window in windows[1:]:
            assert window.startswith(MARKER) and window[len(MARKER) :].split(b"\n", 1)[0].strip().isdigit()
        assert all(len(window) >= WINDOW for window in windows[:-1])
    # an object without markers is one window, however large
    plain = b"".join(line + b"\n" for line in data.splitlines() if not line.startswith(MARKER))
    assert windows_of(plain, 1024) == [plain]


@pytest.mark.usefixtures("small_windows")
def test_a_windowed_real_capture_lands_the_rows_and_quarantine_of_the_whole_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 40 scrapes of a real H100 capture, with lines that are not exposition text in a late window
    data = scrapes(40)
    cut = data.index(b"# gpulake-scrape %d" % (1_767_225_600_000 + 30_000 * 33))
    data = data[:cut] + b'Handling connection for 9400\nDCGM_FI_DEV_GPU_TEMP{gpu="0" 41\n' + data[cut:]
    assert len(windows_of(data)) >= 4
    # WHEN it is ingested in windows, and whole
    windowed = run(tmp_path / "windowed", data)
    monkeypatch.setattr(dcgm, "WINDOW_BYTES", 1 << 40)
    whole = run(tmp_path / "whole", data)
    # THEN the same rows land, with the same values, and the bad lines keep their line numbers in the object
    assert windowed.rows == whole.rows == 40 * 8 and windowed.bad_rows == whole.bad_rows == 2
    assert metrics(tmp_path / "windowed").equals(metrics(tmp_path / "whole"))
    table = metrics(tmp_path / "windowed")
    gpu0 = table.filter(pa.compute.equal(table["gpu"], "0"))
    assert gpu0["gpu_temp_c"][0].as_py() == 30.0  # 'DCGM_FI_DEV_GPU_TEMP{gpu="0",...} 30' in the capture
    bad = quarantine(tmp_path / "windowed")
    assert bad == quarantine(tmp_path / "whole")
    line = data[:cut].count(b"\n") + 1
    assert [(r["line"], r["raw"]) for r in bad] == [
        (line, "Handling connection for 9400"),
        (line + 1, 'DCGM_FI_DEV_GPU_TEMP{gpu="0" 41'),
    ]
    assert windowed.spans == whole.spans


@pytest.mark.usefixtures("small_windows")
def test_a_windowed_objects_alerts_are_its_windows_uploaded_one_after_the_other(tmp_path: Path) -> None:
    data = fleet_object()
    windows = windows_of(data)
    assert len(windows) >= 8
    # WHEN the object is ingested whole (in windows) with an episode store ...
    big = run(tmp_path / "big", data, store=SqliteEpisodeStore(tmp_path / "big.sqlite"))
    # ... and, elsewhere, its windows are uploaded one after the other as objects of their own
    store = SqliteEpisodeStore(tmp_path / "parts.sqlite")
    parts = [run(tmp_path / "parts", w, f"dcgm/gpu-node-00/w{i:02d}.prom", store) for i, w in enumerate(windows)]
    # THEN the alerts say the same, in the same order, and fold into the same episodes
    alerts = big.alerts
    assert alerts and big.alert_count == len(alerts)
    assert big.critical_alerts == sum(1 for a in alerts if a["severity"] == "critical")
    assert [condition(a) for a in alerts] == [condition(a) for p in parts for a in p.alerts]
    assert episodes(tmp_path / "big.sqlite") == episodes(tmp_path / "parts.sqlite")
    # and a GPU's throttle cut at window boundaries is one episode, as across uploads
    hot = [a for a in alerts if a["gpu"] == "1" and a["kind"] == alerts[0]["kind"]]
    assert len({a["episode_id"] for a in hot}) < len(hot)
    assert big.rows == sum(p.rows for p in parts)


@pytest.mark.usefixtures("small_windows")
def test_a_scrape_time_an_earlier_window_wrote_is_quarantined_and_the_earlier_row_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an object whose last scrape repeats its first one's time, with other values, windows apart
    data = fleet_object(30)
    first = data[: data.index(MARKER, 1)]
    again = first.replace(b"} ", b"} 1")  # every value changed: 45 -> 145
    assert len(windows_of(data + again)) > 3
    result = run(tmp_path, data + again)
    table = metrics(tmp_path)
    # THEN one row per identity, and at that time the first scrape's values: the repeat is quarantined
    monkeypatch.setattr(dcgm, "WINDOW_BYTES", 1 << 40)
    alone = run(tmp_path / "first", first)
    time = pa.compute.equal(table["time"], metrics(tmp_path / "first")["time"][0])
    assert table.filter(time).equals(metrics(tmp_path / "first")) and alone.rows == 4
    assert len(set(zip(table["gpu"].to_pylist(), table["time"].to_pylist(), strict=True))) == table.num_rows
    duplicates = [r for r in quarantine(tmp_path) if r["reason"] == DUPLICATE_REASON]
    assert len(duplicates) == 4 and result.rows == 4 * data.count(MARKER)
    assert result.bad_rows == 4 + 4  # and the repeat's GPU_UTIL lines, now 190% and more
    assert {json.loads(r["raw"])["gpu"] for r in duplicates} == {"0", "1", "2", "3"}


@pytest.mark.usefixtures("small_windows")
def test_a_kill_between_windows_then_a_rerun_equals_a_clean_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = fleet_object()
    clean = run(tmp_path / "clean", data, store=SqliteEpisodeStore(tmp_path / "clean.sqlite"))
    # GIVEN a run killed after three windows were folded into the episode store (nothing of the object put)
    detect, calls = ingest_mod._detect, []

    def killed(*args: object, **kwargs: object) -> list[dict[str, object]]:
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        calls.append(1)
        return detect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_mod, "_detect", killed)
    store = SqliteEpisodeStore(tmp_path / "rerun.sqlite")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "rerun", data, store=store)
    assert episodes(tmp_path / "rerun.sqlite")  # the store holds the first windows' episodes
    # WHEN the object is delivered again
    monkeypatch.setattr(ingest_mod, "_detect", detect)
    rerun = run(tmp_path / "rerun", data, store=store)
    # THEN every output and every episode equals the clean run's
    assert outputs(tmp_path / "rerun") == outputs(tmp_path / "clean")
    assert episodes(tmp_path / "rerun.sqlite") == episodes(tmp_path / "clean.sqlite")
    assert rerun.alerts == clean.alerts and rerun.alert_count == clean.alert_count


def test_an_upload_under_one_window_is_one_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the default window is far above a collector upload (2-5 MB per node and 5 minutes)
    data = fleet_object(60)
    assert len(data) < dcgm.WINDOW_BYTES and len(windows_of(data, dcgm.WINDOW_BYTES)) == 1
    calls: list[int] = []
    detect = ingest_mod._detect
    monkeypatch.setattr(ingest_mod, "_detect", lambda *a, **k: calls.append(1) or detect(*a, **k))
    result = run(tmp_path, data)
    assert calls == [1] and result.rows == len(np.unique(metrics(tmp_path)["time"].to_numpy())) * 4


@pytest.mark.usefixtures("small_windows")
def test_without_a_store_the_xid_gauge_and_the_dbe_counter_cross_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN GPU 2 holding XID 79 from early on (a gauge: every later scrape repeats it) and its DBE counter
    # rising 0 -> 1 exactly where a window starts
    data = fleet_object()
    boundary = len(b"".join(windows_of(data)[:5]))
    lines, at = [], 0
    for line in data.splitlines(keepends=True):
        if b'gpu="2"' in line and at > len(data) // 10 and line.startswith(b"DCGM_FI_DEV_XID_ERRORS{"):
            line = line.rsplit(b" ", 1)[0] + b" 79\n"
        if b'gpu="2"' in line and at >= boundary and line.startswith(b"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{"):
            line = line.rsplit(b" ", 1)[0] + b" 1\n"
        lines.append(line)
        at += len(line)
    data = b"".join(lines)
    # WHEN it is ingested with no episode store (the handler without EPISODES_TABLE), in windows and whole
    windowed = run(tmp_path / "windowed", data)
    monkeypatch.setattr(dcgm, "WINDOW_BYTES", 1 << 40)
    whole = run(tmp_path / "whole", data)

    # THEN the XID is reported once and the rise at the boundary is seen, as in the whole object
    def kinds(result: IngestResult) -> list[str]:
        return sorted(str(a["kind"]) for a in result.alerts if a["gpu"] == "2" and a["kind"] in ("xid", "ecc_dbe"))

    assert kinds(windowed) == kinds(whole) == ["ecc_dbe", "xid"]


@pytest.mark.usefixtures("small_windows")
def test_a_windowed_objects_changes_go_out_together_under_one_clock(tmp_path: Path) -> None:
    # GIVEN the Lambda's clock (one instant for the invocation) and a large object of a hot GPU
    data = fleet_object()
    now = last_scrape_ms(data) + 60_000
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    # WHEN it is ingested in windows and its batch confirmed once sent, as the handler does
    result = run(tmp_path, data, store=store, now_ms=now)
    grouping.confirm(store, result.claims)
    # THEN every change of every window is sent now (no window's claim holds the next ones back for the
    # lease), the criticals among them, and nothing waits in the node's group
    assert len(result.notifications) == len(result.events) > 1
    assert ("escalated", "over_temperature", "1", "critical") in told(result)
    assert left_in_groups(tmp_path / "s.sqlite") == []


@pytest.mark.usefixtures("small_windows")
def test_a_late_windows_1252_byte_reads_the_object_again_and_loses_no_change(tmp_path: Path) -> None:
    # GIVEN a large object with a Windows-1252 degree sign three quarters in (after windows were folded)
    base = fleet_object()
    at = base.index(MARKER, len(base) * 3 // 4)
    now = last_scrape_ms(base) + 60_000
    results = {}
    for encoding in ("cp1252", "utf-8"):
        data = base[:at] + "# HELP note temperature in °C\n".encode(encoding) + base[at:]
        store = SqliteEpisodeStore(tmp_path / f"{encoding}.sqlite")
        results[encoding] = run(tmp_path / encoding, data, store=store, now_ms=now)
        grouping.confirm(store, results[encoding].claims)
    # THEN the object read again as Windows-1252 reports and sends what the same text in UTF-8 does, though
    # its first attempt had folded the early windows already
    retried, utf8 = results["cp1252"], results["utf-8"]
    assert [(e.state, e.episode["episode_id"]) for e in retried.events] == [
        (e.state, e.episode["episode_id"]) for e in utf8.events
    ]
    assert told(retried) == told(utf8) and len(told(utf8)) > 1
    assert left_in_groups(tmp_path / "cp1252.sqlite") == left_in_groups(tmp_path / "utf-8.sqlite") == []
    assert episodes(tmp_path / "cp1252.sqlite") == episodes(tmp_path / "utf-8.sqlite")


def test_the_windows_1252_retry_starts_once_the_first_attempt_is_let_go() -> None:
    # the first attempt's open files and scanner buffers are not held while the object is read again
    attempts: list[weakref.ref[object]] = []

    class Attempt:
        pass

    def write(encoding: str | None) -> IngestResult:
        if encoding is None:
            held = Attempt()
            attempts.append(weakref.ref(held))
            raise NotUtf8("byte 0xb0")
        assert attempts[0]() is None, "the first attempt is still alive"
        return IngestResult(source_object="k", name="k")

    assert ingest_mod._utf8_or_cp1252(write).source_object == "k"


@pytest.mark.usefixtures("small_windows")
def test_an_object_rejected_over_the_cap_after_some_windows_still_sends_what_they_changed(tmp_path: Path) -> None:
    # GIVEN a large object over the size cap, found so only after windows were folded into the episodes
    data = fleet_object()
    store = SqliteEpisodeStore(tmp_path / "s.sqlite")
    lifecycle = Lifecycle(store, CONFIG, last_scrape_ms(data) + 60_000)
    ctx = SourceContext(key="dcgm/gpu-node-00/big.prom", object_time_ms=0, node=None)
    cap = SizeLimit.uniform(len(data) // 2)
    pieces = lambda: (data[at : at + (16 << 10)] for at in range(0, len(data), 16 << 10))  # noqa: E731 (a stream)
    result = ingest(pieces, ctx, LocalSink(tmp_path), lifecycle=lifecycle, max_inflated=cap)
    grouping.confirm(store, result.claims)
    # THEN it is rejected, and the changes its first windows stored are sent now, not left for the sweeper
    assert result.rejected and "larger than" in result.rejected
    assert episodes(tmp_path / "s.sqlite") and len(result.notifications) == len(result.events) > 0
    assert left_in_groups(tmp_path / "s.sqlite") == []
