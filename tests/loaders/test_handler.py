"""The loader Lambda end to end under moto: processed bucket -> notification -> SQS -> loaders.handler -> database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gpulake_cli.local_aws import LambdaContext, LocalAws
from loaders import handler as loader
from loaders.influx import InfluxTarget, V1Writer
from loaders.local_influx import LocalInflux
from loaders.postgres import PostgresTarget
from loaders.source import LocalSource, kind_of
from loaders.sync import sync
from tests.loaders.data import write_metrics
from tests.loaders.test_kill import _copy_running, _influx_fingerprint, _pg_fingerprint

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "lake/"
MAX_RECEIVES = 2


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    server = LocalAws().start()
    yield server
    server.stop()


@dataclass
class LoaderStack:
    aws: LocalAws
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    env: dict[str, str]

    def upload(self, root: Path) -> list[str]:
        """Copy a processed layout into the bucket; return the keys that notify the loader."""
        s3 = self.aws.client("s3")
        keys = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            key = path.relative_to(root).as_posix()
            s3.put_object(Bucket=self.bucket, Key=PREFIX + key, Body=path.read_bytes())
            keys += [PREFIX + key] if kind_of(key) else []
        return keys

    def receive(self) -> list[dict[str, Any]]:
        sqs, messages = self.aws.client("sqs"), []
        while got := sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", []):
            messages += got
        return messages

    def invoke(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Call the handler with ``messages`` as one batch; delete what it did not report failed (as Lambda does)."""
        response = loader.handler(event(messages, self.queue_arn), LambdaContext())
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        sqs = self.aws.client("sqs")
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:  # the visibility timeout passes at once
                sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return response


def event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


_stacks = iter(range(1_000_000))


def make_stack(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str] | str, target: str
) -> LoaderStack:
    """What terraform/loader.tf creates: notification on metrics/ and alerts/ -> queue (+DLQ); the secret."""
    n = next(_stacks)
    s3, sqs, secrets = aws.client("s3"), aws.client("sqs"), aws.client("secretsmanager")
    bucket = f"processed-{n}"
    s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=f"loader-dlq-{n}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
    queue_url = sqs.create_queue(
        QueueName=f"loader-{n}", Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rules = [
        {
            "Id": f"loader-{top}",
            "QueueArn": queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{PREFIX}{top}/"}]}},
        }
        for top in ("metrics", "alerts", "episodes")
    ]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": rules})
    secret = settings if isinstance(settings, str) else json.dumps(settings)
    arn = secrets.create_secret(Name=f"gpulake-loader-{n}", SecretString=secret)["ARN"]
    env = {"GPULAKE_LOADER_TARGET": target, "GPULAKE_LOADER_SECRET_ARN": arn, "GPULAKE_PROCESSED_PREFIX": PREFIX}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "gpulake")
    loader._cache.clear()
    stack = LoaderStack(aws, bucket, queue_url, queue_arn, dlq_url, env)
    stack.receive()  # moto's s3:TestEvent
    return stack


@pytest.fixture
def pg_stack(aws: LocalAws, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoaderStack]:
    yield make_stack(aws, monkeypatch, {"GPULAKE_PG_DSN": pg_dsn}, "postgres")
    loader._drop_target()


