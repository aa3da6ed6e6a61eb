"""DynamoEpisodeStore under moto: conditional writes on the version, conflicts, racing threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gpulake.alerts.lifecycle import fingerprint
from gpulake.alerts.state import Conflict, DynamoEpisodeStore
from tests.test_grouping import race_on_one_group
from tests.test_lifecycle import fold, part, resolutions_say_cleared_or_no_data

TABLE = "episodes"


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        # DynamoDB applies each request atomically (a conditional put checks and writes as one step);
        # moto's in-process backend does not lock, so threads could interleave inside one request.
        # One lock per request restores that; interleaving *between* requests, the race under test, stays.
        lock, call = threading.Lock(), client._make_api_call

        def atomic(operation: str, params: dict[str, Any]) -> Any:
            with lock:
                return call(operation, params)

        client._make_api_call = atomic
        yield client


def test_a_stale_write_is_a_conflict_and_writes_nothing(ddb: Any) -> None:
    store = DynamoEpisodeStore(ddb, TABLE)
    store.save([{"pk": "p", "sk": "a", "version": 0, "state": "open", "n": 1}])
    first, second = store.load("p")[0], store.load("p")[0]
    store.save([{**first, "n": 2}])
    with pytest.raises(Conflict):
        store.save([{**second, "n": 3}])
    with pytest.raises(Conflict):  # a transaction of two items fails as a whole
        store.save([{**second, "n": 4}, {"pk": "p", "sk": "b", "version": 0, "state": "open"}])
    assert [(i["sk"], i["n"], i["version"]) for i in store.load("p")] == [("a", 2, 2)]
    assert [i["sk"] for i in store.open_items()] == ["a"]


def test_racing_handlers_lose_no_extension(ddb: Any) -> None:
    store = DynamoEpisodeStore(ddb, TABLE)
    fold(store, [part("p0", 0, 4.9, samples=1)], 0, 5)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            fold(DynamoEpisodeStore(ddb, TABLE), [part(f"p{i}", 5 + i * 0.5, 6 + i * 0.5, samples=1)], 5, 10)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (ep,) = [e for e in store.load(fingerprint(part("x", 0, 0))) if e["state"] != "merged"]
    assert ep["samples"] == 7 and len(ep["parts"]) == 7 and ep["notifications"] == 1


def test_racing_handlers_and_sweepers_on_one_group_lose_nothing_and_send_once(ddb: Any) -> None:
    race_on_one_group(lambda: DynamoEpisodeStore(ddb, TABLE))


def test_resolutions_say_cleared_or_no_data(ddb: Any) -> None:
    resolutions_say_cleared_or_no_data(DynamoEpisodeStore(ddb, TABLE))
