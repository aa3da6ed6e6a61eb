"""Each shortcut the table formats take for speed gives exactly what the plain way gives.

cp1252 converted block by block (``decode._cp1252_to_utf8``) against a whole decode and encode;
the fixed-width time check (``timeutil._fixed_width_iso``) and the ASCII trim
(``timeutil._trims_as_ascii``) against Arrow's regex and UTF-8 trim; the map columns
(``schema.numeric_map``) against a row-by-row build.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from gpulake import decode, schema, timeutil
from gpulake.context import SourceContext
from gpulake.decode import Inflating, Utf8Lines

BLOCK = decode._CP1252_BLOCK

#: Byte strings around the conversion's block edges, mostly ASCII with some high bytes.
mostly_ascii = st.tuples(
    st.integers(0, 3 * BLOCK),
    st.lists(st.tuples(st.integers(0, 3 * BLOCK), st.integers(0x80, 0xFF)), max_size=6),
).map(lambda spec: bytes(_with_high_bytes(*spec)))


def _with_high_bytes(size: int, high: list[tuple[int, int]]) -> bytearray:
    data = bytearray(b"a,1 ,\r\n" * (size // 7 + 1))[:size]
    for at, byte in high:
        if at < size:
            data[at] = byte
    return data


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(mostly_ascii, st.binary(max_size=300)))
def test_cp1252_blocks_convert_like_the_whole_text(data: bytes) -> None:
    whole = data.decode("cp1252", errors="replace").encode("utf-8")
    assert decode._cp1252_to_utf8(data) == whole
    # the streaming reader (ingest's path) gives the same text, piece by piece ("x" first: no gzip magic, no BOM)
    text = b"x" + data
    pieces = [text[i : i + 1000] for i in range(0, len(text), 1000)]
    streamed = b"".join(bytes(p) for p in Utf8Lines(Inflating(pieces, "k", 1 << 30), encoding="cp1252"))
    assert streamed == b"x" + whole


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(mostly_ascii, st.binary(max_size=5000), st.text(max_size=3000).map(str.encode)))
def test_utf8_check_agrees_with_a_decode(data: bytes) -> None:
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert decode._is_utf8(data) == valid


ISO_SHAPES = ["2026-10-26 07:33:20", "2026-10-26T07:33:20.123", "2026-10-26", "2026-10-26 07:33"]
ISO_SHAPES += ["2026-10-26 07:33:20.123456789", "2026-10-26 07:33:20.1234567890", "2026-10-26 07:33:2"]
ISO_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?", re.ASCII)


@st.composite
def time_columns(draw: st.DrawFn) -> list[str]:
    """Cells of one shape (a log's column), some with characters swapped for look-alikes."""
    shape = draw(st.sampled_from(ISO_SHAPES))
    cells = []
    for _ in range(draw(st.integers(1, 6))):
        cell = list(shape)
        for _ in range(draw(st.integers(0, 2))):
            cell[draw(st.integers(0, len(cell) - 1))] = draw(st.sampled_from("0123456789-: T./xdZ\x00\u00e9"))
        cells.append("".join(cell))
    return cells


@settings(max_examples=300, deadline=None)
@given(cells=time_columns(), offset=st.integers(0, 2))
def test_fixed_width_time_check_matches_the_regex(cells: list[str], offset: int) -> None:
    col = pa.array(["pad"] * offset + cells)[offset:]
    regex = pc.fill_null(pc.match_substring_regex(col, timeutil._ISO_LIKE), False).to_pylist()
    assert regex == [bool(ISO_LIKE.fullmatch(c)) for c in cells]
    fixed = timeutil._fixed_width_iso(col)
    if len({len(c.encode()) for c in cells}) == 1 and len(cells[0].encode()) in timeutil._ISO_WIDTHS:
        assert fixed is not None and fixed.tolist() == regex
    else:
        assert fixed is None  # ragged or impossible widths take the regex


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(st.text(alphabet=[chr(b) for b in range(128)] + ["\u00a0", "\u2003", "\x85"], max_size=5)))
def test_ascii_trim_is_used_only_where_it_trims_like_utf8(cells: list[str]) -> None:
    col = pa.array(cells, pa.string())
    raw = np.frombuffer(col.buffers()[2], dtype=np.uint8) if col.buffers()[2] is not None else np.zeros(0, np.uint8)
    if timeutil._trims_as_ascii(raw):
        assert pc.ascii_trim_whitespace(col).equals(pc.utf8_trim_whitespace(col))


def test_local_times_read_the_same_fixed_width_or_not() -> None:
    # GIVEN one column of fixed-width times and the same times made ragged by one cell
    times = [" 2026-10-25 02:30:00 ", "2026/03/29 02:30:00", "2026-02-30 10:00:00", "2026-10-2x 10:00:00"]
    fixed = pa.array(times)
    ragged = pa.array([*times, "2026-10-26"])
    for tz in ("UTC", "Europe/Berlin"):
        # WHEN both are read THEN the shared cells get the same instants (or nulls)
        assert timeutil.local_to_utc_ms(fixed, tz).to_pylist() == timeutil.local_to_utc_ms(ragged, tz).to_pylist()[:4]
    assert timeutil.local_to_utc_ms(fixed, "UTC").to_pylist()[2:] == [None, None]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(0, 40),
    names=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=5, unique=True),
    data=st.data(),
)
def test_numeric_map_holds_each_rows_present_values_in_name_order(rows: int, names: list[str], data) -> None:
    values = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
    columns = {name: data.draw(st.lists(values, min_size=rows, max_size=rows)) for name in names}
    got = schema.numeric_map(rows, {k: np.array(v, dtype=float) for k, v in columns.items()}).to_pylist()
    want = [[(k, columns[k][i]) for k in sorted(columns) if columns[k][i] is not None] for i in range(rows)]
    assert got == want


def test_gpuz_header_with_cp1252_degrees_reads_like_its_utf8_copy() -> None:
    from gpulake.formats.gpuz import GpuzFormat

    text = "Date , GPU Temperature [°C] ,\n" + "".join(f"2026-01-01 00:00:{s:02d} , {40 + s} ,\n" for s in range(60))
    ctx = SourceContext(key="k", object_time_ms=0)
    cp1252 = GpuzFormat().parse(text.encode("cp1252") * 300, ctx)
    utf8 = GpuzFormat().parse(text.encode("utf-8") * 300, ctx)
    assert [b.to_pylist() for b in cp1252.batches] == [b.to_pylist() for b in utf8.batches]
    assert cp1252.rows == 18000
