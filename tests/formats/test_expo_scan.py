"""The compiled exposition scanner and its pure-Python twin give identical results.

Identical means: the same rows, values, ``extra`` samples and quarantined lines out of the
scanner, and byte-identical Parquet and quarantine records out of the dcgm parser, on every
real dcgm-exporter fixture, on hand-written quirks and on hypothesis-generated scrapes.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpulake.context import SourceContext
from gpulake.formats import _expo_scan
from gpulake.formats import dcgm_fields as f
from gpulake.formats.dcgm import _SLOTS, DcgmFormat, _Scrape
from gpulake.output.parquet import to_parquet_bytes
from tests.conftest import real_files

CTX = SourceContext(key="scan/object", object_time_ms=1_763_000_000_000, node="node-x")
needs_compiled = pytest.mark.skipif(
    not _expo_scan.COMPILED, reason="compiled scanner not built (no C compiler?); `make scanner` builds it"
)

QUIRKS = b"\n".join(
    [
        b"# gpulake-scrape 1763000000000",
        b"# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).",
        b"# TYPE DCGM_FI_DEV_GPU_TEMP gauge",
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0", UUID="GPU-a",Hostname="h1",modelName="X \\"q\\" \\n y"} 40',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 41 1763000001000\r',
        b'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-a",Hostname="h1"} 9223372036854775794',
        b'DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="GPU-b",Hostname="h1"} 2147483632',
        b'DCGM_FI_DEV_FB_FREE{gpu="1",UUID="GPU-b",Hostname="h1"} NaN',
        b'DCGM_FI_DEV_FB_FREE{gpu="1",UUID="GPU-b",Hostname="h1"} +Inf',
        b'DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-a",Hostname="h1"} 1_000.5',
        b'DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-a",Hostname="h1"} 5',
        b'DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-a",Hostname="h1"} 1e400',
        b'DCGM_FI_DEV_GPU_UTIL_RATIO{gpu="0",GPU_I_ID="3",UUID="GPU-a",Hostname="h1"} 0.25',
        b'DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-a",Hostname="h1",xid="43"} 43',
        b"Forwarding from 127.0.0.1:9400 -> 9400",
        b"  % Total    % Received",
        b"# gpulake-scrape soon",
        b"# gpulake-scrape  1763000002000 ",
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 42 99999999999999999999999',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 42 +1763000003000',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} ',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} x',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 7 8 9',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"}\t7\t1763000004000',
        b'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{gpu="0",UUID="GPU-a",Hostname="h1"} 32',
        b'dcgm_gpu_temp{gpu="0",uuid="GPU-a"} 3',
        b"dcgm_gpu_temp 3",
        b"",
        b"   ",
        b'1bad{gpu="0"} 1',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1",bad} 1',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} -0.0',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} .5e-3 1763000005000',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 0x10',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 140737488355330 1763000005000',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 3.0000000000000000000000000001 1_763_000_006_000',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="h1"} 1e 1763000007000',
        b"",
    ]
)


def both(data: bytes) -> tuple[tuple[bytes, str], tuple[bytes, str]]:
    """(Parquet bytes, quarantine JSON) from the dcgm parser with each scanner.

    When the parser raises (a value the batch cannot hold), both must raise the same error.
    """
    out = []
    for scan in (_expo_scan.scan_python, _expo_scan.scan_compiled):
        try:
            result = DcgmFormat(scan=scan).parse(data, CTX)
        except (OverflowError, ValueError) as exc:
            out.append((repr(exc).encode(), "raised"))
            continue
        parquet = to_parquet_bytes(pa.Table.from_batches(result.batches)) if result.batches else b""
        quarantine = "\n".join(json.dumps(b.to_record(CTX.key)) for b in result.bad_rows)
        out.append((parquet, quarantine))
    return out[0], out[1]


def scanned(data: bytes, scan: _expo_scan.ScanFunction, pieces: int = 1) -> _expo_scan.Scanned:
    lines = [line + b"\n" for line in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    step = max(1, -(-len(lines) // pieces))
    chunks = [b"".join(lines[i : i + step]) for i in range(0, len(lines), step)]
    return scan(chunks, _Scrape(CTX).resolve_head, slots=len(_SLOTS), now=CTX.object_time_ms)


def assert_same(a: _expo_scan.Scanned, b: _expo_scan.Scanned) -> None:
    assert list(a.extra) == list(b.extra)
    pairs = [(name, getattr(a, name), getattr(b, name)) for name in ("row_time", "row_group", "values")]
    for name, x, y in [*pairs, *((f"extra {key}", a.extra[key], b.extra[key]) for key in a.extra)]:
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=True), name
        assert np.array_equal(np.signbit(x), np.signbit(y)) if x.dtype.kind == "f" else True, name
    assert a.bad == b.bad
    assert a.lines == b.lines  # a later window's line numbers count on from it (ADR 0008)


@needs_compiled
@pytest.mark.real_fixtures
@pytest.mark.parametrize("path", real_files("dcgm", "*.*"), ids=lambda p: p.name)
def test_real_scrapes_give_byte_identical_parquet_and_quarantine(path: Path) -> None:
    python, compiled = both(path.read_bytes())
    assert python == compiled
    assert python[0] or python[1]


@needs_compiled
def test_quirks_give_identical_output_whole_or_in_pieces() -> None:
    python, compiled = both(QUIRKS)
    assert python == compiled
    reference = scanned(QUIRKS, _expo_scan.scan_python)
    assert len(reference.bad) == 15 and len(reference.row_time) >= 5  # 13 unreadable, +Inf and 1e400 impossible
    for pieces in (1, 3, 40):
        assert_same(reference, scanned(QUIRKS, _expo_scan.scan_compiled, pieces))
        assert_same(reference, scanned(QUIRKS, _expo_scan.scan_python, pieces))


#: value spellings at and around every sentinel: exact, other spellings of it, neighbours that round
#: to the same double, and what the physical range then says about them
def _sentinel_spellings() -> list[str]:
    tokens = []
    for sentinel in sorted(_expo_scan.BLANK_SENTINELS):
        s = str(sentinel)
        tokens += [s, f"+{s}", f"0{s}", f"{s}.", f"{s}.000000", f"{s}.0000001", f"{s}_0"[:-2], f"{s}e0"]
        tokens += [f"{s[:-1]}_{s[-1]}", f"{sentinel / 10 ** (len(s) - 1)!r}e{len(s) - 1}"]
        tokens += [str(sentinel + d) for d in (-5, -1, 4, 5, 16)] + [f"{float(sentinel)!r}", f"-{s}"]
    return [*tokens, "inf", "-inf", "+Inf", "nan", "NaN", "1e309", "-1e309", "1e308", "-1e308"]


@needs_compiled
@pytest.mark.parametrize(
    ("metric", "extra"), [("DCGM_FI_DEV_GPU_TEMP", False), ("DCGM_FI_PROF_SM_ACTIVE", True)], ids=["canonical", "extra"]
)
def test_value_rule_table_is_the_one_both_scanners_use(metric: str, extra: bool) -> None:
    # GIVEN every spelling of every DCGM sentinel, its neighbours, inf, NaN and overflowing values
    tokens = _sentinel_spellings()
    body = "".join(
        f'{metric}{{gpu="{i}",UUID="u{i}"}} {t} {1_763_000_000_000 + i}\n' for i, t in enumerate(tokens)
    ).encode()
    # WHEN both scanners read them
    result = scanned(body, _expo_scan.scan_compiled)
    assert_same(scanned(body, _expo_scan.scan_python), result)
    # THEN exact sentinels and NaN are null, and every other value is a reading or quarantined as impossible
    quarantined = {line - 1 for line, reason, _ in result.bad}
    assert all(reason.startswith("impossible value") for _, reason, _ in result.bad)
    kept = [i for i in range(len(tokens)) if i not in quarantined]
    if extra:
        (values,) = (column.tolist() for column in result.extra.values())
    else:
        values = result.values[_SLOTS["gpu_temp_c"]].tolist()
    assert len(values) == len(kept)
    for i, value in zip(kept, values):
        want = _expo_scan.reading(tokens[i].encode())
        assert (want is None and np.isnan(value)) or value == want, tokens[i]
    blank = [i for i, t in enumerate(tokens) if _expo_scan.is_blank(t.encode())]
    assert blank and not quarantined & set(blank)
    assert {tokens.index(t) for t in ("inf", "1e309", "-inf")} <= quarantined


@needs_compiled
def test_out_of_range_values_are_quarantined_alike_with_line_numbers() -> None:
    # GIVEN impossible readings in every canonical column, a throttle mask beyond 2**53 and fine ones
    lines = [
        b'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="a"} -1 1763000000000',
        b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="a"} 1000.5 1763000000000',
        b'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="a"} 101 1763000000000',
        b'DCGM_FI_DEV_FB_USED{gpu="0",UUID="a"} 1e12 1763000000000',
        b'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{gpu="0",UUID="a"} 18446744073709551615 1763000000000',
        b'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{gpu="0",UUID="a"} -1 1763000001000',
        b'DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="b"} 250.5 1763000000000',
        b'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{gpu="1",UUID="b"} 9223372036854775794 1763000000000',
    ]
    data = b"\n".join(lines)
    # WHEN both scanners read them THEN the same lines go to quarantine with the same reasons
    python, compiled = both(data)
    assert python == compiled
    result = scanned(data, _expo_scan.scan_python)
    assert [line for line, _, _ in result.bad] == [1, 2, 3, 4, 5, 6]
    assert result.bad[0][1] == "impossible value -1 (possible: 0..100000)"
    assert len(result.row_time) == 1  # a quarantined sample opens no row


@needs_compiled
def test_decimal_values_are_the_doubles_float_returns() -> None:
    # GIVEN decimals as exporters print them and harder ones (17+ digits, tiny, huge, signs)
    rng = random.Random(14)
    tokens = [f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 17)}f}" for _ in range(3000)]
    tokens += ["0." + "0" * rng.randint(0, 25) + str(rng.randint(1, 10 ** rng.randint(1, 16))) for _ in range(3000)]
    tokens += [repr(rng.random() * 10 ** rng.randint(-30, 30)) for _ in range(3000)]
    tokens += [str(rng.randint(0, 10 ** rng.randint(1, 20))) for _ in range(3000)]
    tokens += ["-0", "-0.0", "+.5", "5.", "0.0000000000000000000001", "9007199254740993", "123456789012345.6"]
    tokens = [t for t in tokens if _expo_scan.reading(t.encode()) is not None]  # sentinels are null, tested above
    body = "".join(f'x{{gpu="0"}} {t} {1_763_000_000_000 + i}\n' for i, t in enumerate(tokens)).encode()
    # WHEN the compiled scanner reads them (no range in the way)
    result = _expo_scan.scan_compiled([body], lambda head: (0, 0, 0, 1.0, -np.inf, np.inf), slots=1, now=0)
    # THEN every value is bit for bit float(token)
    assert result.values[0].tobytes() == np.array([float(t) for t in tokens]).tobytes()


# --- hypothesis: scrapes with every quirk the scanner must handle ---------------------------
NAMES = [*sorted(f.BY_NAME)[:6], "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_XID_ERRORS", "dcgm_ecc", "bad name", "1x"]
LABEL_KEYS = ["gpu", "UUID", "Hostname", "modelName", "GPU_I_ID", "xid", "pod", "uuid", "hostname"]
label_value = st.text(alphabet=st.sampled_from('ab0 "\\\n,=}{é'), max_size=6).map(
    lambda s: s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
)
value_token = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.tuples(st.floats(-1e12, 1e12), st.integers(0, 24)).map(lambda v: f"{v[0]:.{v[1]}f}"),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["9223372036854775794", "2147483632", "2147483647", "140737488355328", "NaN", "+Inf", "-inf"]),
    st.sampled_from(
        ["9223372036854775000", "9223372036854775795", "140737488355331.000000", "9.223372036854775794e18"]
    ),
    st.sampled_from(["1e309", "-1e309", "2147483636", "-250", "100000.5", "1e-320", "9007199254740993"]),
    st.sampled_from(["1_0", "0x10", "", "1e", ".5", "5.", "+.5e-3", "nan(1)", "١"]),
)
time_token = st.one_of(
    st.just(""),
    st.integers(1_700_000_000_000, 1_800_000_000_000).map(str),
    st.integers(-(2**65), 2**65).map(str),
    st.sampled_from(["+1763000000000", "1_763_000_000_000", "x", "01763000000000"]),
)


@st.composite
def sample_line(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    keys = draw(st.lists(st.sampled_from(LABEL_KEYS), max_size=5, unique=True))
    sep = draw(st.sampled_from([",", ", ", " , "]))
    labels = sep.join(f'{k}="{draw(label_value)}"' for k in keys)
    head = f"{name}{{{labels}}}" if keys or draw(st.booleans()) else name
    gap = draw(st.sampled_from([" ", "  ", "\t"]))
    return f"{head}{gap}{draw(value_token)} {draw(time_token)}".rstrip(" ") + draw(st.sampled_from(["", "\r", " "]))


other_line = st.one_of(
    st.sampled_from(
        ["", "# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).", "# TYPE x gauge", "Handling connection"]
    ),
    st.integers(1_700_000_000_000, 1_800_000_000_000).map(lambda t: f"# gpulake-scrape {t}"),
    st.sampled_from(["# gpulake-scrape ", "# gpulake-scrape x", "# gpulake-scrape 99999999999999999999"]),
    st.text(max_size=20),
)


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(sample_line(), sample_line(), other_line), max_size=40), st.integers(1, 5))
def test_generated_scrapes_give_identical_output(lines: list[str], pieces: int) -> None:
    data = "\n".join(lines).encode()
    python, compiled = both(data)
    assert python == compiled
    assert_same(scanned(data, _expo_scan.scan_python), scanned(data, _expo_scan.scan_compiled, pieces))


#: extra keys (no canonical column), one with a series label, and value texts: null ones (NaN, a DCGM blank), -0.0
EXTRA_KEYS = ["DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_DEV_XID_ERRORS", 'DCGM_FI_DEV_XID_ERRORS{xid="13"}', "zz_custom"]
EXTRA_VALUES = ["1", "2.5", "-0.0", "7e3", "NaN", "9223372036854775794"]


@needs_compiled
@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 1), st.sampled_from(EXTRA_KEYS), st.sampled_from(EXTRA_VALUES)),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 3),
)
def test_a_key_given_twice_in_a_row_keeps_its_last_value(samples: list[tuple[int, int, str, str]], size: int) -> None:
    # GIVEN extra samples of two GPUs at a few times, a key often given twice (or more) in one row, some null
    lines = []
    for t, gpu, key, value in samples:
        name, _, qualifier = key.partition("{")
        labels = f'gpu="{gpu}",UUID="u{gpu}"' + (f",{qualifier[:-1]}" if qualifier else "")
        lines.append(f"{name}{{{labels}}} {value} {1_763_000_000_000 + 1000 * t}")
    # WHEN the dcgm parser reads them with either scanner, in slices of a few rows
    tables = [
        pa.Table.from_batches(DcgmFormat(scan=scan, rows_per_slice=size).parse("\n".join(lines).encode(), CTX).batches)
        for scan in (_expo_scan.scan_python, _expo_scan.scan_compiled)
    ]
    # THEN each row's map holds, per key, the last value given that is a reading (a null sample is no value,
    # it neither replaces an earlier value nor shows up), and nothing for keys without one
    expected: dict[tuple[str, int], dict[str, float]] = {}
    for t, gpu, key, value in samples:
        row = expected.setdefault((str(gpu), 1_763_000_000_000 + 1000 * t), {})
        if _expo_scan.reading(value.encode()) is not None:
            row[key] = float(value)
    want = [sorted(expected[row].items()) for row in sorted(expected)]
    for table in tables:
        assert list(zip(table["gpu"].to_pylist(), table["time"].cast(pa.int64()).to_pylist())) == sorted(expected)
        assert table["extra"].to_pylist() == want
        got_zero = [v for row in table["extra"].to_pylist() for k, v in row if v == 0]
        assert all(np.signbit(v) for v in got_zero)  # -0.0 kept as written
    assert tables[0].equals(tables[1])


def test_without_the_compiled_build_the_python_scanner_runs() -> None:
    # GIVEN an interpreter where the extension cannot be imported (no compiler at install time)
    code = (
        "import sys; sys.modules['gpulake.formats._expo_scan_c'] = None\n"
        "from gpulake.formats import _expo_scan, dcgm\n"
        "print(_expo_scan.COMPILED, _expo_scan.scan is _expo_scan.scan_python, dcgm.DcgmFormat().scan.__name__)"
    )
    # WHEN gpulake imports THEN it picks the pure-Python scanner
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "scan_python"]


@needs_compiled
def test_errors_in_resolve_propagate_from_both_scanners_and_misuse_is_refused() -> None:
    def resolve(head: bytes) -> tuple[int, int, int, float, float, float]:
        raise KeyError(head)

    for scan in (_expo_scan.scan_python, _expo_scan.scan_compiled):
        with pytest.raises(KeyError):
            scan([b'x{gpu="0"} 1\n'], resolve, slots=1, now=0)
    scanner_type = _expo_scan._expo_scan_c.Scanner
    with pytest.raises(RuntimeError, match="__init__"):
        scanner_type.__new__(scanner_type).feed(b"x 1\n")


@needs_compiled
def test_finish_hands_the_buffers_over_and_ends_the_scan() -> None:
    # GIVEN a compiled scanner that has scanned one sample
    def resolve(head: bytes) -> tuple[int, int, int, float, float, float]:
        return 0, -1, 0, 1.0, -1e308, 1e308

    scanner = _expo_scan._expo_scan_c.Scanner(resolve, 1, 1_763_000_000_000, _expo_scan.VALUE_RULES, 0, 2**62)
    scanner.feed(b'x{gpu="0"} 7\n')
    # WHEN it finishes
    row_time, _, _, extra, _ = scanner.finish()
    # THEN the buffers come out once, not copied (each owns its allocation, read-only), and the scanner
    # refuses more work
    assert np.frombuffer(row_time, np.int64).tolist() == [1_763_000_000_000]
    assert list(extra) == [0] and np.frombuffer(extra[0], np.float64).tolist() == [7.0]
    assert type(extra[0]) is _expo_scan._expo_scan_c.Buffer and memoryview(extra[0]).readonly
    with pytest.raises(RuntimeError, match="finish"):
        scanner.feed(b'x{gpu="0"} 8\n')
    with pytest.raises(RuntimeError, match="finish"):
        scanner.finish()


def test_the_reference_scanner_refuses_more_rows_than_int32_row_numbers_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a row limit of two (the real one, 2**31 - 2, needs > 40 GB of text) and three rows of samples
    monkeypatch.setattr(_expo_scan, "MAX_ROWS", 2)

    def resolve(head: bytes) -> tuple[int, int, int, float, float, float]:
        return 0, -1, 0, 1.0, -1e308, 1e308

    text = b"".join(b'x{gpu="0"} 1 %d\n' % (1_763_000_000_000 + k) for k in range(3))
    # WHEN it is scanned THEN the third row is refused, as the compiled scanner refuses row 2**31 - 1
    with pytest.raises(OverflowError, match="too many rows"):
        _expo_scan.scan_python([text], resolve, slots=1, now=0)
