"""Lambda entry point ``gpulake.handlers.sweeper.handler``: resolve alert episodes (every 5 minutes).

Closes open episodes not extended for ``GPULAKE_RESOLVE_FACTOR`` x their node's
upload interval, writes each to ``episodes/date=<start date>/<episode_id>.json``
in the processed bucket, and publishes every node group whose batch is due
(``GPULAKE_GROUP_INTERVAL_S``): the resolutions and the changes that waited, one
message per node. It wires DynamoDB, S3 and SNS around :func:`gpulake.alerts.lifecycle.sweep`.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from gpulake import settings as settings_mod
from gpulake.alerts import grouping, notify
from gpulake.alerts.lifecycle import sweep
from gpulake.alerts.state import DynamoEpisodeStore
from gpulake.errors import ConfigError
from gpulake.output.episodes import write_episode
from gpulake.output.sink import S3Sink

logger = Logger(service="gpulake-sweeper")
metrics = Metrics(namespace="gpulake", service="sweeper")
_clients: dict[str, Any] = {}


def _client(name: str) -> Any:
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def run(now_ms: int | None = None) -> dict[str, int]:
    """One sweep; ``now_ms`` for tests (default: the wall clock)."""
    settings = settings_mod.from_env()
    if not settings.episodes_table:
        raise ConfigError("GPULAKE_EPISODES_TABLE is not set: the sweeper needs the episodes table")
    store = DynamoEpisodeStore(_client("dynamodb"), settings.episodes_table)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    swept = sweep(store, now, settings.lifecycle)
    sink = S3Sink(_client("s3"), settings.processed_bucket, settings.processed_prefix)
    for episode in swept.closed:
        write_episode(sink, episode)
    messages = notify.messages(swept.notifications)
    if settings.alerts_topic_arn:
        notify.publish(_client("sns"), settings.alerts_topic_arn, messages)
    grouping.confirm(store, swept.claims)  # not reached when SNS fails: claimed again after the lease
    closed = len(swept.closed)
    metrics.add_metric(name="EpisodesClosed", unit=MetricUnit.Count, value=closed)
    metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=len(messages))
    logger.info("sweep", extra={"closed": closed, "messages": len(messages), "reads": store.reads})
    return {"closed": closed, "messages": len(messages)}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge scheduled event (its content is not used)."""
    return run()
