"""Lambda entry point ``loaders.handler.handler``: processed-bucket notifications -> the database, exactly once.

The processed bucket notifies an SQS queue for ``metrics/`` and ``alerts/``; each
invocation gets a batch of those notifications and loads exactly the objects they
name through the same ledger as ``sync`` (:meth:`loaders.target.Target.write`
checks and records the version in the object's own transaction, so redelivered or
concurrently delivered notifications load nothing twice).

Failures, per SQS message (partial batch responses):

- database unreachable -> every message of the batch is reported failed and comes back
  after the visibility timeout; the cached connection is dropped;
- object unreadable (not Parquet, bad JSON) -> the message is reported failed with one
  ``object rejected`` error line; after ``maxReceiveCount`` receives SQS moves it to
  the dead-letter queue (alarm), where it waits for a fix and a redrive;
- object gone (deleted since the notification) -> logged, nothing to load, done.

Settings: ``GPULAKE_LOADER_TARGET`` (``postgres`` or ``influxdb``), ``GPULAKE_LOADER_SECRET_ARN``
(a Secrets Manager secret: a JSON object of the ``GPULAKE_PG_*`` / ``GPULAKE_INFLUX_*``
variables of :mod:`loaders.config`, or for postgres a bare DSN), ``GPULAKE_PROCESSED_PREFIX``.
The secret is read once per container and never logged.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from gpulake.errors import ConfigError, InputRejected
from loaders.config import TARGETS, open_target
from loaders.errors import ObjectRejected, TargetUnavailable
from loaders.source import ProcessedObject, kind_of
from loaders.target import Target

logger = Logger(service="gpulake-loader")
metrics = Metrics(namespace="gpulake", service="loader")
# an all-failed batch is still a partial response (every item retried), not an invocation error
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
#: per container: boto3 clients, the secret's settings and the open target
_cache: dict[str, Any] = {}


def _client(name: str) -> Any:
    if name not in _cache:
        _cache[name] = boto3.client(name)
    return _cache[name]


def _secret_settings() -> dict[str, str]:
    """The connection settings of the secret (cached per container; never logged)."""
    if "settings" not in _cache:
        arn = os.environ.get("GPULAKE_LOADER_SECRET_ARN", "")
        if not arn:
            raise ConfigError("GPULAKE_LOADER_SECRET_ARN is not set: the loader reads its DSN or token from it")
        text = _client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):  # a bare connection string
            values = {TARGETS["postgres"]: text.strip()}
        _cache["settings"] = {str(k): str(v) for k, v in values.items()}
    return _cache["settings"]


def _target() -> Target:
    """The open target of this container, connecting (and migrating) on first use."""
    if "target" not in _cache:
        kind = os.environ.get("GPULAKE_LOADER_TARGET", "")
        if kind not in TARGETS:
            raise ConfigError(f"GPULAKE_LOADER_TARGET is {kind!r}: set it to one of {', '.join(TARGETS)}")
        _cache["target"] = open_target(kind, env=dict(os.environ) | _secret_settings())
    return _cache["target"]


def _drop_target() -> None:
    target = _cache.pop("target", None)
    if target is not None:
        with contextlib.suppress(Exception):  # a broken connection may fail to close; it is gone either way
            target.close()


def _prefix() -> str:
    prefix = os.environ.get("GPULAKE_PROCESSED_PREFIX", "").strip("/")
    return prefix + "/" if prefix else ""


def notified_objects(body: str) -> Iterator[tuple[str, str]]:
    """(bucket, full key) of each S3 record in a notification (``s3:TestEvent`` has none)."""
    notification = json.loads(body)
    for record in notification.get("Records", []):
        if "s3" in record and record.get("eventName", "ObjectCreated").startswith("ObjectCreated"):
            yield record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"])


def _load(target: Target, bucket: str, full_key: str) -> None:
    prefix = _prefix()
    key = full_key[len(prefix) :] if full_key.startswith(prefix) else full_key
    kind = kind_of(key)
    if kind is None:
        logger.info("not a loadable object, ignored", extra={"object_key": full_key})
        return
    try:
        response = _client("s3").get_object(Bucket=bucket, Key=full_key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            logger.warning("object gone before it was loaded, nothing to do", extra={"object_key": full_key})
            return
        raise
    # the version read, not the one notified: a redelivered old notification finds the newer object loaded
    obj = ProcessedObject(key, response["ETag"].strip('"'), kind, response["ContentLength"])
    if target.versions([key]).get(key) == obj.version:
        logger.info("already loaded", extra={"object_key": key})
        return
    data = response["Body"].read()
    try:
        prepared = target.prepare(obj, data)
    except InputRejected as exc:
        raise ObjectRejected(str(exc)) from None
    rows = target.write(obj, prepared)
    logger.info("object loaded", extra={"object_key": key, "rows": rows, "target": target.name})
    metrics.add_metric(name="ObjectsLoaded", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RowsLoaded", unit=MetricUnit.Count, value=rows)
    _cache["loaded"] = _cache.get("loaded", 0) + 1


def _record_handler(record: SQSRecord) -> None:
    target = _target()
    for bucket, key in notified_objects(record.body):
        try:
            _load(target, bucket, key)
        except ObjectRejected as exc:
            receives = record.attributes.get("ApproximateReceiveCount")
            metrics.add_metric(name="ObjectsRejected", unit=MetricUnit.Count, value=1)
            logger.error(
                "object rejected: it cannot be loaded and goes to the dead-letter queue after the queue's "
                "maxReceiveCount; reprocess its raw object, then redrive",
                extra={"object_key": key, "reason": str(exc), "receive_count": receives},
            )
            raise


def _fail_all(event: dict[str, Any], reason: str) -> dict[str, Any]:
    logger.error("database unavailable, the whole batch will be retried", extra={"reason": reason})
    metrics.add_metric(name="LoadFailures", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event.get("Records", [])]}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch of processed-bucket notifications -> partial batch response."""
    try:
        _target()
    except TargetUnavailable as exc:
        _drop_target()
        return _fail_all(event, str(exc))
    _cache["loaded"] = 0
    with processor(records=event.get("Records", []), handler=_record_handler, lambda_context=context):
        processor.process()
    failures = [e for e in processor.exceptions if not isinstance(e[1], ObjectRejected)]
    if failures:
        metrics.add_metric(name="LoadFailures", unit=MetricUnit.Count, value=len(failures))
    if any(isinstance(e[1], TargetUnavailable) for e in failures) or _broken():
        _drop_target()  # reconnect on the next invocation
    if _cache["loaded"]:
        try:
            _target().finish()
        except Exception as exc:  # the rows are committed; the next load refreshes again
            logger.warning("refreshing aggregates failed", extra={"reason": str(exc)})
            _drop_target()
    return processor.response()


def _broken() -> bool:
    """Whether the cached PostgreSQL connection died during the batch."""
    conn = getattr(_cache.get("target"), "conn", None)
    return bool(conn is not None and conn.closed)
