"""Reading alerts objects, and how much Python work preparing an object for a database does per row.

Arrow's JSON reader must read every alerts object exactly as the line-by-line reader does (or
leave it to that reader); the line-by-line reader splits lines where JSON Lines does and turns
a bad line into InputRejected. Preparing an object runs a fixed number of Python calls whatever
its rows (the loader benchmark's regression: one ``json.loads`` per alert).
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpulake.errors import InputRejected
from loaders.influx import InfluxTarget
from loaders.postgres import PostgresTarget
from loaders.records import _read_alert_lines, read_alerts
from loaders.source import ProcessedObject
from tests.loaders.data import write_metrics

ALERT = {
    "alert_id": "a1", "kind": "threshold", "severity": "info", "node": "n1", "gpu": "0", "gpu_model": "H100",
    "metric": "sustained_load", "start": "2026-11-02T08:00:00.000Z", "end": "2026-11-02T08:00:08.000Z",
    "samples": 2, "peak": 100.0, "threshold": 95.0, "source": "dcgm", "source_object": "raw/n1/x.prom",
    "message": "sustained_load on n1 GPU 0", "episode_id": "e1", "threshold_source": None, "rule": "sustained_load",
}  # fmt: skip


def _outcome(read: Callable[[bytes, str], Any], data: bytes) -> object:
    try:
        return repr(read(data, "alerts/k.jsonl").to_pylist())  # repr: NaN equals NaN
    except InputRejected as exc:
        return ("rejected", str(exc))


def _alerts_objects(*roots: Path) -> list[bytes]:
    return [path.read_bytes() for root in roots for path in sorted((root / "alerts").rglob("*.jsonl"))]


def test_processed_alerts_read_as_line_by_line(fleet_output: Path, lifecycle_output: Path) -> None:
    objects = _alerts_objects(fleet_output, lifecycle_output)
    assert sum(data.count(b"\n") for data in objects) > 50
    for data in objects:
        assert read_alerts(data, "k").equals(_read_alert_lines(data, "k"))


_text = st.text(st.sampled_from(["a", "é", '"', "\\", ",", " ", "=", "\n", "\x00", "\x85", "\u2028", "节", "{"]))
_alert = st.fixed_dictionaries(
    {"alert_id": _text, "message": _text, "samples": st.integers(-(2**53), 2**53), "peak": st.floats(-1e300, 1e300)},
    optional={
        "start": st.sampled_from(["2026-11-02T08:00:00.000Z", "2026-11-02T08:00:00+02:00", "not a time"]),
        "threshold": st.none() | st.integers(-1000, 1000),
        "extra": st.dictionaries(st.text(max_size=3), st.integers() | st.lists(st.none(), max_size=2), max_size=2),
    },
)
_hostile = st.sampled_from(
    [
        "null", "5", '"x"', "[]", "true", "{", "{} {}", '{"alert_id": "a"} null', '{"alert_id": "a", "alert_id": "b"}',
        '{"samples": 1.5}', '{"samples": "3"}', '{"peak": 1e400}', '{"alert_id": 7}', '{"peak": NaN}', "", "  ",
        "\t", "\x0c", "\u00a0", " {}",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(_alert.map(lambda a: json.dumps(a, ensure_ascii=False)), _hostile), max_size=6),
       separator=st.sampled_from(["\n", "\r\n", "\r"]), end=st.sampled_from(["", "\n"]))  # fmt: skip
def test_arrow_reads_what_the_line_by_line_reader_reads(lines: list[str], separator: str, end: str) -> None:
    data = (separator.join(lines) + end).encode()
    assert _outcome(read_alerts, data) == _outcome(_read_alert_lines, data)


def test_a_line_separator_inside_a_string_is_no_line_break() -> None:
    """ingest writes alerts with ensure_ascii=False: U+2028 and U+0085 stay raw inside a message."""
    lines = [json.dumps(ALERT | {"message": "a\u2028b\x85c"}, ensure_ascii=False), json.dumps(ALERT)]
    table = read_alerts("\n".join(lines).encode(), "k")
    assert table["message"].to_pylist() == ["a\u2028b\x85c", ALERT["message"]]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("null", "not an alert (a JSON NoneType, not an object)"),
        ("[1, 2]", "not an alert (a JSON list, not an object)"),
        ('{"samples": "many"}', "an alert field holds a value of the wrong type"),
        ('{"alert_id": "x"', "invalid JSON"),
    ],
)
def test_a_bad_line_rejects_its_object_by_line(line: str, problem: str) -> None:
    """sync reports an InputRejected object and loads the rest; anything else would stop the whole sync."""
    with pytest.raises(InputRejected) as caught:
        read_alerts(f"{json.dumps(ALERT)}\n\n{line}\n".encode(), "alerts/k.jsonl")
    assert caught.value.line == (3 if "JSON" in problem else None)
    assert problem in caught.value.problem


def _python_calls(call: Callable[[], object]) -> int:
    """Python function calls and calls into C made by ``call`` in this thread."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        count += event in ("call", "c_call")

    gc.disable()  # a collection would count the finalizers it happens to run
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
        gc.enable()
    return count


@pytest.mark.parametrize("target_name", ["pg_target", "influx_target"])
def test_preparing_an_object_makes_no_python_calls_per_row(
    target_name: str, request: pytest.FixtureRequest, fleet_output: Path, tmp_path: Path
) -> None:
    """10 and 400 alerts, 10 and 400 metric rows: the same Python calls (~30 extra per row used to be json.loads)."""
    target: PostgresTarget | InfluxTarget = request.getfixturevalue(target_name)
    # both objects cycle the same 10 lines: tags and times are escaped once per distinct value,
    # so only the row count differs between them
    template = max(_alerts_objects(fleet_output), key=len).splitlines()[:10]
    assert len(template) == 10
    for kind in ("metrics", "alerts"):
        calls = {}
        for n in (10, 400):
            if kind == "metrics":
                key = f"metrics/source=dcgm/date=2026-11-02/m{n}.parquet"
                write_metrics(tmp_path, key, ["n1"], n=n)
                data = (tmp_path / key).read_bytes()
            else:
                key, data = (
                    f"alerts/date=2026-11-02/a{n}.jsonl",
                    b"\n".join(template[i % len(template)] for i in range(n)),
                )
            obj = ProcessedObject(key, "v1", kind, len(data))
            target.prepare(obj, data)  # imports and caches out of the count
            calls[n] = _python_calls(lambda obj=obj, data=data: target.prepare(obj, data))
        assert abs(calls[400] - calls[10]) <= 10, (kind, calls)
