"""dcgm parser behaviour on small hand-written scrapes (markers, renames, bad lines)."""

from __future__ import annotations

from tests.formats.helpers import parse, rows, utc

LABELS = 'gpu="0",UUID="GPU-a",modelName="NVIDIA H100 80GB HBM3",hostname="node-7"'
LABELS_GPU1 = LABELS.replace('gpu="0"', 'gpu="1"')


def test_markers_split_scrapes_and_sample_timestamps_win() -> None:
    text = (
        "# gpulake-scrape 1767225600000\n"
        f"DCGM_FI_DEV_GPU_TEMP{{{LABELS}}} 40\n"
        f"DCGM_FI_DEV_GPU_TEMP_CELSIUS{{{LABELS_GPU1}}} 41\n"
        "# gpulake-scrape 1767225610000\n"
        f"DCGM_FI_DEV_GPU_TEMP{{{LABELS}}} 42\n"
        f"DCGM_FI_DEV_POWER_USAGE{{{LABELS}}} 300.5 1767225615123\n"
    )
    out = rows(parse(text.encode(), "dcgm"))
    got = sorted((utc(r), r["node"], r["gpu"], r["gpu_temp_c"], r["power_w"]) for r in out)
    assert got == [
        ("2026-01-01T00:00:00.000Z", "node-7", "0", 40.0, None),
        ("2026-01-01T00:00:00.000Z", "node-7", "1", 41.0, None),
        ("2026-01-01T00:00:10.000Z", "node-7", "0", 42.0, None),
        ("2026-01-01T00:00:15.123Z", "node-7", "0", None, 300.5),
    ]


def test_xid_error_labels_do_not_split_the_gpu_row() -> None:
    text = (
        f'DCGM_FI_DEV_XID_ERRORS{{{LABELS},err_code="79",err_msg="GPU has fallen off the bus"}} 79\n'
        f"DCGM_FI_DEV_GPU_TEMP{{{LABELS}}} 50\n"
        f'DCGM_EXP_CLOCK_EVENTS_COUNT{{{LABELS},clock_event="power_cap"}} 3\n'
        f'DCGM_EXP_CLOCK_EVENTS_COUNT{{{LABELS},clock_event="sw_thermal"}} 1\n'
        f"DCGM_FI_DEV_GPU_UTIL_RATIO{{{LABELS}}} 0.5\n"
        f"DCGM_FI_DEV_CLOCKS_EVENT_REASONS{{{LABELS}}} 36\n"
    )
    (row,) = rows(parse(text.encode(), "dcgm"))
    assert row["gpu_temp_c"] == 50.0
    assert row["util_pct"] == 50.0
    assert row["throttle_reasons"] == 0x24
    assert row["extra"]["DCGM_FI_DEV_XID_ERRORS"] == 79.0
    assert row["extra"]['DCGM_EXP_CLOCK_EVENTS_COUNT{clock_event="power_cap"}'] == 3.0
    assert row["extra"]['DCGM_EXP_CLOCK_EVENTS_COUNT{clock_event="sw_thermal"}'] == 1.0
    assert row["labels"]["err_msg"] == "GPU has fallen off the bus"


def test_bad_lines_are_quarantined_with_line_numbers_and_good_lines_land() -> None:
    text = (
        f"DCGM_FI_DEV_GPU_TEMP{{{LABELS}}} 40\r\n"
        f"DCGM_FI_DEV_POWER_USAGE{{{LABELS}}} hot\r\n"
        'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="x" oops} 1\r\n'
        f"DCGM_FI_DEV_SM_CLOCK{{{LABELS}}} NaN\r\n"
        f"DCGM_FI_DEV_MEM_CLOCK{{{LABELS}}} 1000 99\r\n"
        f"DCGM_FI_DEV_FB_USED{{{LABELS}}} 2147483632\r\n"
        "# gpulake-scrape soon\r\n"
    )
    result = parse(text.encode(), "dcgm")
    (row,) = rows(result)
    assert row["gpu_temp_c"] == 40.0
    assert row["sm_clock_mhz"] is None and row["fb_used_mib"] is None
    assert [(b.line, b.reason.split(" ")[0]) for b in result.bad_rows] == [
        (2, "sample"),
        (3, "cannot"),
        (5, "timestamp"),
        (7, "scrape"),
    ]


def test_escaped_label_values_are_unescaped() -> None:
    text = 'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="u",Hostname="a\\"b\\\\c",pod="x\\ny"} 1\n'
    (row,) = rows(parse(text.encode(), "dcgm"))
    assert row["node"] == 'a"b\\c'
    assert row["labels"]["pod"] == "x\ufffdy"  # unescaped, then the control-character rule
