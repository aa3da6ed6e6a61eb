"""Lambda entry point ``gpulake.handlers.ingest.handler``: S3 notifications -> processed layout.

Accepts SQS messages carrying S3 notifications (partial batch failures: only
messages whose retry can help are reported) and direct S3 events. It wires
S3, SNS and Powertools around :func:`gpulake.ingest.ingest`; it parses nothing.
"""

from __future__ import annotations

import functools
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from gpulake import settings as settings_mod
from gpulake.alerts import grouping, notify
from gpulake.alerts.state import DynamoEpisodeStore
from gpulake.context import SourceContext, resolve_node
from gpulake.errors import ConfigError, InputRejected
from gpulake.ingest import IngestResult, Lifecycle, ingest, reject
from gpulake.output.sink import S3Sink
from gpulake.s3io import read_object
from gpulake.timeutil import check_zone

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = Logger(service="gpulake-ingest")
metrics = Metrics(namespace="gpulake", service="ingest")
PUBLISHED_SEVERITIES = ("warning", "critical")
_clients: dict[str, Any] = {}


def _client(name: str) -> Any:
    """One boto3 client per service, made on first use: boto3 (0.2-0.3 s) is not imported at cold start."""
    if name not in _clients:
        import boto3

        _clients[name] = boto3.client(name)
    return _clients[name]


def _s3_records(notification: dict[str, Any]) -> list[dict[str, Any]]:
    """S3 records of a notification; ``s3:TestEvent`` (sent on setup) has none."""
    if notification.get("Event") == "s3:TestEvent":
        logger.info("ignoring s3:TestEvent")
        return []
    return [r for r in notification.get("Records", []) if r.get("eventSource") == "aws:s3" or "s3" in r]


def process_s3_record(record: dict[str, Any]) -> IngestResult | None:
    """Ingest one S3 record; raises only for failures a retry may fix."""
    settings = settings_mod.from_env()
    sink = S3Sink(_client("s3"), settings.processed_bucket, settings.processed_prefix)
    bucket = record["s3"]["bucket"]["name"]
    key = unquote_plus(record["s3"]["object"]["key"])
    sequencer = record["s3"]["object"].get("sequencer")
    logger.append_keys(object_key=key, bucket=bucket)
    try:
        obj = read_object(_client("s3"), bucket, key, settings.max_inflated.overall)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied"):
            logger.warning("object unavailable, not retrying", extra={"error": str(exc)})
            return None
        raise
    except InputRejected as exc:
        result = reject(exc, f"s3://{bucket}/{key}", sink, version="unreadable", sequencer=sequencer)
        _report(result)
        return result
    tz = obj.metadata.get("tz") or settings.source_tz
    try:
        tz = check_zone(tz)
    except ConfigError:
        logger.warning("bad tz metadata, using default", extra={"tz": tz})
        tz = settings.source_tz
    ctx = SourceContext(
        key=f"s3://{bucket}/{key}",
        object_time_ms=obj.last_modified_ms,
        tz=tz,
        node=resolve_node(key, obj.metadata.get("node")),
    )
    lifecycle = _lifecycle(settings)
    result = ingest(
        obj.open,
        ctx,
        sink,
        version=obj.version,
        max_inflated=settings.max_inflated,
        format_name=obj.metadata.get("format") or obj.metadata.get("source") or None,
        alert_config=settings.alert_config,
        sequencer=sequencer,
        lifecycle=lifecycle,
    )
    _report(result)
    if lifecycle is not None:
        if settings.alerts_topic_arn:
            publish_grouped(settings.alerts_topic_arn, notify.messages(result.notifications))
        grouping.confirm(lifecycle.store, result.claims)  # not reached when SNS fails: claimed again later
    elif result.alerts_changed and settings.alerts_topic_arn:
        _publish(settings.alerts_topic_arn, result)
    return result


def _lifecycle(settings: settings_mod.Settings) -> Lifecycle | None:
    if not settings.episodes_table:
        return None
    store = DynamoEpisodeStore(_client("dynamodb"), settings.episodes_table)
    return Lifecycle(store, settings.lifecycle, now_ms=int(time.time() * 1000))


def publish_grouped(topic_arn: str, messages: list[dict[str, Any]]) -> None:
    """One SNS message per node group (gpulake.alerts.notify)."""
    notify.publish(_client("sns"), topic_arn, messages)
    metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=len(messages))


def _report(result: IngestResult) -> None:
    if result.unchanged:  # a retry or a late event: its rows and alerts were counted when first processed
        logger.info("object unchanged, nothing written", extra={"keys": result.keys})
        return
    metrics.add_metric(name="RowsWritten", unit=MetricUnit.Count, value=result.rows)
    metrics.add_metric(name="RowsQuarantined", unit=MetricUnit.Count, value=result.bad_rows)
    metrics.add_metric(name="AlertsRaised", unit=MetricUnit.Count, value=result.alert_count)
    metrics.add_metric(name="CriticalAlerts", unit=MetricUnit.Count, value=result.critical_alerts)
    metrics.add_metric(name="ObjectsRejected", unit=MetricUnit.Count, value=1 if result.rejected else 0)
    metrics.add_metric(name="ObjectsTruncated", unit=MetricUnit.Count, value=1 if result.truncated else 0)
    if result.rejected:
        logger.error("object rejected", extra={"reason": result.rejected})
    elif result.truncated:
        logger.error("object truncated, complete lines landed", extra={"reason": result.truncated, "rows": result.rows})
    else:
        logger.info(
            "object ingested",
            extra={
                "format": result.format,
                "rows": result.rows,
                "bad_rows": result.bad_rows,
                "alerts": result.alert_count,
                "keys": result.keys,
            },
        )


def _publish(topic_arn: str, result: IngestResult) -> None:
    for alert in result.read_alerts():  # one day's alerts held at a time
        if alert["severity"] not in PUBLISHED_SEVERITIES:
            continue
        _client("sns").publish(
            TopicArn=topic_arn,
            Subject=f"gpulake {alert['severity']}: {alert['kind']} on {alert['node']}"[:100],
            Message=json.dumps(alert, sort_keys=True),
            MessageAttributes={
                "severity": {"DataType": "String", "StringValue": str(alert["severity"])},
                "kind": {"DataType": "String", "StringValue": str(alert["kind"])},
            },
        )


@functools.cache
def _sqs_batch() -> BatchProcessor:
    """The SQS batch processor, made on the first SQS event (not imported at cold start)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS)


def _sqs_record(record: SQSRecord) -> None:
    for s3_record in _s3_records(json.loads(record.body)):
        process_s3_record(s3_record)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch (partial failures) or a direct S3 event.

    The settings (the rules file among them) are checked first: a bad configuration fails the
    invocation with its one line (Errors alarm, messages retried), not each record on its own.
    """
    settings_mod.from_env()
    records = event.get("Records", [])
    if records and records[0].get("eventSource") == "aws:sqs":
        from aws_lambda_powertools.utilities.batch import process_partial_response

        return process_partial_response(
            event=event, record_handler=_sqs_record, processor=_sqs_batch(), context=context
        )
    results = [process_s3_record(r) for r in _s3_records(event)]
    return {"processed": sum(1 for r in results if r is not None)}
