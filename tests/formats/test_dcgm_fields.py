"""The name table in ``dcgm_fields`` checked against dcgm-exporter's real counters lists
and the field ids of DCGM 4.6's ``dcgm_fields.h``."""

from __future__ import annotations

import csv

import pytest

from gpulake import formats
from gpulake.errors import InputRejected
from gpulake.formats.dcgm_fields import BY_NAME, FIELDS
from tests.conftest import real_file, real_files

COUNTERS = "dcgm/counters/"


def field_ids() -> dict[str, int]:
    path = real_file(COUNTERS + "DERIVED__NVIDIA__DCGM__dcgm_fields_h__field_ids.csv")
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {row["field_name"]: int(row["field_id"]) for row in csv.DictReader(lines)}


def counter_names(path: str) -> list[str]:
    names = []
    for line in real_file(COUNTERS + path).read_text().splitlines():
        cell = line.split(",", 1)[0].strip()
        if cell and not cell.startswith("#"):
            names.append(cell)
    return names


def test_every_canonical_dcgm_name_has_the_field_id_we_claim() -> None:
    ids = field_ids()
    for field in FIELDS:
        for name in field.names:
            if name.startswith("DCGM_FI_"):
                assert ids[name] == field.field_id, name


def test_dcgm_4_6_renames_resolve_to_the_same_column() -> None:
    assert BY_NAME["DCGM_FI_DEV_GPU_TEMP_CELSIUS"][0] == BY_NAME["DCGM_FI_DEV_GPU_TEMP"][0] == "gpu_temp_c"
    assert BY_NAME["DCGM_FI_DEV_BOARD_POWER_WATTS"][0] == "power_w"
    assert BY_NAME["DCGM_FI_DEV_CLOCKS_EVENT_REASONS"][0] == BY_NAME["DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"][0]
    assert BY_NAME["DCGM_FI_DEV_GPU_UTIL_RATIO"] == ("util_pct", 100.0)


@pytest.mark.parametrize(
    "path",
    [
        "NVIDIA__dcgm-exporter__HEAD-d5e5f51__default-counters.csv",
        "NVIDIA__dcgm-exporter__tag-4.4.1-4.6.0__default-counters.csv",
        "NVIDIA__dcgm-exporter__tag-3.3.5-3.4.1__default-counters.csv",
        "NVIDIA__dcgm-exporter__tag-2.4.7-2.6.11__default-counters.csv",
    ],
)
def test_default_counters_of_every_version_fill_the_core_columns(path: str) -> None:
    mapped = {BY_NAME[n][0] for n in counter_names(path) if n in BY_NAME}
    assert {"gpu_temp_c", "mem_temp_c", "power_w", "util_pct", "sm_clock_mhz", "mem_clock_mhz", "fb_used_mib"} <= mapped


def test_1x_compatibility_names_map_like_their_modern_twins() -> None:
    names = counter_names("NVIDIA__dcgm-exporter__HEAD-d5e5f51__1.x-compatibility-metrics.csv")
    mapped = {BY_NAME[n][0] for n in names if n in BY_NAME}
    assert mapped == {"gpu_temp_c", "mem_temp_c", "power_w", "util_pct", "sm_clock_mhz", "mem_clock_mhz", "fb_used_mib"}


@pytest.mark.parametrize("path", real_files("dcgm/counters"), ids=lambda p: p.name)
def test_counter_lists_uploaded_by_mistake_are_rejected_clearly(path) -> None:
    with pytest.raises(InputRejected, match="list of DCGM fields"):
        formats.detect(path.read_bytes(), path.name)
