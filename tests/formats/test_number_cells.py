"""The compiled cell reader (``_number_cells_c``) and the Python rule give identical results.

(Sections split in place and their times: ``test_cells.py``.)

``_values.to_numbers_compiled`` reads plain numbers, ``""`` and ``-`` in C and hands every
other cell to ``to_numbers_python``; both must give the same float64 values (bit for bit,
nulls in the same places) and the same "not a number" flags, on odd cells, on hypothesis
columns and, through the table formats, as byte-identical Parquet and quarantine on every
real GPU-Z, nvidia-smi and thermal CSV fixture.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpulake import formats
from gpulake.context import SourceContext
from gpulake.formats import _cells, _values
from gpulake.output.parquet import to_parquet_bytes
from tests.conftest import real_files

needs_compiled = pytest.mark.skipif(
    not _values.COMPILED, reason="compiled cell reader not built (no C compiler?); `make scanner` builds it"
)

#: Cells whose reading is easy to get subtly wrong (no newline inside: the arm64 test splits on lines).
ODD_CELLS = [
    "1e3", " 12.5 ", "-", "", "  ", "nan", "NaN", "-nan", "+NaN", "inf", "-inf", "Infinity", "+1", "1,5",
    "0x10", "0X1F", "0x", "\u00a012\u00a0", "\u2003 7 ", "\u3000", "\x1f5\x1f", "\t3\r", "\x0b4\x0c", "1_0",
    "1e309", "-1e309", "1e-400", "4.9e-324", "2.2250738585072014e-308", "1.7976931348623157e308", "-0", "-0.0",
    "+.5", ".5", "5.", ".", "+", "-.", "e5", "1e", "1e+", "1E+03", "1.5e-3 %", "12 W", "45W", "Active",
    "Not Active", "N/A", "[N/A]", "[Not Supported]", "NA", "n/a", "Unknown", "abc", "99999999", "0.1",
    "0.30000000000000004", "123456789012345", "1234567890123456", "12345678901234567890", "9007199254740993",
    "0.000000000000000000001", "000000000000000000012.5", "1e22", "1e23", "123456789012345e-22", "1.5 1",
    "--1", "+-1", "1e99999999999999999999", "0" * 70 + "1", "1" * 70,
]  # fmt: skip


def both(cells: list[str | None], offset: int = 0) -> tuple[_values.NumericColumn, _values.NumericColumn]:
    """The Python rule's and the compiled reader's result for one column (sliced when ``offset``)."""
    col = pa.array(["pad"] * offset + cells, pa.string())[offset:]
    return _values.to_numbers_python(col), _values.to_numbers_compiled(col)


def assert_same(python: _values.NumericColumn, compiled: _values.NumericColumn) -> None:
    assert python.values.type == compiled.values.type == pa.float64()
    assert python.values.is_valid().to_pylist() == compiled.values.is_valid().to_pylist()
    assert python.bad.to_pylist() == compiled.bad.to_pylist()
    valid = python.values.is_valid().to_numpy(zero_copy_only=False)
    want = python.values.to_numpy(zero_copy_only=False)[valid]
    got = compiled.values.to_numpy(zero_copy_only=False)[valid]
    assert want.tobytes() == got.tobytes()  # bit for bit: the sign of -0.0 and the last ulp count


@needs_compiled
@pytest.mark.parametrize("cell", ODD_CELLS)
def test_each_odd_cell_reads_the_same(cell: str) -> None:
    assert_same(*both([cell]))


@needs_compiled
def test_the_cells_read_as_the_rule_says() -> None:
    # GIVEN cells of each kind WHEN the compiled reader reads them
    _, compiled = both([" 12.5 ", "-", "", "1e3", "+1", "nan", "inf", "1,5", "0x10", "\u00a07\u00a0", "-0"])
    values, bad = compiled.values.to_pylist(), compiled.bad.to_pylist()
    # THEN numbers are numbers, '-' and '' are no value, NaN is no value, inf and '1,5' are not numbers
    assert values == [12.5, None, None, 1000.0, 1.0, None, None, None, 16.0, 7.0, -0.0]
    assert bad == [False, False, False, False, False, False, True, True, False, False, False]
    assert np.signbit(values[-1])


@needs_compiled
def test_all_odd_cells_in_one_column_with_nulls_and_an_offset() -> None:
    cells: list[str | None] = [*ODD_CELLS, None, "7", None]
    for offset in (0, 3):
        assert_same(*both(cells, offset))
    assert_same(*both([]))
    assert_same(*both([None, None]))


def number_texts() -> st.SearchStrategy[str]:
    """Numbers as logs print them: fixed, exponent, padded, signed, shortest repr."""
    floats = st.floats(allow_nan=False, allow_infinity=False)
    return st.one_of(
        floats.map(repr),
        floats.map(lambda x: f"{x:.1f}"),
        floats.map(lambda x: f"{x:e}"),
        st.integers(-(10**25), 10**25).map(str),
        st.tuples(st.integers(0, 10**17), st.integers(0, 10**9), st.integers(-30, 30)).map(
            lambda t: f"{t[0]}.{t[1]}e{t[2]}"
        ),
    )


CELL = st.one_of(
    st.sampled_from(ODD_CELLS),
    number_texts(),
    st.tuples(st.sampled_from([" ", "  ", "\t", "", "\n", "\u00a0"]), number_texts(), st.sampled_from([" ", ""])).map(
        "".join
    ),
    st.text(alphabet="0123456789.eE+-xXa nN_,\t[]%W", max_size=8),
)


@needs_compiled
@settings(max_examples=400, deadline=None)
@given(cells=st.lists(st.one_of(CELL, st.none()), max_size=30), offset=st.integers(0, 2))
def test_generated_columns_read_the_same(cells: list[str | None], offset: int) -> None:
    assert_same(*both(cells, offset))


@needs_compiled
def test_misuse_of_classify_is_refused() -> None:
    values, kinds = np.zeros(2), np.zeros(2, dtype=np.uint8)
    with pytest.raises(ValueError, match="n \\+ 1 int32"):
        _values._number_cells_c.classify(np.array([0, 1], dtype=np.int32), b"12", values, kinds)
    with pytest.raises(ValueError, match="outside the data buffer"):
        _values._number_cells_c.classify(np.array([0, 1, 9], dtype=np.int32), b"12", values, kinds)
    with pytest.raises(BufferError):
        _values._number_cells_c.classify(np.array([0, 1, 2], dtype=np.int32), b"12", b"read-only", kinds)


def test_without_the_compiled_build_the_python_rule_reads_every_cell() -> None:
    # GIVEN an interpreter where the extension cannot be imported (no compiler at install time)
    code = (
        "import sys; sys.modules['gpulake.formats._number_cells_c'] = None\n"
        "import pyarrow as pa\n"
        "from gpulake.formats import _values\n"
        "r = _values.to_numbers(pa.array([' 1 ', '-', 'x']))\n"
        "print(_values.COMPILED, _values.to_numbers is _values.to_numbers_python)\n"
        "print(r.values.to_pylist(), r.bad.to_pylist())"
    )
    # WHEN gpulake reads cells THEN the Python rule does it, with the same answers
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["False True", "[1.0, None, None] [False, False, True]"]


TABLE_FIXTURES = [
    *[("gpuz", p) for p in real_files("gpuz")],
    *[("nvidia-smi", p) for p in real_files("nvidia_smi", "*.csv")],
    *[("thermal-csv", p) for p in real_files("thermal_csv")],
]


def parsed(
    fmt: str, data: bytes, reader: object, monkeypatch: pytest.MonkeyPatch, split: bool = True
) -> tuple[bytes, list]:
    """Parquet bytes and quarantine of one parse with ``reader`` as ``_values.to_numbers``.

    ``split=False``: every section read by Arrow's CSV reader (the reference), none split in place.
    """
    monkeypatch.setattr(_values, "to_numbers", reader)
    monkeypatch.setattr(_cells, "SPLIT", split and _cells.SPLIT)
    ctx = SourceContext(key="cells/object", object_time_ms=1_763_000_000_000, tz="Europe/Berlin", node="n1")
    try:
        result = formats.FORMATS[fmt].parse(data, ctx)
    except formats.InputRejected as exc:
        return str(exc).encode(), []
    table = pa.Table.from_batches(result.batches) if result.batches else None
    return (to_parquet_bytes(table) if table is not None else b""), result.bad_rows


@needs_compiled
@pytest.mark.parametrize(("fmt", "path"), TABLE_FIXTURES, ids=[p.name[:60] for _, p in TABLE_FIXTURES])
def test_real_tables_give_identical_parquet_and_quarantine(
    fmt: str, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    python = parsed(fmt, data, _values.to_numbers_python, monkeypatch, split=False)
    compiled = parsed(fmt, data, _values.to_numbers_compiled, monkeypatch)
    assert python == compiled
