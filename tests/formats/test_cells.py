"""Sections split in place (``_cells``, compiled) read exactly as Arrow's CSV reader reads them.

The reference is the path without the compiled split: Arrow's CSV reader, the Python rule for
numbers (``_values.to_numbers_python``) and for times (``timeutil.local_to_utc_ms``). Both must
give the same sections (cells, rejected rows, line numbers), the same times (DST changes
included) and byte-identical Parquet and quarantine, on odd text and on hypothesis logs; real
fixtures are compared in ``test_number_cells.py``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpulake.context import SourceContext
from gpulake.formats import _cells, _table, _values
from gpulake.formats.gpuz import GpuzFormat
from gpulake.timeutil import local_to_utc_ms
from gpulake_cli.simulate_fleet import gpuz_text, simulate_gpu
from tests.formats.test_number_cells import ODD_CELLS, number_texts, parsed

pytestmark = pytest.mark.skipif(
    not _cells.SPLIT, reason="compiled cell reader not built (no C compiler?); `make scanner` builds it"
)

HEADER = "        Date        , GPU Clock [MHz] , GPU Temperature [°C] , Hot Spot [°C] , PerfCap Reason [] , Name ,"
#: The header without degree signs: repeated among the rows, it is one the split can drop (ASCII).
ASCII_HEADER = HEADER.replace("°", "")
ZONES = ("UTC", "Europe/Berlin", "America/New_York")

#: Time cells the compiled reader must read as the rule does, or leave to it.
ODD_TIMES = [
    "2026-01-02 03:04:05", " 2026-01-02 03:04:05 ", "2026/01/02 03:04:05", "2026-01/02 03:04:05",
    "2026-01-02T03:04:05", "2024-02-29 12:00:00", "2023-02-29 12:00:00", "2026-04-31 00:00:00",
    "2026-13-01 00:00:00", "2026-00-10 00:00:00", "2026-01-00 00:00:00", "2026-01-02 24:00:00",
    "2026-01-02 23:60:00", "2026-01-02 23:59:60", "0000-01-01 00:00:00", "0001-01-01 00:00:00",
    "1969-12-31 23:59:59", "9999-12-31 23:59:59", "2026-1-02 03:04:05", "2026-01-02 3:04:05",
    "2026-01-02 03:04", "2026-01-02", "2026-01-02 03:04:05.123", "2026-01-02  03:04:05", "", "-",
    "2026-10-25 02:30:00", "2026-03-29 02:30:00", "2026-11-01 01:30:00", "2026-03-08 02:30:00",
    "\u00a02026-01-02 03:04:05", "2026-01-02 03:04:05\x1f", "２０２６-01-02 03:04:05", "2026-01-02x03:04:05",
    "+026-01-02 03:04:05", "2026-01-02 03:04:0a",
]  # fmt: skip


def sections(data: bytes, split: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """What read_sections gives, as plain values: names, cells, row lines, quarantine."""
    monkeypatch.setattr(_cells, "SPLIT", split)
    bad: list = []
    out = [
        (s.columns, s.num_rows, s.table.to_pydict(), s.row_lines(), s.rejected_lines(), s.header_line)
        for s in _table.read_sections(data, "Date", bad, "k")
    ]
    monkeypatch.setattr(_cells, "SPLIT", True)
    return [*out, bad]


def split_column(cells: list[str]) -> _cells.CellColumn | None:
    """A one-column section of ``cells`` (one per line), split in place (None: declined, non-ASCII)."""
    data = ("\n".join(cells) + "\n").encode()
    section = _cells.split(data, 0, len(data), 1, None)
    assert (section is None) == (not data.isascii())
    assert section is None or len(section.bounds) == len(cells)
    return _cells.CellColumn(section, 0) if section is not None else None


def assert_same_times(cells: list[str], tz: str) -> None:
    column = split_column(cells)
    if column is None:  # Arrow's reader and the rule read it
        return
    want = local_to_utc_ms(pa.array(cells, pa.string()), tz)
    assert column.strings().to_pylist() == cells
    assert _cells.local_times(column, tz).equals(want)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("cell", [c for c in ODD_TIMES if c.strip()])  # a blank line is no row
def test_each_odd_time_reads_as_the_rule_says(cell: str, tz: str) -> None:
    assert_same_times([cell], tz)


@pytest.mark.parametrize("tz", ZONES)
def test_plain_times_are_read_in_place_with_dst_changes_resolved_as_the_rule_does(tz: str) -> None:
    # GIVEN every half hour across both DST changes of 2026 (ambiguous and non-existent local times)
    base = np.datetime64("2026-03-07T00:00")
    stamps = [str(base + np.timedelta64(30 * i, "m")).replace("T", " ") + ":00" for i in range(24 * 2 * 250)]
    column = split_column(stamps)
    # WHEN the compiled reader reads them THEN it takes every cell itself (no fallback) ...
    naive, kinds = np.empty(len(stamps), np.int64), np.empty(len(stamps), np.uint8)
    bounds = column.section.bounds
    assert _values._number_cells_c.read_times(bounds, 1, 0, column.section.text, naive, kinds) == 0
    # ... and gives the rule's instants
    assert_same_times(stamps, tz)


@settings(max_examples=150, deadline=None)
@given(
    stamps=st.lists(st.datetimes(min_value=dt.datetime(1, 1, 1)), max_size=20),
    odd=st.lists(st.sampled_from(ODD_TIMES[:-10]), max_size=3),
    tz=st.sampled_from(ZONES),
)
def test_generated_times_read_as_the_rule_says(stamps: list, odd: list[str], tz: str) -> None:
    cells = [f"{s:%Y-%m-%d %H:%M:%S}".rjust(19, "0") for s in stamps] + [c for c in odd if c.strip()]
    if cells:
        assert_same_times(cells, tz)


def row(cells: list[str]) -> str:
    return ",".join(cells) + " ,"


#: One line of a GPU-Z log: a row (of the header's 7 cells), or something odd.
LINE = st.one_of(
    st.tuples(
        st.sampled_from(ODD_TIMES[:30]),
        st.lists(
            st.one_of(number_texts(), st.sampled_from([c for c in ODD_CELLS if c.isascii()])), min_size=5, max_size=5
        ),
    ).map(lambda t: row([t[0], *t[1]])),
    st.sampled_from(
        ["", " ", "2026-01-02 03:04:05 , 1 ,", ASCII_HEADER, "  " + ASCII_HEADER, "Date , x", "\x1c" + ASCII_HEADER[1:]]
    ),
    st.text(alphabet="0123456789 ,.-:\t\x0b", max_size=40),
)
#: Text that makes the split decline (Arrow's reader reads the section): a quote, non-ASCII, a lone CR.
DECLINED = st.sampled_from(
    ['2026-01-02 03:04:05 , "1" , 2 , 3 , 4 , x ,', "2026-01-02 03:04:05 , 1 , 2 , 3 , 4 , é ,", "\r"]
)


def log(lines: list[str], ends: list[str]) -> bytes:
    return "".join(line + end for line, end in zip(lines, ends)).encode()


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(LINE, max_size=25),
    ends=st.lists(st.sampled_from(["\r\n", "\n"]), min_size=27, max_size=27),
    declined=st.one_of(st.none(), st.tuples(st.integers(0, 25), DECLINED)),
    last=st.booleans(),
    header=st.sampled_from([HEADER, ASCII_HEADER]),
)
def test_generated_logs_split_as_arrow_reads_them(
    lines: list[str], ends: list[str], declined: tuple[int, str] | None, last: bool, header: str
) -> None:
    # GIVEN a GPU-Z log of rows, odd lines, repeated headers, mixed line ends (the last one maybe
    # missing), sometimes with a line the split leaves to Arrow's reader
    if declined is not None:
        lines.insert(min(declined[0], len(lines)), declined[1])
    data = log([header, *lines], ends) + (b"" if last else b"2026-01-02 03:04:05 , 7")
    with pytest.MonkeyPatch.context() as monkeypatch:
        # WHEN it is read split in place and by Arrow's reader THEN the sections are the same
        assert sections(data, True, monkeypatch) == sections(data, False, monkeypatch)
        # AND the whole parse (local times in Europe/Berlin) gives byte-identical Parquet and quarantine
        reference = parsed("gpuz", data, _values.to_numbers_python, monkeypatch, split=False)
        assert parsed("gpuz", data, _values.to_numbers_compiled, monkeypatch) == reference


@pytest.mark.parametrize(
    "odd",
    [b'"quoted", 1', "caf\u00e9 , 1".encode(), b"lone\rreturn , 1", b"ends in a return , 1\r"],
    ids=["quote", "non-ascii", "lone-cr", "final-cr"],
)
def test_text_arrow_could_read_otherwise_is_left_to_it(odd: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a section with something the split does not read as Arrow would (GIVEN bytes after the header)
    data = b"Date , a\n2026-01-02 03:04:05 , 1\n" + odd
    # WHEN it is split THEN the compiled reader declines ...
    assert _cells.split(data, 9, len(data), 2, None) is None
    # ... and the section is what Arrow's reader makes of it
    assert sections(data, True, monkeypatch) == sections(data, False, monkeypatch)


def test_a_repeated_header_behind_a_unicode_separator_is_left_to_arrow(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a header repeated among the rows, and a row whose first cell is the header's behind 0x1C
    # (Arrow's Unicode trim removes it, an ASCII trim would not)
    header = ASCII_HEADER  # a repeated header with a degree sign is left to Arrow anyway (non-ASCII)
    first = "2026-01-02 03:04:05 , 1 , 2 , 3 , 4 , x ,"
    data = "\r\n".join([header, first, header, "\x1c" + header[1:], first, ""]).encode()
    # WHEN it is read THEN that row is dropped as Arrow's reader drops it (the split declines the section)
    reference = sections(data, False, monkeypatch)
    assert reference[0][1] == 2
    assert sections(data, True, monkeypatch) == reference


def test_the_bench_log_is_read_without_arrows_csv_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a simulated GPU-Z log as the benchmark writes it (cp1252 header, padded cells, CRLF)
    steps = 600
    times = 1_793_000_000_000 + np.arange(steps, dtype=np.int64) * 1000
    data = gpuz_text(simulate_gpu(np.random.default_rng(1), steps, 1.0, 400.0, True), times)

    def no_arrow(*args: object) -> None:
        raise AssertionError("Arrow's CSV reader was used")

    # WHEN gpulake parses it with Arrow's CSV reader unavailable
    monkeypatch.setattr(_table, "_read_csv", no_arrow)
    result = GpuzFormat().parse(data, SourceContext(key="k", object_time_ms=0))
    # THEN every row is read in place, at the simulated times
    assert result.rows == steps and not result.bad_rows
    assert result.batches[0].column("time").cast(pa.int64()).to_pylist() == times.tolist()


def test_misuse_of_the_split_functions_is_refused() -> None:
    c = _values._number_cells_c
    text = b"1,2\n3,4\n"
    bounds, rejected = np.empty((2, 3), np.int32), np.empty(4, np.int32)
    assert c.split(text, 2, b"", bounds, rejected) == (2, 0)
    with pytest.raises(ValueError, match="a row per line"):
        c.split(text, 2, b"", np.empty((1, 3), np.int32), rejected)
    with pytest.raises(ValueError, match="ncols must be >= 1"):
        c.split(text, 0, b"", bounds, rejected)
    values, kinds, others = np.empty((2, 2)), np.empty((2, 2), np.uint8), np.empty(2, np.int64)
    assert c.classify_rows(bounds, 2, text, values, kinds, others) == 0
    assert values.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    with pytest.raises(ValueError, match="others ncols int64"):
        c.classify_rows(bounds, 2, text, values, kinds, np.empty(1, np.int64))
    with pytest.raises(ValueError, match="outside the text"):
        c.classify_rows(bounds, 2, b"1,", values, kinds, others)
    with pytest.raises(ValueError, match="a column below ncols"):
        c.read_times(bounds, 2, 2, text, np.empty(2, np.int64), np.empty(2, np.uint8))
    with pytest.raises(ValueError, match="shorter than the cells"):
        c.gather(bounds, 2, 0, text, bytearray(1), np.empty(3, np.int32))
