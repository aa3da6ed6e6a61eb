"""One raw key, one set of processed outputs, under moto: retries, new versions, events out of order."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from gpulake.dedupe import Manifest, superseded
from tests.e2e.test_lambda_moto import RAW, drain, processed, stack  # noqa: F401 - the fixture

KEY = "thermal/rig-7/thermal.csv"
HEADER = b"node,timestamp,gpu_id,temp\n"
V1 = HEADER + b"rig-7,2026-11-01 23:59:00,0,91\nrig-7,2026-11-02 00:00:00,0,92\nrig-7,2026-11-02 00:01:00,0,93\n"
V2 = HEADER + b"rig-7,2026-11-02 00:00:00,0,60\n"


def _rows(outputs: dict[str, bytes]) -> dict[str, int]:
    """Rows per metrics key."""
    return {k: pq.read_table(io.BytesIO(v)).num_rows for k, v in outputs.items() if k.endswith(".parquet")}


def _alerts(outputs: dict[str, bytes]) -> list[str]:
    return [line for k, v in outputs.items() if k.startswith("alerts/") for line in v.decode().splitlines()]


def _events(aws: dict[str, Any], sequencer: str) -> list[dict[str, Any]]:
    """The S3 records queued so far, with the ``sequencer`` S3 sets (moto leaves it out)."""
    records = []
    while got := aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            for record in json.loads(message["Body"]).get("Records", []):
                record["s3"]["object"]["sequencer"] = sequencer
                records.append(record)
    return records


@pytest.fixture
def versioned(stack: dict[str, Any]) -> dict[str, Any]:  # noqa: F811 - the imported fixture
    stack["s3"].put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
    return stack


def test_the_same_bytes_three_times_give_one_set_of_outputs(versioned: dict[str, Any]) -> None:
    # GIVEN a collector that retried: the same bytes uploaded three times (three versions of one key)
    s3 = versioned["s3"]
    for _ in range(3):
        s3.put_object(Bucket=RAW, Key=KEY, Body=V1)
        # WHEN each notification is handled as it comes
        _, response = drain(versioned)
        assert response == {"batchItemFailures": []}
    # THEN there is one set of outputs: each row and alert once
    outputs = processed(s3)
    assert sum(_rows(outputs).values()) == 3
    assert len(_alerts(outputs)) == len(set(_alerts(outputs))) > 0


def test_a_new_version_replaces_the_outputs_of_the_previous_one(versioned: dict[str, Any]) -> None:
    # GIVEN version 1 (two days) processed
    s3, handler = versioned["s3"], versioned["handler"]
    s3.put_object(Bucket=RAW, Key=KEY, Body=V1)
    for record in _events(versioned, "0055AED6DCD90281E5"):
        handler.process_s3_record(record)
    first = _rows(processed(s3))
    assert sorted(first.values()) == [1, 2]
    # WHEN version 2 (one row, the second day only) arrives
    s3.put_object(Bucket=RAW, Key=KEY, Body=V2)
    for record in _events(versioned, "0055AED6DCD90281E6"):
        handler.process_s3_record(record)
    # THEN the lake holds version 2's rows only: the day it no longer covers is emptied, not left behind
    second = _rows(processed(s3))
    assert set(second) == set(first)
    assert sorted(second.values()) == [0, 1]
    assert all(json.loads(line)["peak"] < 91 for line in _alerts(processed(s3)))


def test_an_older_event_arriving_late_changes_nothing(versioned: dict[str, Any]) -> None:
    # GIVEN two versions whose notifications arrive newest first
    s3, handler = versioned["s3"], versioned["handler"]
    s3.put_object(Bucket=RAW, Key=KEY, Body=V1)
    (old,) = _events(versioned, "0055AED6DCD90281E5")
    s3.put_object(Bucket=RAW, Key=KEY, Body=V2)
    (new,) = _events(versioned, "0055AED6DCD90281E6")
    assert handler.process_s3_record(new).unchanged is False
    after_new = processed(s3)
    # WHEN the older one is handled after it
    late = handler.process_s3_record(old)
    # THEN it is recognised as superseded and the newest version's outputs stay
    assert late.unchanged is True
    assert processed(s3) == after_new
    assert sum(_rows(after_new).values()) == 1


@pytest.mark.parametrize(
    ("previous", "incoming", "older"),
    [("0A", "0B", False), ("0B", "0A", True), ("0A", "0A", False), ("0A1", "0B", False), ("0B", "0A1", True)],
)
def test_sequencers_compare_right_padded(previous: str, incoming: str, older: bool) -> None:
    manifest = Manifest(source_object=KEY, fingerprint="x", version="v", sequencer=previous, outputs=[])
    assert superseded(manifest, incoming) is older
