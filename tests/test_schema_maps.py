"""The map columns and column helpers of ``gpulake.schema`` (and the rows they give values): no needless copies."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from gpulake import schema
from gpulake.identity import has_values


def test_whole_hands_a_single_chunk_over_without_a_copy() -> None:
    # GIVEN a one-chunk column (what a table of one batch holds)
    chunk = pa.array(["a", "bc", None])
    # WHEN it is asked for as one array
    got = schema.whole(pa.chunked_array([chunk]))
    # THEN the chunk's own buffers come back (combine_chunks would copy them), and several chunks still combine
    assert got.buffers()[2].address == chunk.buffers()[2].address
    assert schema.whole(pa.chunked_array([chunk, chunk])).to_pylist() == ["a", "bc", None] * 2
    assert len(schema.whole(pa.chunked_array([], pa.string()))) == 0


def test_a_control_byte_far_into_a_large_column_is_still_found() -> None:
    # GIVEN a column whose only control character sits past the first scan step
    clean = "x" * (3 * schema._SCAN_STEP // 2)
    column = pa.array([clean, "ok\x07"])
    # WHEN it is cleaned
    cleaned = schema.clean_text(column)
    # THEN the character is replaced like any other
    assert cleaned.to_pylist() == [clean, "ok" + schema.CONTROL_REPLACEMENT]


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.sampled_from([1.0, 0.0, float("nan"), float("inf"), None]), max_size=4), min_size=1, max_size=10
    ),
    cut=st.tuples(st.integers(0, 10), st.integers(0, 10)),
)
def test_a_row_has_values_when_its_extra_map_holds_a_finite_number(
    rows: list[list[float | None]], cut: tuple[int, int]
) -> None:
    # GIVEN rows whose only values are in ``extra`` (NaN, inf, null or a number), the map possibly sliced
    low, high = sorted(c % (len(rows) + 1) for c in cut)
    extra = pa.array([[("k", v) for v in row] for row in rows], schema.EXTRA_TYPE).slice(low, high - low)
    n = len(extra)
    table = pa.table({f.name: extra if f.name == "extra" else pa.nulls(n, f.type) for f in schema.METRICS_SCHEMA})
    # WHEN asked which rows carry a value
    found = has_values(table)
    # THEN exactly those with a finite entry do
    assert found.tolist() == [any(v is not None and np.isfinite(v) for v in row) for row in rows[low:high]]
