"""The alert lifecycle under moto: DynamoDB episodes, SNS (an SQS subscriber counts messages), the sweeper.

A simulated 6-hour fleet uploads every 5 minutes; the simulator's ground truth
says which episodes are real. Each must appear as exactly one firing and one
resolved entry (plus repeats) in the node's grouped messages, none missed, none
extra, in at least 10x fewer messages than one per per-object alert. Two hours of
the same fleet, delivered again (three times, shuffled) or with SNS refusing, give
the in-order episodes and messages.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from gpulake.alerts.lifecycle import SEVERITY_RANK
from gpulake.timeutil import iso_to_ms
from gpulake_cli.simulate_fleet import FleetSpec, ground_truth, simulate

RAW, PROCESSED, TABLE = "gpulake-raw", "gpulake-processed", "gpulake-episodes"
UPLOAD_S = 300
SPEC = FleetSpec(nodes=2, gpus=4, minutes=360, interval_s=15, seed=5, formats=("dcgm",), upload_minutes=5)
#: Two hours of the same fleet for the tests that replay it (redelivery, refused publishes): 23 true episodes of
#: all four kinds the simulator makes (the 6-hour run has no ECC one), at a third of the objects.
SHORT = FleetSpec(nodes=2, gpus=4, minutes=120, interval_s=15, seed=5, formats=("dcgm",), upload_minutes=5)


@contextlib.contextmanager
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Buckets, the episodes table, the alerts topic with an SQS inbox, the handlers on fresh clients."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "gpulake",
        "GPULAKE_PROCESSED_BUCKET": PROCESSED,
        "GPULAKE_EPISODES_TABLE": TABLE,
        "GPULAKE_UPLOAD_INTERVAL_S": str(UPLOAD_S),
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3, sqs, sns, ddb = (boto3.client(n) for n in ("s3", "sqs", "sns", "dynamodb"))
        s3.create_bucket(Bucket=RAW)
        s3.create_bucket(Bucket=PROCESSED)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        topic = sns.create_topic(Name="gpulake-alerts")["TopicArn"]
        inbox = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        monkeypatch.setenv("GPULAKE_ALERTS_TOPIC_ARN", topic)
        from gpulake.handlers import ingest as ingest_module
        from gpulake.handlers import sweeper as sweeper_module

        ingest_module._clients.clear()
        sweeper_module._clients.clear()
        calls: Counter[str] = Counter()
        ddb_client = ingest_module._client("dynamodb")
        ddb_client.meta.events.register("before-call.dynamodb.*", lambda model, **kw: calls.update([model.name]))
        yield {
            "s3": s3,
            "sqs": sqs,
            "inbox": inbox,
            "ingest": ingest_module,
            "sweeper": sweeper_module,
            "calls": calls,
            "monkeypatch": monkeypatch,
            "ddb": ddb,
        }


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with aws_stack(monkeypatch) as made:
        yield made


def upload(stack: dict[str, Any], root: Path, path: Path, now_ms: int) -> Any:
    key = path.relative_to(root).as_posix()
    stack["s3"].upload_file(str(path), RAW, key)
    stack["monkeypatch"].setattr(stack["ingest"].time, "time", lambda: now_ms / 1000)
    return stack["ingest"].process_s3_record({"s3": {"bucket": {"name": RAW}, "object": {"key": key}}})


def inbox(stack: dict[str, Any]) -> list[dict[str, Any]]:
    """Every notification received so far (removed from the queue)."""
    out = []
    while True:
        got = (
            stack["sqs"]
            .receive_message(QueueUrl=stack["inbox"], MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            .get("Messages", [])
        )
        if not got:
            return out
        for m in got:
            envelope = json.loads(m["Body"])
            out.append(
                {
                    "subject": envelope["Subject"],
                    "attributes": envelope["MessageAttributes"],
                    **json.loads(envelope["Message"]),
                }
            )
            stack["sqs"].delete_message(QueueUrl=stack["inbox"], ReceiptHandle=m["ReceiptHandle"])


def sweep(stack: dict[str, Any], now_ms: int) -> None:
    """One scheduled sweep; a failed one is simply followed by the next (EventBridge, 5 minutes later)."""
    with contextlib.suppress(EndpointConnectionError):
        stack["sweeper"].run(now_ms)


def failing_publishes(stack: dict[str, Any], count: int) -> list[int]:
    """The next ``count`` SNS publishes fail as an unreachable endpoint does; returns how many are still to fail."""
    left = [count]

    def fail(**kwargs: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")

    for module in (stack["ingest"], stack["sweeper"]):
        module._client("sns").meta.events.register("before-call.sns.Publish", fail)
    return left


def run_fleet(stack: dict[str, Any], tmp_path: Path, order: str = "in-order", spec: FleetSpec = SPEC) -> dict[str, Any]:
    root = tmp_path / "raw"
    files = sorted(simulate(root, spec), key=lambda p: (p.name, p.parent.name))
    alerts_before = 0
    slots: dict[str, list[Path]] = {}
    for path in files:
        slots.setdefault(path.name, []).append(path)
    start_ms = int(spec.start.timestamp() * 1000)
    clock = start_ms
    for i, name in enumerate(sorted(slots)):
        clock = start_ms + (i + 1) * UPLOAD_S * 1000 + 30_000  # uploaded 30 s after the file rotates
        batch = slots[name]
        if order == "redelivered-shuffled":
            batch = random.Random(i).sample(batch * 3, len(batch) * 3)
        for path in batch:
            try:
                result = upload(stack, root, path, clock)
            except EndpointConnectionError:  # SNS unreachable: the record fails and SQS delivers it again
                result = upload(stack, root, path, clock + 60_000)
            alerts_before += sum(1 for a in result.alerts if a["severity"] in ("warning", "critical"))
        sweep(stack, clock)
    for k in range(1, 25):  # the fleet stops uploading; the sweeper keeps running every 5 minutes (2 hours)
        sweep(stack, clock + k * UPLOAD_S * 1000)
    return {"objects": len(files), "per_object_alerts": alerts_before, "messages": inbox(stack)}


def notified_once(truth: list[dict[str, Any]], messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per notified episode, its changes in message order; asserts the truth maps one to one onto them."""
    events: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        for e in m["episodes"]:
            events.setdefault(e["episode_id"], []).append(e)
    matched: dict[str, int] = Counter()
    for t in truth:
        hits = [
            eid
            for eid, evs in events.items()
            if evs[0]["node"] == t["node"]
            and evs[0]["gpu_uuid"] == t["gpu_uuid"]
            and evs[0]["kind"] == t["kind"]
            and evs[0]["metric"] == t["metric"]
            and iso_to_ms(evs[-1]["start"]) <= t["end"]
            and iso_to_ms(evs[-1]["end"]) >= t["start"]
        ]
        assert len(hits) == 1, (t, hits)
        matched[hits[0]] += 1
    assert set(matched) == set(events) and set(matched.values()) == {1}
    for evs in events.values():
        states = [e["state"] for e in evs]
        duration_h = (iso_to_ms(evs[-1]["end"]) - iso_to_ms(evs[0]["start"])) / 3_600_000
        assert states.count("firing") == 1 and states.count("resolved") == 1 and states[-1] == "resolved", states
        assert states.count("repeat") <= duration_h // 4 + 1
    return events


