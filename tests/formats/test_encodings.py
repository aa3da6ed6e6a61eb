"""Every format reads the same whatever encoding the file was saved in (decoded before detection)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gpulake.context import SourceContext
from gpulake.decode import to_utf8
from gpulake.ingest import ingest
from gpulake.limits import SizeLimit
from gpulake.output.sink import LocalSink
from tests.conftest import real_file

FIXTURES = {
    "dcgm": "dcgm/NVIDIA__aicr__evidence_accelerator-metrics_md__H100x8_4.x_filtered.prom",
    "gpuz": "gpuz/gokayge__First__GPU-Z_Sensor_Log.txt",
    "nvidia-smi": (
        "nvidia_smi/microsoft__VirtualClient__src_VirtualClient_VirtualClient.Monitors.UnitTests_Examples_"
        "nvidia-smi_query-gpu-4xT4.csv"
    ),
    "thermal-csv": "thermal_csv/tyee-ai__gpu_thermal__deploy_sh_heredoc__sample_thermal_failed.csv",
}
#: What tools write: an editor's UTF-8 BOM, PowerShell's ``>`` (UTF-16 LE with BOM), and the rest.
ENCODINGS = {
    "utf-8 BOM": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16 LE BOM": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16 BE BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "utf-32 LE BOM": lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
    "utf-32 BE BOM": lambda text: codecs.BOM_UTF32_BE + text.encode("utf-32-be"),
    "utf-16 LE, no BOM": lambda text: text.encode("utf-16-le"),
}


def landed(data: bytes, out: Path) -> tuple[str | None, pa.Table]:
    """Ingest ``data`` (detecting its format) and read back the rows that landed."""
    ctx = SourceContext(key="logs/node-1/telemetry.txt", object_time_ms=1_767_225_600_000, node="node-1")
    result = ingest(data, ctx, LocalSink(out), version="v", max_inflated=SizeLimit.uniform(2**30))
    assert result.failed is None, result.failed
    table = pq.read_table(out / "metrics", partitioning=None)
    return result.format, table.sort_by([("node", "ascending"), ("gpu", "ascending"), ("time", "ascending")])


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("fmt", FIXTURES)
def test_reencoded_fixture_parses_identically(tmp_path: Path, fmt: str, encoding: str) -> None:
    original = real_file(FIXTURES[fmt]).read_bytes()
    text = to_utf8(original).decode("utf-8")
    want_format, want = landed(original, tmp_path / "original")
    got_format, got = landed(ENCODINGS[encoding](text), tmp_path / "reencoded")
    assert (got_format, want_format) == (fmt, fmt)
    assert got.num_rows == want.num_rows > 0
    assert got.to_pylist() == want.to_pylist()
