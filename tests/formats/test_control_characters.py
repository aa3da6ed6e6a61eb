"""No control character reaches a stored string, in any format: each becomes U+FFFD."""

from __future__ import annotations

import re

import pyarrow as pa

from gpulake import schema
from gpulake.formats.base import ParseResult
from tests.conftest import real_file
from tests.formats.helpers import parse, rows

CONTROL = re.compile(schema.CONTROL_CHARACTERS)
T4 = (
    "nvidia_smi/microsoft__VirtualClient__src_VirtualClient_VirtualClient.Monitors.UnitTests_Examples_"
    "nvidia-smi_query-gpu-4xT4.csv"
)


def stored_strings(result: ParseResult) -> list[str]:
    """Every string value and map key of the parsed rows."""
    out: list[str] = []
    for row in rows(result):
        for value in row.values():
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, dict):
                out.extend(value)
                out.extend(v for v in value.values() if isinstance(v, str))
    return out


def test_nul_in_dcgm_labels_and_hostname_is_replaced() -> None:
    text = 'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="node\x00x",pod="a\x00b",modelName="H\\n100"} 40\n'
    result = parse(text.encode(), "dcgm")
    (row,) = rows(result)
    assert (row["node"], row["labels"]["pod"], row["gpu_model"]) == ("node\ufffdx", "a\ufffdb", "H\ufffd100")
    assert not any(CONTROL.search(s) for s in stored_strings(result))


def test_a_flipped_byte_in_an_nvidia_smi_name_cell_is_replaced() -> None:
    original = real_file(T4).read_bytes()
    for flipped in (b"\x00", b"\x07", b"\x1b"):
        damaged = original.replace(b"Tesla T4", b"Tesla" + flipped + b"T4", 1)
        result = parse(damaged, "nvidia-smi")
        models = [r["gpu_model"] for r in rows(result)]
        assert models == ["Tesla\ufffdT4", "Tesla T4", "Tesla T4", "Tesla T4"]
        assert not any(CONTROL.search(s) for s in stored_strings(result))


def test_control_characters_in_csv_labels_and_nodes_are_replaced() -> None:
    data = b"node,timestamp,gpu_id,temp,reason\nrack\x01a,2026-01-01 00:00:00,GPU_1,50,hot\x7f\n"
    (row,) = rows(parse(data, "thermal-csv"))
    assert (row["node"], row["labels"]["reason"]) == ("rack\ufffda", "hot\ufffd")


def test_clean_text_keeps_ordinary_text() -> None:
    col = pa.array(["NVIDIA H100 80GB HBM3", "°C", None, "tab\there"])
    assert schema.clean_text(col).to_pylist() == ["NVIDIA H100 80GB HBM3", "°C", None, "tab\ufffdhere"]
