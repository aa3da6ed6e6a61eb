"""Hostile and damaged inputs: decompression bombs, cut-off gzip, and a clean exit after short rows."""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from gpulake import formats, limits, schema
from gpulake.context import SourceContext
from gpulake.decode import Inflating, to_utf8
from gpulake.errors import ConfigError, InputRejected
from gpulake.identity import SORT_KEYS, drop_duplicate_times, drop_rows_without_values
from gpulake.ingest import TRUNCATED, ingest
from gpulake.limits import SizeLimit
from gpulake.output.sink import LocalSink
from tests.conftest import ROOT, real_file

SAMPLE = b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="n1"} 40 1767225600000\n'
GOOD_CSV = b"timestamp, index, temperature.gpu\n2026/01/01 00:00:00.000, 0, 50\n"
MIB = 2**20


def bomb(path: Path, inflated_mib: int) -> Path:
    """A few MB of gzip members that inflate to ``inflated_mib`` MiB of dcgm samples."""
    member = gzip.compress(SAMPLE * (64 * MIB // len(SAMPLE)), compresslevel=9)
    path.write_bytes(member * (inflated_mib // 64))
    return path


#: Runs a script and writes its own peak RSS (VmHWM, kB) at exit. The child's ru_maxrss from wait4 is no
#: use: Linux carries the forking parent's high-water mark (pytest's, hundreds of MiB) across exec.
_OWN_PEAK = """
import atexit, os, runpy, sys
out = os.environ.pop("GPULAKE_TEST_PEAK_FILE")
def peak():
    with open("/proc/self/status") as status, open(out, "w") as f:
        f.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
atexit.register(peak)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_limited(args: list[str], env: dict[str, str], address_space: int, scratch: Path) -> tuple[int, int, str]:
    """Run the CLI under an address-space limit: (exit code, its own peak RSS in MiB, stderr)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    peak_file = scratch / "peak-rss-kb"
    proc = subprocess.run(
        [sys.executable, "-c", _OWN_PEAK, str(ROOT / "automated_pipeline.py"), *args],
        env={**os.environ, **env, "GPULAKE_TEST_PEAK_FILE": str(peak_file)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
        check=False,
    )
    return proc.returncode, int(peak_file.read_text()) // 1024, proc.stderr


def test_a_bomb_is_rejected_within_bounded_memory_and_the_next_file_still_lands(tmp_path: Path) -> None:
    # GIVEN a gzip inflating to 8 GiB, then a good file
    big = bomb(tmp_path / "bomb.prom.gz", 8192)
    good = tmp_path / "good.csv"
    good.write_bytes(GOOD_CSV)
    assert big.stat().st_size < 40 * MIB
    # WHEN processed with a 64 MiB cap, under an address-space limit the old full inflate cannot fit in
    code, peak_mib, stderr = run_limited(
        ["process", str(big), str(good), "--out", str(tmp_path / "out")],
        {limits.ENV_VAR: "64"},
        5 * 2**30,
        tmp_path,
    )
    # THEN the bomb is rejected with a reason, the next file lands, memory stayed near the cap
    assert code == 1 and "Traceback" not in stderr, stderr
    assert f"rejected: {big.as_posix()}: object is larger than the 64 MiB limit" in stderr
    assert list((tmp_path / "out" / "metrics" / "source=nvidia-smi").rglob("*.parquet"))
    (quarantine,) = [p for p in (tmp_path / "out" / "quarantine").iterdir() if "bomb" in p.name]
    assert "larger than the 64 MiB limit" in json.loads(quarantine.read_text())["reason"]
    assert peak_mib < 600, f"peak RSS {peak_mib} MiB"


def test_the_cap_follows_lambda_memory_per_format_and_can_be_set() -> None:
    assert limits.size_limit({limits.ENV_VAR: "10"}) == SizeLimit.uniform(10 * MIB)
    assert limits.size_limit({limits.ENV_VAR: "10"}, override_mib=3) == SizeLimit.uniform(3 * MIB)
    from_memory = limits.size_limit({limits.LAMBDA_MEMORY_VAR: "3008"})
    for fmt, factor in limits.PEAK_PER_INFLATED_BYTE.items():
        assert limits.RUNTIME_MIB * MIB + from_memory.for_format(fmt) * factor <= 3008 * MIB
    assert from_memory.overall == from_memory.for_format("dcgm") > from_memory.for_format("nvidia-smi")
    assert limits.size_limit({}).overall > MIB  # the CLI: from this machine's memory
    with pytest.raises(ConfigError, match="whole number"):
        limits.size_limit({limits.ENV_VAR: "lots"})


def test_a_detected_format_gets_its_own_cap(tmp_path: Path) -> None:
    data = GOOD_CSV + b"2026/01/01 00:00:01.000, 0, 51\n" * 100
    caps = SizeLimit(overall=2**20, by_format={"nvidia-smi": 1000})
    result = ingest(
        data, SourceContext(key="smi.csv", object_time_ms=0), LocalSink(tmp_path), version="v", max_inflated=caps
    )
    assert result.rejected and "smi.csv: object is larger than the 1000 byte limit" in result.rejected


def inflate(pieces: list[bytes], limit: int) -> bytes:
    return b"".join(Inflating(pieces, "k", limit))


def test_inflating_stops_at_the_cap_and_reads_concatenated_members() -> None:
    two = gzip.compress(b"a\n" * 10) + gzip.compress(b"b\n" * 10) + b"\x00" * 7
    assert inflate([two], 100) == b"a\n" * 10 + b"b\n" * 10
    # the same stream in pieces of every size, split inside members, headers and the NUL padding
    for size in (1, 2, 3, 7, 19, len(two) - 1):
        assert inflate([two[i : i + size] for i in range(0, len(two), size)], 100) == b"a\n" * 10 + b"b\n" * 10
    with pytest.raises(InputRejected, match="larger than"):
        inflate([gzip.compress(b"x" * 5000)], 4096)
    with pytest.raises(InputRejected, match="larger than"):
        inflate([b"x" * 3000, b"x" * 2000], 4096)


def _expected_rows(cut: bytes, fmt: str) -> tuple[int, int]:
    """Rows parsed from the complete lines zlib can inflate from ``cut``, and that line count."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(cut)
    except zlib.error:
        text = b""
    text = to_utf8(text)
    text = text[: text.rfind(b"\n") + 1]  # the complete lines
    if not text.strip():
        return 0, 0
    parsed = formats.get(fmt).parse(text, SourceContext(key="k", object_time_ms=0))
    table = pa.Table.from_batches(parsed.batches, schema=schema.METRICS_SCHEMA).sort_by(SORT_KEYS)
    table, _ = drop_rows_without_values(table, "k")
    table, _ = drop_duplicate_times(table, "k")  # one row per identity, as ingest keeps
    return table.num_rows, text.count(b"\n")


@pytest.mark.parametrize(
    ("fixture", "fmt"),
    [
        ("nvidia_smi/yqg9651__cuda_test__power_data_h800_700w_sxm_dvfs__random_gemm_bf16.csv", "nvidia-smi"),
        ("gpuz/T2xic__GPU-Z-grapher__GPU-Z_Sensor_Log_bm1.txt", "gpuz"),
    ],
)
def test_a_cut_gzip_lands_its_complete_lines_and_is_reported(tmp_path: Path, fixture: str, fmt: str) -> None:
    packed = gzip.compress(real_file(fixture).read_bytes())
    for fraction in (0.2, 0.5, 0.77, 0.95, 0.999):
        cut = packed[: int(len(packed) * fraction)]
        expected_rows, complete = _expected_rows(cut, fmt)
        result = ingest(
            cut,
            SourceContext(key=f"cut-{fraction}.gz", object_time_ms=0),
            LocalSink(tmp_path),
            version="v",
            max_inflated=SizeLimit.uniform(2**30),
        )
        assert result.rejected is None and result.truncated, fraction
        assert result.failed == result.truncated
        assert result.rows == expected_rows > 0, fraction
        (key,) = [k for k in result.keys if k.startswith("quarantine/")]
        records = [json.loads(line) for line in (tmp_path / key).read_text().splitlines()]
        assert [r["line"] for r in records if r["reason"] == TRUNCATED] == [complete + 1], fraction


def test_the_cli_exits_1_for_a_cut_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    rows = b"".join(b"2026/01/01 00:%02d:%02d.000, 0, 51\n" % divmod(i, 60) for i in range(1, 500))
    path.write_bytes(gzip.compress(GOOD_CSV + rows)[:-40])
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "automated_pipeline.py"),
            "process",
            str(path),
            "--out",
            str(tmp_path / "o"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] > 0 and "gzip data is truncated" in summary["truncated"]
    assert "truncated:" in proc.stderr and "Traceback" not in proc.stderr


SHORT_ROW_CHILD = """
import os, sys
from gpulake import formats
from gpulake.context import SourceContext
data = sys.stdin.buffer.read()
formats.get("nvidia-smi").parse(data, SourceContext(key="k", object_time_ms=0))  # warm up once
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:  # a child parses and then shuts the interpreter down, as the CLI does
        formats.get("nvidia-smi").parse(data, SourceContext(key="k", object_time_ms=0))
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        print(os.waitstatus_to_exitcode(status))
"""


def test_short_rows_never_abort_the_process_at_exit(tmp_path: Path) -> None:
    # exit 134 was "terminate called without an active exception" after the CSV reader's
    # invalid-row handler ran; each forked child exits through interpreter shutdown
    rows = [b"timestamp, index, temperature.gpu, power.draw [W]"]
    rows += [b"2026/01/01 00:%02d:%02d.000, 0, 40, 100.0 W" % divmod(i, 60) for i in range(2000)]
    rows[100::500] = [b"2026/01/01 00:00:00.000, 0, 41"] * len(rows[100::500])
    proc = subprocess.run(
        [sys.executable, "-c", SHORT_ROW_CHILD, "30"],
        input=b"\n".join(rows) + b"\n",
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout == b"", (proc.stdout, proc.stderr[-2000:])
