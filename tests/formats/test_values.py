"""One rule for special values in every format: NaN is no value, inf and impossible readings are quarantined,
and only DCGM's exact blank sentinels are blanks."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpulake.formats._table import _header_spans
from gpulake.formats.dcgm import BLANK_SENTINELS, is_blank
from tests.formats.helpers import parse, rows

DCGM = 'DCGM_FI_DEV_GPU_TEMP{{gpu="0",UUID="GPU-a",Hostname="n1"}} {value} {ts}\n'


def dcgm(values: list[str]) -> bytes:
    return "".join(DCGM.format(value=v, ts=1_767_225_600_000 + i * 1000) for i, v in enumerate(values)).encode()


def nvidia_smi(values: list[str]) -> bytes:
    lines = ["timestamp, index, temperature.gpu, power.draw [W]"]
    lines += [f"2026/01/01 00:00:{i:02d}.000, 0, {v}, 100.0 W" for i, v in enumerate(values)]
    return "\n".join(lines).encode() + b"\n"


def gpuz(values: list[str]) -> bytes:
    lines = ["        Date        , GPU Temperature [°C] , Board Power Draw [W] ,"]
    lines += [f"2026-01-01 00:00:{i:02d} , {v} , 100.0 ," for i, v in enumerate(values)]
    return "\r\n".join(lines).encode() + b"\r\n"


def thermal(values: list[str]) -> bytes:
    lines = ["node,timestamp,gpu_id,temp"] + [f"n1,2026-01-01 00:00:{i:02d},GPU_0,{v}" for i, v in enumerate(values)]
    return "\n".join(lines).encode() + b"\n"


BUILDERS: dict[str, Callable[[list[str]], bytes]] = {
    "dcgm": dcgm,
    "nvidia-smi": nvidia_smi,
    "gpuz": gpuz,
    "thermal-csv": thermal,
}
#: value -> what must become of it: a number that lands, None (lands as null) or "quarantined"
CASES = {
    "45": 45.0,
    "nan": None,
    "NaN": None,
    "-nan": None,
    "inf": "quarantined",
    "-Inf": "quarantined",
    "1e309": "quarantined",
    "1e308": "quarantined",
    "-1e308": "quarantined",
    "-300": "quarantined",
    "1000.5": "quarantined",
    "-20": -20.0,
}


@pytest.mark.parametrize("fmt", BUILDERS)
def test_special_values_follow_one_rule_in_every_format(fmt: str) -> None:
    values = list(CASES)
    result = parse(BUILDERS[fmt](values), fmt)
    landed = {r["time"].second: r["gpu_temp_c"] for r in rows(result)}
    for second, value in enumerate(values):
        want = CASES[value]
        if want == "quarantined":
            assert second not in landed, (fmt, value)
        else:
            assert landed.get(second, "missing") == want, (fmt, value)
    reasons = [b.reason for b in result.bad_rows]
    assert len(reasons) == list(CASES.values()).count("quarantined"), reasons
    assert all("impossible value" in r or "does not hold a number" in r for r in reasons), reasons


def test_negative_power_is_impossible() -> None:
    data = b"timestamp, index, power.draw [W]\n2026/01/01 00:00:00.000, 0, -5 W\n2026/01/01 00:00:01.000, 0, 5 W\n"
    result = parse(data, "nvidia-smi")
    assert [r["power_w"] for r in rows(result)] == [5.0]
    assert [b.reason for b in result.bad_rows] == ["power_w: impossible value -5 (possible: 0..100000)"]


def test_only_exact_dcgm_sentinels_are_blank() -> None:
    assert len(BLANK_SENTINELS) == 12
    assert is_blank(b"9223372036854775794")  # DCGM_INT64_NOT_SUPPORTED
    assert is_blank(b"2147483632") and is_blank(b"2147483635")  # INT32 BLANK .. NOT_PERMISSIONED
    assert is_blank(b"140737488355329.000000")  # DCGM_FP64_NOT_FOUND printed with %f
    assert not is_blank(b"9223372036854775000")  # rounds to the same float, but is not a sentinel
    assert not is_blank(b"9.3e18") and not is_blank(b"2147483636") and not is_blank(b"140737488355340")
    text = (
        'DCGM_FI_DEV_MEMORY_TEMP{gpu="0",UUID="a"} 9223372036854775794 1767225600000\n'
        'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="a"} 9223372036854775000 1767225600000\n'
        'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="a"} 9300000000000000000 1767225600000\n'
        'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="a"} 140737488355328.000000 1767225600000\n'
    )
    result = parse(text.encode(), "dcgm")
    (row,) = rows(result)
    assert (row["mem_temp_c"], row["gpu_temp_c"], row["power_w"]) == (None, None, None)
    assert row["extra"] == {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 9.3e18}  # a large reading, not a blank
    assert [b.line for b in result.bad_rows] == [2]


def test_a_bitmask_a_double_cannot_hold_exactly_is_impossible_not_a_crash() -> None:
    data = (
        b"timestamp, index, clocks_event_reasons.active\n"
        b"2026/01/01 00:00:00.000, 0, 0xFFFFFFFFFFFFFFFF\n2026/01/01 00:00:01.000, 0, 0x0000000000000004\n"
    )
    result = parse(data, "nvidia-smi")
    assert [r["throttle_reasons"] for r in rows(result)] == [4]
    assert [b.line for b in result.bad_rows] == [2] and "impossible value" in result.bad_rows[0].reason


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from(
            ["Date , a ,", "  Date,b", "\tDate\t,", "x Date , c", "Update , d", "Date", "1,2", "", "DateX ,"]
        ),
        max_size=30,
    )
)
def test_header_lines_are_found_as_the_anchored_pattern_finds_them(lines: list[str]) -> None:
    data = "\n".join(lines).encode()
    anchored = re.compile(rb"^[ \t]*Date[ \t]*,[^\n]*", re.M)  # the definition: a header line
    assert list(_header_spans(data, "Date")) == [(m.start(), m.end()) for m in anchored.finditer(data)]
