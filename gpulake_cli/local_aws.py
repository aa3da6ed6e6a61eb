"""A local stand-in for the deployed stack: moto's server on 127.0.0.1 plus the ingest "Lambda".

:class:`LocalAws` starts ``ThreadedMotoServer`` on a free port and points boto3 (and
the ``aws`` CLI) at it through ``AWS_ENDPOINT_URL``; :meth:`LocalAws.create_stack`
creates what ``terraform/`` creates (raw and processed buckets with versioning, the
ingest queue with its dead-letter queue, the raw bucket's notification, the alerts
topic); :class:`IngestRunner` plays the SQS event source mapping: it receives
batches, calls the real handler (its log lines and EMF metrics, which Lambda would send
to CloudWatch, go to ``log``) and deletes what the handler did not report as failed;
:func:`sweep_until_quiet` plays the sweeper's 5-minute schedule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import boto3
import urllib3
from moto.server import ThreadedMotoServer

from loaders.local_postgres import free_port

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@dataclass(frozen=True)
class Stack:
    raw_bucket: str
    processed_bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    topic_arn: str
    #: The alert episodes table (terraform/episodes.tf) and a queue subscribed to the topic (counts notifications).
    episodes_table: str = ""
    inbox_url: str = ""


class LocalAws:
    """moto's server on 127.0.0.1:<free port>; ``env`` is what a client needs to reach it."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._saved: dict[str, str | None] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return CREDENTIALS | {"AWS_ENDPOINT_URL": self.endpoint}

    def start(self) -> LocalAws:
        """Start the server and point this process's boto3 at it (restored by :meth:`stop`)."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
        self.server.start()
        # moto keeps its backends per process: start from an empty account even after an earlier server
        urllib3.request("POST", f"{self.endpoint}/moto-api/reset")
        for key, value in self.env.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        return self

    def stop(self) -> None:
        self.server.stop()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def create_stack(self, name: str = "gpulake") -> Stack:
        """The resources of ``terraform/`` that the data path needs, with the same wiring."""
        s3, sqs, sns = self.client("s3"), self.client("sqs"), self.client("sns")
        raw, processed = f"{name}-raw-000000000000", f"{name}-processed-000000000000"
        for bucket in (raw, processed):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        dlq_url = sqs.create_queue(QueueName=f"{name}-ingest-dlq")["QueueUrl"]
        dlq_arn = _queue_arn(sqs, dlq_url)
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
        queue_url = sqs.create_queue(
            QueueName=f"{name}-ingest", Attributes={"VisibilityTimeout": "720", "RedrivePolicy": redrive}
        )["QueueUrl"]
        queue_arn = _queue_arn(sqs, queue_url)
        s3.put_bucket_notification_configuration(
            Bucket=raw,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"Id": "gpulake-ingest", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        topic = sns.create_topic(Name=f"{name}-alerts")["TopicArn"]
        inbox_url = sqs.create_queue(QueueName=f"{name}-alerts-inbox")["QueueUrl"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(sqs, inbox_url))
        table = f"{name}-episodes"
        self.client("dynamodb").create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        return Stack(raw, processed, queue_url, queue_arn, dlq_url, topic, table, inbox_url)


@dataclass
class Inbox:
    """What a queue subscribed to the alerts topic received."""

    messages: int = 0
    #: Messages whose ``state`` attribute lists each state (``per-object``: a message without one).
    messages_with: Counter[str] = field(default_factory=Counter)
    #: Episode entries with each state, over all messages (a grouped message names several).
    episodes_with: Counter[str] = field(default_factory=Counter)


def count_messages(sqs: Any, url: str) -> Inbox:
    """Drain a queue subscribed to the alerts topic and count what it received."""
    inbox = Inbox()
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return inbox
        for message in got:
            envelope = json.loads(message["Body"])
            state = envelope.get("MessageAttributes", {}).get("state", {}).get("Value")
            inbox.messages_with.update(json.loads(state) if state else ["per-object"])
            body = json.loads(envelope["Message"])
            inbox.episodes_with.update(e["state"] for e in body.get("episodes", []))
            inbox.messages += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def sweep_until_quiet(aws: LocalAws, stack: Stack, log: TextIO | None = None, max_runs: int = 24) -> int:
    """Run the real sweeper as its 5-minute schedule would after the last upload, the clock advanced each run.

    Stops once no episode is open and no node group has changes to send (at most
    ``max_runs``, two hours); returns the number of runs.
    """
    from gpulake.alerts.grouping import PENDING
    from gpulake.alerts.state import DynamoEpisodeStore
    from gpulake.handlers import sweeper

    sweeper._clients.clear()
    store = DynamoEpisodeStore(aws.client("dynamodb"), stack.episodes_table)
    start_ms = int(time.time() * 1000)
    for run in range(1, max_runs + 1):
        with contextlib.redirect_stdout(log) if log else contextlib.nullcontext():
            sweeper.run(start_ms + run * 300_000)
        if next(store.items_in_state("open", PENDING), None) is None:
            return run
    return max_runs


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


class LambdaContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name = "gpulake-ingest"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:000000000000:function:gpulake-ingest"
    aws_request_id = "local"


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """SQS messages as the event the event source mapping hands to Lambda."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class IngestRunner:
    """Plays the event source mapping (ReportBatchItemFailures) for the real handler."""

    def __init__(self, aws: LocalAws, stack: Stack, batch_size: int = 10, log: TextIO | None = None) -> None:
        self.log = log
        self.sqs = aws.client("sqs")
        self.stack = stack
        self.batch_size = batch_size
        os.environ["GPULAKE_PROCESSED_BUCKET"] = stack.processed_bucket
        os.environ["GPULAKE_ALERTS_TOPIC_ARN"] = stack.topic_arn
        if stack.episodes_table:
            os.environ["GPULAKE_EPISODES_TABLE"] = stack.episodes_table
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        from gpulake.handlers import ingest

        ingest._clients.clear()
        self.handler = ingest.handler

    def run_once(self, wait_s: int = 1) -> int:
        """One poll and invocation; returns the number of messages handled."""
        messages = self.sqs.receive_message(
            QueueUrl=self.stack.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=wait_s
        ).get("Messages", [])
        if not messages:
            return 0
        with contextlib.redirect_stdout(self.log) if self.log else contextlib.nullcontext():
            response = self.handler(sqs_event(messages, self.stack.queue_arn), LambdaContext())
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.stack.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def drain(self, idle_polls: int = 2, timeout_s: float = 300) -> int:
        """Handle messages until the queue stays empty for ``idle_polls`` polls; returns messages handled."""
        handled, idle, deadline = 0, 0, time.monotonic() + timeout_s
        while idle < idle_polls and time.monotonic() < deadline:
            count = self.run_once()
            handled += count
            idle = 0 if count else idle + 1
        return handled
