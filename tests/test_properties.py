"""Property-based tests: no input makes a parser crash or a key escape the output prefix."""

from __future__ import annotations

import gzip
import posixpath
import re

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpulake import formats, schema
from gpulake.context import SourceContext
from gpulake.errors import InputRejected
from gpulake.ingest import ingest
from gpulake.limits import SizeLimit
from gpulake.output import layout
from gpulake.output.sink import LocalSink

CTX = SourceContext(key="prop/object", object_time_ms=1_767_225_600_000)
label_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70)).map(str)


def parse_any(data: bytes) -> None:
    for fmt in formats.FORMATS.values():
        try:
            result = fmt.parse(data, CTX)
        except InputRejected:
            continue
        for batch in result.batches:
            assert batch.schema == schema.METRICS_SCHEMA


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_any_format(data: bytes) -> None:
    parse_any(data)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(label_text, label_text, numbers, st.integers(-(2**62), 2**62)), max_size=8))
def test_dcgm_lines_with_hostile_labels_and_values(samples: list[tuple[str, str, str, int]]) -> None:
    lines = []
    for host, pod, value, ts in samples:
        esc = [s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for s in (host, pod)]
        lines.append(f'DCGM_FI_DEV_GPU_TEMP{{gpu="0",UUID="u",Hostname="{esc[0]}",pod="{esc[1]}"}} {value} {ts}')
    result = formats.get("dcgm").parse("\n".join(lines).encode(), CTX)
    kept = sum(b.num_rows for b in result.batches)
    assert kept + len(result.bad_rows) >= min(1, len(samples))
    stored = {re.sub(schema.CONTROL_CHARACTERS, schema.CONTROL_REPLACEMENT, s[0]) for s in samples}
    for batch in result.batches:
        for node in batch.column("node").to_pylist():
            assert node in stored or node == CTX.node


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(label_text, st.floats(allow_nan=True, allow_infinity=True)), max_size=6))
def test_csv_cells_with_commas_quotes_and_newlines(cells: list[tuple[str, float]]) -> None:
    rows = ["node,timestamp,gpu_id,temp"] + [
        f"{name},2026-01-01 00:00:{i % 60:02d},GPU_{i},{t}" for i, (name, t) in enumerate(cells)
    ]
    parse_any("\n".join(rows).encode())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_output_keys_never_escape_the_prefix(key: str) -> None:
    name = layout.object_name(key)
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    for out in (layout.metrics_key("dcgm", "2026-01-01", name), layout.quarantine_key(name), layout.manifest_key(name)):
        parts = out.split("/")
        assert ".." not in parts and "." not in parts and "" not in parts
        assert posixpath.normpath(out) == out


def test_local_sink_refuses_keys_outside_its_root(tmp_path) -> None:
    sink = LocalSink(tmp_path / "out")
    try:
        sink.put("../escape.txt", b"x", "text/plain")
    except ValueError as exc:
        assert "escapes" in str(exc)
    else:
        raise AssertionError("a key with .. was written")
    assert not (tmp_path / "escape.txt").exists()


def test_megabyte_lines_and_extreme_times_do_not_crash() -> None:
    huge = b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="' + b"x" * 3_000_000 + b'"} 1\n'
    old = b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="u"} 1 1000\nDCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="u"} 1 4102444800001\n'
    result = formats.get("dcgm").parse(huge + old, CTX)
    assert sum(b.num_rows for b in result.batches) == 1
    assert [b.reason for b in result.bad_rows] == ["timestamp outside 2000-01-01..2100-01-01"] * 2
    record = result.bad_rows[0].to_record("k")
    assert len(record["raw"]) < 5000


CORPUS = (
    b'# gpulake-scrape 1767225600000\nDCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="n1",pod="p"} 40\n'
    b'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-a",Hostname="n1",pod="p"} 300.5\n',
    b"timestamp, name, temperature.gpu, power.draw [W]\n2026/01/01 00:00:00.000, NVIDIA H100, 40, 100.0 W\n"
    b"2026/01/01 00:00:00.010, NVIDIA H100, 41, 101.0 W\n",
    b"        Date        , GPU Temperature [\xb0C] ,\r\n2026-01-01 00:00:00 , 40.0 ,\r\n",
    b"node,timestamp,gpu_id,temp\nn1,2026-01-01 00:00:00,GPU_1,50\n",
)
SPECIALS = [b"nan", b"inf", b"-inf", b"1e309", b"1e308", b"-1e308", b"9223372036854775794", b"\x00", b"\n", b'"']


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid object of some format with a fuzzer's damage: flips, special values, encodings, gzip cuts."""
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        data[at : at + 2] = draw(st.sampled_from([*SPECIALS, bytes([draw(st.integers(0, 255))])]))
    out = bytes(data)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32", "gzip", "cut-gzip"]))
    if encoding in ("gzip", "cut-gzip"):
        out = gzip.compress(out)
        return out[: draw(st.integers(1, len(out)))] if encoding == "cut-gzip" else out
    return out.decode("cp1252", "replace").encode(encoding) if encoding != "utf-8" else out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(damaged())
def test_damaged_objects_never_crash_ingest_and_store_no_control_characters(tmp_path, data: bytes) -> None:
    result = ingest(data, CTX, LocalSink(tmp_path), version="v", max_inflated=SizeLimit.uniform(2**20))
    assert result.rejected or result.format
    for key in result.keys:
        if key.startswith("metrics/"):
            table = pq.read_table(tmp_path / key)
            for name in ("node", "gpu", "gpu_uuid", "gpu_model"):
                assert not any(re.search(schema.CONTROL_CHARACTERS, v or "") for v in table.column(name).to_pylist())