def _count(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchone()


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The handler's log lines as Powertools writes them (message, level and extra keys), then forgotten."""
    lines = [
        record.__dict__ | {"message": record.getMessage(), "level": record.levelname}
        for record in caplog.records
        if record.name == "gpulake-loader"
    ]
    caplog.clear()
    return lines


def test_loads_exactly_the_notified_objects_and_redelivery_adds_nothing(
    fleet_output: Path, pg_stack: LoaderStack, pg_dsn: str, pg_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the processed output of a fleet uploaded to the processed bucket
    keys = pg_stack.upload(fleet_output)
    messages = pg_stack.receive()
    assert len(messages) == len(keys)
    # WHEN the loader handles the notifications
    assert pg_stack.invoke(messages) == {"batchItemFailures": []}
    # THEN the database equals a clean sync of the same files, with the same ledger keys
    clean_dsn = re.sub(r"dbname=\w+", "dbname=clean_handler", pg_dsn)
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE clean_handler")
    sync(LocalSource(fleet_output), clean := PostgresTarget(clean_dsn))
    clean.close()
    loaded = _pg_fingerprint(pg_dsn)
    assert loaded == _pg_fingerprint(clean_dsn) and loaded[0] > 1000
    assert _count(pg_dsn, "SELECT count(*) FROM gpu_alerts") == _count(clean_dsn, "SELECT count(*) FROM gpu_alerts")
    with psycopg.connect(pg_dsn) as conn:
        ledger = {k for (k,) in conn.execute("SELECT object_key FROM gpulake_ledger")}
    assert ledger == {k[len(PREFIX) :] for k in keys}
    assert _count(pg_dsn, "SELECT count(*) FROM gpu_metrics_hourly")[0] > 0  # refreshed after the batch
    # AND redelivering the same batch three times changes nothing
    for _ in range(3):
        assert loader.handler(event(messages, pg_stack.queue_arn), LambdaContext()) == {"batchItemFailures": []}
    assert _pg_fingerprint(pg_dsn) == loaded
    logs = _lines(caplog)
    assert sum(1 for line in logs if line["message"] == "object loaded") == len(keys)
    assert sum(1 for line in logs if line["message"] == "already loaded") == 3 * len(keys)
    assert not any(pg_dsn in str(line) for line in logs), "the DSN is never logged"


def test_secret_is_read_once_per_container(tmp_path: Path, pg_stack: LoaderStack, monkeypatch) -> None:
    calls = []
    real = loader._client("secretsmanager")
    monkeypatch.setitem(loader._cache, "secretsmanager", real)
    monkeypatch.setattr(real, "get_secret_value", lambda **kw: calls.append(kw) or {"SecretString": "x"}, raising=False)
    loader._cache.pop("settings", None)
    assert loader._secret_settings() == {"GPULAKE_PG_DSN": "x"}  # a bare DSN works too
    loader._secret_settings()
    assert len(calls) == 1


def test_killed_batch_rerun_equals_a_clean_load(
    tmp_path: Path, pg_stack: LoaderStack, pg_dsn: str, pg_server: Any
) -> None:
    objects, nodes, samples = 4, 20, 1000
    for i in range(objects):
        names = [f"node-{i}-{j:02d}" for j in range(nodes)]
        write_metrics(tmp_path, f"metrics/source=dcgm/date=2026-11-02/obj{i}.parquet", names, n=samples)
    pg_stack.upload(tmp_path)
    messages = pg_stack.receive()
    PostgresTarget(pg_dsn).close()  # schema first, so the probe can watch it
    batch = tmp_path / "event.json"
    batch.write_text(json.dumps(event(messages, pg_stack.queue_arn)))
    code = (
        "import json, sys; from loaders.handler import handler; from gpulake_cli.local_aws import LambdaContext; "
        "handler(json.load(open(sys.argv[1])), LambdaContext())"
    )
    env = os.environ | pg_stack.env | pg_stack.aws.env | {"PYTHONPATH": f"{ROOT / 'lambda'}:{ROOT}"}
    process = subprocess.Popen([sys.executable, "-c", code, str(batch)], env=env, cwd=ROOT)
    ready, deadline = _copy_running(pg_dsn), time.monotonic() + 60
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, "the handler finished before the kill point"
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = _pg_fingerprint(pg_dsn)
    assert partial[0] % (nodes * samples) == 0 and partial[0] < objects * nodes * samples
    # the same batch comes back after the visibility timeout
    assert pg_stack.invoke(messages) == {"batchItemFailures": []}
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE clean_kill")
    clean_dsn = re.sub(r"dbname=\w+", "dbname=clean_kill", pg_dsn)
    sync(LocalSource(tmp_path), clean := PostgresTarget(clean_dsn))
    clean.close()
    assert _pg_fingerprint(pg_dsn) == _pg_fingerprint(clean_dsn)


def test_unreachable_database_fails_every_item(
    tmp_path: Path, aws: LocalAws, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from loaders.local_postgres import free_port

    dsn = f"host=127.0.0.1 port={free_port()} dbname=x user=gpulake password=hunter2 connect_timeout=2"
    stack = make_stack(aws, monkeypatch, {"GPULAKE_PG_DSN": dsn}, "postgres")
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/a.parquet", ["n1"])
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/b.parquet", ["n2"])
    stack.upload(tmp_path)
    messages = stack.receive()
    response = stack.invoke(messages)
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        m["MessageId"] for m in messages
    )
    assert "target" not in loader._cache
    (line,) = _lines(caplog)
    assert line["message"] == "database unavailable, the whole batch will be retried"
    assert "hunter2" not in str(line)


def test_malformed_object_fails_alone_with_one_clear_line_then_reaches_the_dlq(
    tmp_path: Path, pg_stack: LoaderStack, pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_metrics(tmp_path, "metrics/source=dcgm/date=2026-11-02/good.parquet", ["n1"])
    bad = tmp_path / "metrics/source=dcgm/date=2026-11-02/bad.parquet"
    bad.write_bytes(b"not parquet at all")
    pg_stack.upload(tmp_path)
    for receive in range(1, MAX_RECEIVES + 1):
        messages = pg_stack.receive()
        response = pg_stack.invoke(messages)
        failed = [m for m in messages if m["MessageId"] in {f["itemIdentifier"] for f in response["batchItemFailures"]}]
        assert len(failed) == 1 and "bad.parquet" in failed[0]["Body"]
        rejected = [line for line in _lines(caplog) if line["level"] == "ERROR"]
        assert len(rejected) == 1
        assert rejected[0]["message"].startswith("object rejected")
        assert rejected[0]["object_key"] == f"{PREFIX}metrics/source=dcgm/date=2026-11-02/bad.parquet"
        assert "not a readable metrics Parquet file" in rejected[0]["reason"]
        assert rejected[0]["receive_count"] == str(receive)
    assert _count(pg_dsn, "SELECT count(*) FROM gpu_metrics") == (3,)
    assert pg_stack.receive() == []  # SQS moved it to the dead-letter queue
    dlq = pg_stack.aws.client("sqs").receive_message(QueueUrl=pg_stack.dlq_url).get("Messages", [])
    assert len(dlq) == 1 and "bad.parquet" in dlq[0]["Body"]


def test_influxdb_target(
    fleet_output: Path, aws: LocalAws, influx_server: LocalInflux, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"GPULAKE_INFLUX_URL": influx_server.url, "GPULAKE_INFLUX_DB": "handler_run"}
    stack = make_stack(aws, monkeypatch, settings, "influxdb")
    stack.upload(fleet_output)
    messages = stack.receive()
    assert stack.invoke(messages) == {"batchItemFailures": []}
    for _ in range(3):
        assert loader.handler(event(messages, stack.queue_arn), LambdaContext()) == {"batchItemFailures": []}
    clean = V1Writer(influx_server.url, "handler_clean")
    sync(LocalSource(fleet_output), InfluxTarget(clean))
    assert _influx_fingerprint(V1Writer(influx_server.url, "handler_run")) == _influx_fingerprint(clean)
    loader._drop_target()


def test_two_containers_loading_the_same_objects_at_once_load_them_once(
    tmp_path: Path, pg_dsn: str, pg_server: Any
) -> None:
    # GIVEN two loader containers (two connections) handed the same objects at the same moment
    for i in range(3):
        write_metrics(tmp_path, f"metrics/source=dcgm/date=2026-11-02/c{i}.parquet", [f"n{i}-a", f"n{i}-b"], n=500)
    objects = LocalSource(tmp_path).list()
    PostgresTarget(pg_dsn).close()
    targets = [PostgresTarget(pg_dsn) for _ in range(2)]
    start = threading.Barrier(2)

    def load(target: PostgresTarget) -> int:
        start.wait()
        return sum(target.load(o, (tmp_path / o.key).read_bytes()) for o in objects)

    # WHEN both load them concurrently
    with ThreadPoolExecutor(2) as pool:
        loaded = list(pool.map(load, targets))
    for target in targets:
        target.close()
    # THEN the database holds each row once and one ledger row per object, as after one clean load
    assert sum(loaded) >= 3 * 1000
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE clean_concurrent")
    clean_dsn = re.sub(r"dbname=\w+", "dbname=clean_concurrent", pg_dsn)
    sync(LocalSource(tmp_path), clean := PostgresTarget(clean_dsn))
    clean.close()
    assert _pg_fingerprint(pg_dsn) == _pg_fingerprint(clean_dsn)


def test_influxdb_v2_settings_from_the_secret_select_the_v2_writer(aws: LocalAws, monkeypatch) -> None:
    from loaders.influx import V2Writer

    settings = {
        "GPULAKE_INFLUX_URL": "http://127.0.0.1:9",
        "GPULAKE_INFLUX_TOKEN": "s3cr3t-token",
        "GPULAKE_INFLUX_ORG": "gpu",
        "GPULAKE_INFLUX_BUCKET": "telemetry",
    }
    make_stack(aws, monkeypatch, settings, "influxdb")
    target = loader._target()
    assert isinstance(target.writer, V2Writer) and target.writer.bucket == "telemetry"
    loader._drop_target()
