"""nvidia-smi logs without index, uuid or pci.bus_id: GPUs by their position in each sampling round."""

from __future__ import annotations

import numpy as np
import pytest

from gpulake.formats._rounds import gpus_per_round
from tests.conftest import real_file
from tests.formats.helpers import parse, rows

PREFIX = "nvidia_smi/microsoft__VirtualClient__src_VirtualClient_VirtualClient.Monitors.UnitTests_Examples_nvidia-smi_"
T4 = PREFIX + "query-gpu-4xT4.csv"
H100 = PREFIX + "query-gpu-8xH100.csv"
ID_FIELDS = ("index", "uuid", "pci.bus_id")


def without_ids(data: bytes) -> bytes:
    """The same log with its id columns cut out of every line."""
    lines = data.decode().splitlines()
    header = [c.strip() for c in lines[0].split(",")]
    keep = [i for i, name in enumerate(header) if name not in ID_FIELDS]
    return "\n".join(", ".join(line.split(",")[i].strip() for i in keep) for line in lines).encode() + b"\n"


def readings(data: bytes) -> list[tuple]:
    out = rows(parse(data, "nvidia-smi"))
    return [(r["time"], r["gpu_temp_c"], r["util_pct"], r["fb_used_mib"], r["power_w"]) for r in out]


def rounds(data: bytes, count: int, every_ms: int) -> bytes:
    """``count`` sampling rounds: the log's rows repeated, each round ``every_ms`` later."""
    head, *body = data.decode().splitlines()
    out = [head]
    for n in range(count):
        for line in body:
            stamp, rest = line.split(",", 1)
            ms = int(stamp[-3:]) + n * every_ms
            minute = int(stamp[-9:-7]) + ms // 60000
            out.append(f"{stamp[:-9]}{minute:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d},{rest}")
    return "\n".join(out).encode() + b"\n"


@pytest.mark.parametrize(("fixture", "gpus"), [(T4, 4), (H100, 8)])
def test_one_round_without_ids_keeps_every_gpu(fixture: str, gpus: int) -> None:
    original = real_file(fixture).read_bytes()
    stripped = without_ids(original)
    assert not any(f in stripped.split(b"\n")[0].decode() for f in ID_FIELDS)
    got = rows(parse(stripped, "nvidia-smi"))
    assert sorted({r["gpu"] for r in got}) == [str(i) for i in range(gpus)]
    assert sorted(readings(stripped)) == sorted(readings(original))


def test_many_rounds_without_ids_tell_gpus_apart_by_position() -> None:
    original = rounds(real_file(T4).read_bytes(), count=5, every_ms=2000)
    stripped = without_ids(original)
    by_bus = {}
    for r in rows(parse(original, "nvidia-smi")):
        by_bus.setdefault(r["gpu"], []).append(r["gpu_temp_c"])
    by_position = {}
    for r in rows(parse(stripped, "nvidia-smi")):
        by_position.setdefault(r["gpu"], []).append(r["gpu_temp_c"])
    assert len(by_position) == 4 and sorted(by_position.values()) == sorted(by_bus.values())
    assert all(len(v) == 5 for v in by_position.values())


@pytest.mark.parametrize(
    "fixture",
    [
        "nvidia_smi/PranavDani__Flame__nvidia-smi.csv",
        "nvidia_smi/yqg9651__cuda_test__a100_250w_pcie_fp16_burst__burst_fp16_half_maxpower.csv",
        "nvidia_smi/yqg9651__cuda_test__h100_350_pcie_fp8_burst__burst_fp_e4m3_bf16_normal_maxpower__first2000lines.csv",
    ],
)
def test_single_gpu_logs_without_ids_stay_one_gpu(fixture: str) -> None:
    assert {r["gpu"] for r in rows(parse(real_file(fixture).read_bytes(), "nvidia-smi"))} == {"0"}


def test_rounds_from_timestamps() -> None:
    assert gpus_per_round(np.array([0, 5, 10])) == 3  # one round (under a second)
    steady = np.arange(0, 20_000, 1000)
    assert gpus_per_round(steady) == 1
    two = np.array([t + d for t in range(0, 10_000, 1000) for d in (0, 20)])
    assert gpus_per_round(two) == 2
    assert gpus_per_round(np.array([0, 1000, 182_000])) == 1  # one long pause is not a round pattern