def test_six_hour_fleet_one_firing_and_one_resolved_per_true_episode(stack: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN a 6-hour fleet of 2 nodes x 4 GPUs uploading every 5 minutes, with the simulator's ground truth
    truth = ground_truth(SPEC, merge_within_s=2 * UPLOAD_S)
    # WHEN every upload goes through the handler and the sweeper runs every 5 minutes
    run = run_fleet(stack, tmp_path)
    messages = run["messages"]
    # THEN each message is one node's group, with filterable attributes
    for m in messages:
        assert m["attributes"]["node"]["Value"] == m["node"]
        assert m["attributes"]["severity"]["Value"] == max(
            (e["severity"] for e in m["episodes"]), key=SEVERITY_RANK.__getitem__
        )
        assert set(json.loads(m["attributes"]["state"]["Value"])) == {e["state"] for e in m["episodes"]}
        resolutions = {e["resolution"] for e in m["episodes"] if e["state"] == "resolved"}
        assert resolutions <= {"cleared", "no_data"}
        assert set(json.loads(m["attributes"].get("resolution", {}).get("Value", "[]"))) == resolutions
        assert m["subject"].startswith(("[FIRING] gpulake ", "[RESOLVED] gpulake "))
    # AND each true episode matches exactly one notified episode (one firing, one resolved), none extra
    events = notified_once(truth, messages)
    # AND at least 10x fewer messages than one per per-object warning/critical alert (the behaviour before
    # episodes); one message per node per object that changed something was 415 -> 61 here (6.8x)
    calls = stack["calls"]
    print(
        f"\n6-h fleet: {run['objects']} objects, {len(truth)} true episodes; SNS messages before "
        f"{run['per_object_alerts']}, after {len(messages)} ({run['per_object_alerts'] / len(messages):.1f}x fewer); "
        "DynamoDB per object: " + ", ".join(f"{op} {n / run['objects']:.2f}" for op, n in sorted(calls.items()))
    )
    assert len(messages) * 10 <= run["per_object_alerts"]
    # AND the sweeper wrote every closed episode to episodes/
    keys = [o["Key"] for o in stack["s3"].list_objects_v2(Bucket=PROCESSED, Prefix="episodes/").get("Contents", [])]
    assert {k.rsplit("/", 1)[1][:-5] for k in keys} >= set(events)


def episode_set(stack: dict[str, Any]) -> dict[str, tuple]:
    """Every stored episode (merged ones too) by id: span, peak, severity, samples, state, notifications, why."""
    items = [i for page in stack["ddb"].get_paginator("scan").paginate(TableName=TABLE) for i in page["Items"]]
    docs = [json.loads(i["doc"]["S"]) for i in items if i["pk"]["S"].startswith("ep#")]
    fields = ("start_ms", "end_ms", "peak", "severity", "samples", "state", "notifications", "resolution", "aliases")
    return {d["sk"]: tuple(str(d.get(f)) for f in fields) for d in docs}


def notification_set(messages: list[dict[str, Any]]) -> list[tuple]:
    """The messages as (node, their changes: state and episode id), in a stable order."""
    return sorted((m["node"], tuple(sorted((e["state"], e["episode_id"]) for e in m["episodes"]))) for m in messages)


def test_redelivered_three_times_and_shuffled_give_the_in_order_episodes_and_messages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN the fleet delivered in order, and again with every object three times, shuffled within its slot
    runs = {}
    for order in ("in-order", "redelivered-shuffled"):
        with aws_stack(monkeypatch) as stack:
            run = run_fleet(stack, tmp_path / order, order=order, spec=SHORT)
            runs[order] = (episode_set(stack), notification_set(run["messages"]))
    (ordered_episodes, ordered_messages), (shuffled_episodes, shuffled_messages) = runs.values()
    # THEN the same episodes (ids, spans, peaks, severities, samples, states) and the same messages
    assert len(ordered_episodes) >= len(ground_truth(SHORT, merge_within_s=2 * UPLOAD_S))
    assert shuffled_episodes == ordered_episodes
    assert shuffled_messages == ordered_messages


def test_a_batch_sns_refuses_is_sent_later_not_lost(stack: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN SNS unreachable for the first three publishes (the handler's record fails and is redelivered;
    # the sweeper's run fails and the next one comes 5 minutes later)
    still_failing = failing_publishes(stack, 3)
    # WHEN the 2-hour fleet goes through
    run = run_fleet(stack, tmp_path, spec=SHORT)
    assert still_failing == [0]
    # THEN the refused batches went out later: still one firing and one resolved per true episode
    notified_once(ground_truth(SHORT, merge_within_s=2 * UPLOAD_S), run["messages"])
