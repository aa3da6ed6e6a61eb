"""Raw bucket -> S3 notification -> SQS -> ingest handler -> processed bucket, under moto."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from gpulake.errors import ConfigError
from gpulake_cli.local_aws import LambdaContext, sqs_event
from gpulake_cli.simulate_fleet import FleetSpec, simulate
from tests.conftest import real_file

RAW, PROCESSED = "gpulake-raw", "gpulake-processed"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "gpulake")
    with mock_aws():
        s3, sqs, sns = boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
        s3.create_bucket(Bucket=RAW)
        s3.create_bucket(Bucket=PROCESSED)
        queue_url = sqs.create_queue(QueueName="gpulake-ingest")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=RAW,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        topic = sns.create_topic(Name="gpulake-alerts")["TopicArn"]
        alerts_queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=alerts_arn)
        monkeypatch.setenv("GPULAKE_PROCESSED_BUCKET", PROCESSED)
        monkeypatch.setenv("GPULAKE_ALERTS_TOPIC_ARN", topic)
        from gpulake.handlers import ingest as handler_module

        handler_module._clients.clear()
        yield {"s3": s3, "sqs": sqs, "queue": queue_url, "alerts_queue": alerts_queue, "handler": handler_module}


def drain(stack: dict[str, Any]) -> tuple[list[dict], dict]:
    """Receive every queued message and hand them to the handler as one SQS batch."""
    messages = []
    while True:
        got = stack["sqs"].receive_message(QueueUrl=stack["queue"], MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        messages.extend(got)
    records = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:gpulake-ingest")["Records"]
    response = stack["handler"].handler({"Records": records}, LambdaContext()) if records else {"batchItemFailures": []}
    return records, response


def processed(s3: Any) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=PROCESSED).get("Contents", [])]
    return {k: s3.get_object(Bucket=PROCESSED, Key=k)["Body"].read() for k in sorted(keys)}


def test_uploads_flow_through_and_duplicates_change_nothing(stack: dict[str, Any], tmp_path) -> None:
    s3 = stack["s3"]
    for path in simulate(tmp_path, FleetSpec(nodes=1, gpus=2, minutes=20, seed=11, gzip=True)):
        s3.upload_file(str(path), RAW, path.relative_to(tmp_path).as_posix())
    records, response = drain(stack)
    assert len(records) == 5 and response == {"batchItemFailures": []}  # 4 uploads + the s3:TestEvent
    first = processed(s3)
    sources = {k.split("/")[1] for k in first if k.startswith("metrics/")}
    assert sources == {"source=dcgm", "source=gpuz", "source=nvidia-smi", "source=thermal-csv"}
    assert any(k.startswith("alerts/date=2026-11-02/") for k in first)
    # at-least-once delivery: the same notifications again give the same objects, byte for byte
    again = stack["handler"].handler({"Records": records}, LambdaContext())
    assert again == {"batchItemFailures": []}
    assert processed(s3) == first
    # alerts went to SNS once, not twice
    published = stack["sqs"].receive_message(QueueUrl=stack["alerts_queue"], MaxNumberOfMessages=10)
    severities = {json.loads(json.loads(m["Body"])["Message"])["severity"] for m in published.get("Messages", [])}
    assert severities <= {"warning", "critical"} and severities


def test_keys_with_spaces_and_plus_and_node_metadata(stack: dict[str, Any]) -> None:
    s3 = stack["s3"]
    body = real_file("gpuz/gokayge__First__GPU-Z_Sensor_Log.txt").read_bytes()
    key = "gpuz/rig 7/GPU-Z Sensor Log+1.txt"
    s3.put_object(Bucket=RAW, Key=key, Body=body, Metadata={"tz": "Europe/Istanbul", "node": "rig-seven"})
    _, response = drain(stack)
    assert response == {"batchItemFailures": []}
    (metrics_key,) = [k for k in processed(s3) if k.startswith("metrics/")]
    assert metrics_key.startswith("metrics/source=gpuz/date=2021-08-02/GPU-Z_Sensor_Log_1-")
    table = pq.read_table(io.BytesIO(processed(s3)[metrics_key]))
    assert table.num_rows == 9
    assert set(table.column("node").to_pylist()) == {"rig-seven"}
    assert table.column("source_object")[0].as_py() == f"s3://{RAW}/{key}"
    assert table.column("time")[0].as_py().isoformat() == "2021-08-02T20:28:33+00:00"  # 23:28:33 +03


def test_test_event_is_ignored_and_bad_objects_are_quarantined_not_retried(stack: dict[str, Any]) -> None:
    s3 = stack["s3"]
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": RAW}
    stack["sqs"].send_message(QueueUrl=stack["queue"], MessageBody=json.dumps(test_event))
    s3.put_object(Bucket=RAW, Key="dcgm/node-a/broken.prom.gz", Body=b"\x1f\x8b\x08\x00truncated")
    _, response = drain(stack)
    assert response == {"batchItemFailures": []}
    outputs = processed(s3)
    (quarantine,) = [k for k in outputs if k.startswith("quarantine/")]
    record = json.loads(outputs[quarantine])
    assert record["rejected"] is True and "gzip data is truncated" in record["reason"]


def test_failures_that_a_retry_can_fix_are_reported(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = stack["s3"]
    s3.put_object(Bucket=RAW, Key="thermal/fleet/a.csv", Body=b"node,timestamp,gpu_id,temp\nn1,2026-01-01,GPU_0,50\n")
    monkeypatch.setenv("GPULAKE_PROCESSED_BUCKET", "no-such-bucket")
    records, response = drain(stack)
    (upload,) = [r for r in records if "TestEvent" not in r["body"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": upload["messageId"]}]}


def test_direct_s3_event(stack: dict[str, Any]) -> None:
    s3 = stack["s3"]
    s3.put_object(
        Bucket=RAW,
        Key="nvidia-smi/n9/a.csv",
        Body=b"timestamp, index, temperature.gpu\n2026/01/01 00:00:00.000, 0, 50\n",
    )
    stack["sqs"].purge_queue(QueueUrl=stack["queue"])
    event = {
        "Records": [
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": RAW}, "object": {"key": "nvidia-smi/n9/a.csv"}}}
        ]
    }
    assert stack["handler"].handler(event, LambdaContext()) == {"processed": 1}
    assert any(k.startswith("metrics/source=nvidia-smi/date=2026-01-01/") for k in processed(s3))


def test_bombs_and_cut_gzip_are_quarantined_not_retried(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = stack["s3"]
    monkeypatch.setenv("GPULAKE_MAX_INFLATED_MB", "1")
    sample = b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a"} 40 1767225600000\n'
    s3.put_object(Bucket=RAW, Key="dcgm/node-a/bomb.prom.gz", Body=gzip.compress(sample * 40_000))
    rows = b"".join(b"2026/01/01 00:%02d:%02d.000, 0, 50\n" % divmod(i, 60) for i in range(600))
    cut = gzip.compress(b"timestamp, index, temperature.gpu\n" + rows)[:-30]
    s3.put_object(Bucket=RAW, Key="nvidia-smi/node-b/cut.csv.gz", Body=cut)
    _, response = drain(stack)
    assert response == {"batchItemFailures": []}  # retrying cannot help either object
    outputs = processed(s3)
    records = {
        k: [json.loads(line) for line in v.decode().splitlines()] for k, v in outputs.items() if "quarantine/" in k
    }
    (bomb,) = [r for k, r in records.items() if "bomb" in k]
    assert bomb[0]["rejected"] is True and "larger than the 1 MiB limit" in bomb[0]["reason"]
    (cut_records,) = [r for k, r in records.items() if "cut" in k]
    assert cut_records[-1]["reason"] == "truncated_input"
    assert any(k.startswith("metrics/source=nvidia-smi/") for k in outputs)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    truncated = [m["ObjectsTruncated"] for m in emitted if "ObjectsTruncated" in m]
    assert truncated and sum(v if isinstance(v, int | float) else sum(v) for v in truncated) == 1


def test_a_bad_rules_file_fails_the_invocation_naming_the_line(
    stack: dict[str, Any], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment whose rules file has a typo, and an upload waiting
    rules = tmp_path / "rules.jsonl"
    rules.write_text('{"name": "x", "field": "gpu_tmp_c", "op": ">", "threshold": 1}\n')
    monkeypatch.setenv("GPULAKE_RULES_FILE", str(rules))
    stack["s3"].put_object(Bucket=RAW, Key="dcgm/n1/a.prom", Body=b'DCGM_FI_DEV_GPU_TEMP{gpu="0"} 40\n')
    # THEN the whole invocation fails with the line at fault (the Errors alarm fires; SQS retries the
    # batch once the file is fixed), instead of every record failing on its own behind a partial response
    with pytest.raises(ConfigError, match=r"rules.jsonl:1: unknown field 'gpu_tmp_c'"):
        drain(stack)
