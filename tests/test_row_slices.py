"""ADR 0007: a dcgm object is built and written in row slices; its outputs hold the rows the whole table gave.

Objects under one slice (every collector upload) keep exactly the bytes of the whole-table path; a larger
object gets one row group per slice and otherwise the same rows, values, alerts, quarantine and episodes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpulake import formats, schema
from gpulake.alerts.state import SqliteEpisodeStore
from gpulake.context import SourceContext
from gpulake.identity import drop_duplicate_times, drop_rows_without_values, sort_rows
from gpulake.ingest import Lifecycle, ingest
from gpulake.output.parquet import to_parquet_bytes
from gpulake.output.sink import LocalSink
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.conftest import real_files

CTX = SourceContext(key="slices/node-1/metrics.prom", object_time_ms=1_767_225_600_000, node="node-1")
#: Rows per slice large enough that any test object is one slice: the unsliced path.
WHOLE = 10**9
#: 2026-11-02T23:55Z: a simulated fleet starting here crosses a UTC day.
LATE = dt.datetime(2026, 11, 2, 23, 55, tzinfo=dt.UTC)


def fleet(tmp_path: Path, spec: FleetSpec) -> bytes:
    return b"".join(p.read_bytes() for p in simulate(tmp_path / "raw", spec) if p.suffix == ".prom")


def outputs(
    data: bytes, out: Path, rows_per_slice: int, monkeypatch: pytest.MonkeyPatch, *, episodes: bool = False
) -> dict[str, bytes]:
    """Every output file ingest writes for ``data`` with ``rows_per_slice`` (manifests aside), by path."""
    monkeypatch.setattr(formats.get("dcgm"), "rows_per_slice", rows_per_slice)
    lifecycle = (
        Lifecycle(SqliteEpisodeStore(out.with_suffix(".sqlite")), now_ms=CTX.object_time_ms) if episodes else None
    )
    result = ingest(data, CTX, LocalSink(out), format_name="dcgm", lifecycle=lifecycle)
    assert not result.failed
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "manifests" not in p.parts
    }


def whole_table_parquet(data: bytes) -> dict[str, bytes]:
    """The metrics files as the whole-table path wrote them: one table sorted, cleaned, split by UTC day."""
    parsed = formats.get("dcgm").parse(data, CTX)
    table = sort_rows(pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA))
    table, _ = drop_duplicate_times(drop_rows_without_values(table, CTX.key)[0], CTX.key)
    days = pc.divide(table["time"].cast(pa.int64()), 86_400_000).to_numpy()
    out = {}
    for day in sorted(set(days.tolist())):
        date = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
        part = table.filter(pa.array(days == day)) if len(set(days.tolist())) > 1 else table
        out[date] = to_parquet_bytes(part)
    return out


def parquet_by_day(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path.split("date=")[1].split("/")[0]: body for path, body in files.items() if path.endswith(".parquet")}


def rows_of(body: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(body)).combine_chunks()


def row_groups(body: bytes) -> int:
    return pq.ParquetFile(pa.BufferReader(body)).metadata.num_row_groups


@pytest.mark.parametrize("path", real_files("dcgm", "*.*"), ids=lambda p: p.name[:60])
def test_a_real_object_under_one_slice_keeps_the_whole_table_bytes(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a real exporter capture (far fewer rows than a slice)
    data = path.read_bytes()
    # WHEN ingested with the default slice size
    written = parquet_by_day(outputs(data, tmp_path / "out", formats.get("dcgm").rows_per_slice, monkeypatch))
    # THEN its Parquet is byte for byte what the whole-table path wrote, one row group per file
    assert written == whole_table_parquet(data)
    assert all(row_groups(body) == 1 for body in written.values())


def test_a_simulated_upload_keeps_the_whole_table_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a collector-sized upload crossing midnight UTC (2 nodes x 4 GPUs, 10 minutes at 10 s)
    data = fleet(tmp_path, FleetSpec(minutes=10, formats=("dcgm",), start=LATE))
    # WHEN ingested with the default slice size
    written = parquet_by_day(outputs(data, tmp_path / "out", formats.get("dcgm").rows_per_slice, monkeypatch))
    # THEN both days' files are byte for byte the whole-table path's
    assert sorted(written) == ["2026-11-02", "2026-11-03"]
    assert written == whole_table_parquet(data)


def test_a_sliced_object_has_the_rows_alerts_quarantine_and_episodes_of_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a fleet object crossing midnight UTC with alerts (hot GPUs, XIDs, ECC), and a scrape whose
    # two hosts are one node once cleaned (duplicate times) and a scrape of blanks only (rows without values)
    data = fleet(tmp_path, FleetSpec(nodes=2, gpus=4, minutes=12, formats=("dcgm",), start=LATE, seed=3))
    blank = 9223372036854775794
    data += (
        f'DCGM_FI_DEV_GPU_TEMP{{gpu="0",Hostname="dup\x01"}} 50 1793750000000\n'
        f'DCGM_FI_DEV_GPU_TEMP{{gpu="0",Hostname="dup\x02"}} 51 1793750000000\n'
        f'DCGM_FI_DEV_POWER_USAGE{{gpu="1",Hostname="dup\x01"}} {blank} 1793750000000\n'
    ).encode()
    # WHEN ingested whole, and in slices of 7 rows (twice), with episodes
    whole = outputs(data, tmp_path / "whole", WHOLE, monkeypatch, episodes=True)
    sliced = outputs(data, tmp_path / "sliced", 7, monkeypatch, episodes=True)
    again = outputs(data, tmp_path / "again", 7, monkeypatch, episodes=True)
    # THEN the same files, the same rows and values in each Parquet file, in more row groups
    assert sorted(sliced) == sorted(whole)
    for day, body in parquet_by_day(sliced).items():
        assert rows_of(body).equals(rows_of(parquet_by_day(whole)[day])), day
        assert row_groups(body) > 1
    # the alerts, quarantine (duplicate and empty rows) and closed episodes are byte for byte the same
    rest = [path for path in whole if not path.endswith(".parquet")]
    assert any("quarantine" in p for p in rest) and any(p.startswith("alerts/") for p in rest)
    assert b"duplicate_timestamp" in whole[next(p for p in rest if "quarantine" in p)]
    assert {p: sliced[p] for p in rest} == {p: whole[p] for p in rest}
    # and a sliced object is still deterministic: the same bytes again
    assert again == sliced


_SERIES = st.tuples(
    st.sampled_from(
        ["DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_DEV_POWER_USAGE"]
    ),
    st.sampled_from(["a", "b\x01", "b\x02"]),  # the last two are one node once cleaned
    st.sampled_from(["0", "1"]),
    st.sampled_from(["45", "79", "0.5", "9223372036854775794"]),  # a DCGM blank: a row may have no value
    st.sampled_from([-1500, -1000, 0, 1000, 1500]),  # around midnight UTC
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.lists(_SERIES, min_size=1, max_size=40), rows_per_slice=st.integers(1, 5))
def test_any_slicing_gives_the_rows_and_quarantine_of_the_whole(
    samples: list[tuple[str, str, str, str, int]], rows_per_slice: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN samples of a few GPUs around midnight, with duplicate identities, blanks and XIDs
    midnight = 1_767_225_600_000
    data = "".join(f'{m}{{gpu="{g}",Hostname="{h}"}} {v} {midnight + t}\n' for m, h, g, v, t in samples).encode()
    tmp = tmp_path_factory.mktemp("slices")
    with pytest.MonkeyPatch.context() as monkeypatch:
        # WHEN ingested whole and in slices of 1-5 rows
        whole = outputs(data, tmp / "whole", WHOLE, monkeypatch)
        sliced = outputs(data, tmp / "sliced", rows_per_slice, monkeypatch)
    # THEN the same files; each Parquet file the same rows; alerts and quarantine byte for byte
    assert sorted(sliced) == sorted(whole)
    for path, body in whole.items():
        if path.endswith(".parquet"):
            assert rows_of(sliced[path]).equals(rows_of(body)), path
        else:
            assert sliced[path] == body, path
