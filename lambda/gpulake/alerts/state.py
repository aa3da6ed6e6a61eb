"""Where alert episodes live between objects: a small store interface and two stores.

An *item* is a JSON-able dict addressed by ``(pk, sk)`` with an integer ``version``.
:meth:`EpisodeStore.save` writes a group of items atomically and only if each
stored version still equals the version the caller read (0: must not exist);
otherwise it raises :class:`Conflict` and the caller re-reads and retries
(optimistic concurrency). Two handlers updating one fingerprint at once
therefore never lose an update.

- :class:`DynamoEpisodeStore`: the Lambda's table (``TransactWriteItems`` with a
  condition on ``version`` per item).
- :class:`SqliteEpisodeStore`: one file for offline ``process``, the demo and tests.

:meth:`EpisodeStore.batch` groups the reads and writes of one object: SQLite runs them
in one transaction (each save still checked against the versions read; the rows written
together, an item saved several times once), DynamoDB has nothing to group and writes each
save as it comes.

Example
-------
>>> store = SqliteEpisodeStore(":memory:")
>>> store.save([{"pk": "a", "sk": "b", "version": 0, "state": "open"}])
>>> store.load("a")[0]["version"]
1
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from gpulake.errors import GpulakeError, TransientError

T = TypeVar("T")

Item = dict[str, Any]
#: Attributes kept as top-level DynamoDB attributes (keys, filters, TTL); the rest is in ``doc``.
_TOP = ("pk", "sk", "version", "state", "node", "expires_at")
MAX_ATTEMPTS = 12
#: Partitions per prefetch query (SQLite allows 32766 parameters since 3.32, 999 before).
_PREFETCH_CHUNK = 900


class Conflict(GpulakeError):
    """Another writer changed an item since it was read; re-read and retry."""


def retry(attempt: Callable[[], T]) -> T:
    """Run ``attempt`` (read, change, conditional save) again after each :class:`Conflict`, with jitter."""
    for number in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except Conflict:
            time.sleep(random.uniform(0, 0.005 * 2**number))
    raise TransientError(f"episode store: still conflicting after {MAX_ATTEMPTS} attempts; the message is retried")


class EpisodeStore(ABC):
    """Items grouped by partition key, written with version checks."""

    #: Read and write units used so far (requests; for measurements and logs).
    reads: int = 0
    writes: int = 0

    @abstractmethod
    def load(self, pk: str) -> list[Item]:
        """Every item of partition ``pk`` (with its ``version``)."""

    @abstractmethod
    def save(self, items: list[Item]) -> None:
        """Write ``items`` atomically, each only if its stored version is ``item['version']``.

        On success each item's ``version`` is incremented in place; on a
        version mismatch nothing is written and :class:`Conflict` is raised.
        """

    @abstractmethod
    def items_in_state(self, *states: str) -> Iterator[Item]:
        """Every item whose ``state`` is one of ``states`` (the sweeper's one pass over the table)."""

    def open_items(self) -> Iterator[Item]:
        """Every item whose ``state`` is ``open`` (open episodes)."""
        return self.items_in_state("open")

    def batch(self) -> AbstractContextManager[None]:
        """Group the loads and saves of one object where the store can (default: nothing to group)."""
        return nullcontext()

    def prefetch(self, pks: list[str]) -> None:  # noqa: B027 - a hint: doing nothing is a valid answer
        """Read partitions ahead, in one request, where the store can (default: no, each is read on ``load``).

        A partition read ahead is answered from memory by its next :meth:`load` only; saves still
        check the versions, so a conflict is caught as ever.
        """


def _bump(items: list[Item]) -> None:
    for item in items:
        item["version"] = int(item["version"]) + 1


@dataclass
class _Batch:
    """What one thread's open batch knows (nobody else can write until it commits: ``BEGIN IMMEDIATE``)."""

    #: Partitions read ahead (rows of ``sk, doc, version``), each answering one :meth:`SqliteEpisodeStore.load`.
    ahead: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    #: Per partition read or written in the batch, the version of each of its items (absent: 0, none stored).
    versions: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Rows saved and not yet in the table, by ``(pk, sk)``: a later save of the item replaces its row.
    pending: dict[tuple[str, str], tuple[str, str, int, str | None, str]] = field(default_factory=dict)


class SqliteEpisodeStore(EpisodeStore):
    """A SQLite file (``BEGIN IMMEDIATE`` serializes writers; safe across threads and processes).

    Inside :meth:`batch` the store is the only writer, so it checks versions against what the batch
    read and wrote, keeps the saved rows in memory (an item saved again, like a node's group once per
    fingerprint, replaces its row) and writes them in one statement before its next read and at commit.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._shared = sqlite3.connect(":memory:", check_same_thread=False) if self.path == ":memory:" else None
        self._lock = threading.RLock()  # re-entered by load and save inside a batch
        self.reads = self.writes = 0
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS items (pk TEXT, sk TEXT, version INTEGER, state TEXT, doc TEXT,"
                " PRIMARY KEY (pk, sk))"
            )

    def _conn(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            # WAL without a sync per commit: one `process` run makes thousands of small commits, and a
            # killed process still loses none (the OS has them); only a power cut could drop the newest
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _locked(self) -> AbstractContextManager[Any]:
        """The lock of the shared in-memory connection (a file has one connection per thread)."""
        return self._lock if self._shared is not None else nullcontext()

    def _batch(self) -> _Batch | None:
        """This thread's open batch, if any."""
        return getattr(self._local, "batch", None)

    def load(self, pk: str) -> list[Item]:
        batch = self._batch()
        rows = batch.ahead.pop(pk, None) if batch is not None else None
        if rows is None:
            with self._locked():
                self._write_pending(batch)  # the query sees this batch's own saves
                query = "SELECT sk, doc, version FROM items WHERE pk = ? ORDER BY sk"
                rows = self._conn().execute(query, (pk,)).fetchall()
            self.reads += 1
        if batch is not None:
            batch.versions[pk] = {sk: version for sk, _, version in rows}
        return [{**json.loads(doc), "version": version} for _, doc, version in rows]

    def prefetch(self, pks: list[str]) -> None:
        """Inside :meth:`batch` (no other writer until it ends), read the partitions in one query per
        :data:`_PREFETCH_CHUNK`: an object's episodes in a few queries instead of one per fingerprint."""
        batch = self._batch()
        if batch is None:
            return
        wanted = sorted(set(pks) - set(batch.ahead))
        with self._locked():
            self._write_pending(batch)
            for start in range(0, len(wanted), _PREFETCH_CHUNK):
                chunk = wanted[start : start + _PREFETCH_CHUNK]
                batch.ahead.update({pk: [] for pk in chunk})
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT pk, sk, doc, version FROM items WHERE pk IN ({marks}) ORDER BY pk, sk"
                for pk, sk, doc, version in self._conn().execute(query, chunk):
                    batch.ahead[pk].append((sk, doc, version))
                self.reads += 1
        for pk in wanted:
            batch.versions[pk] = {sk: version for sk, _, version in batch.ahead[pk]}

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction for everything inside (one commit per object, not per save)."""
        with self._locked():
            if self._batch() is not None:
                yield
                return
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            batch = self._local.batch = _Batch()
            try:
                yield
                self._write_pending(batch)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._local.batch = None  # what it read and kept is stale once it ends

    def _write_pending(self, batch: _Batch | None) -> None:
        """Write the batch's saved rows to the table (its transaction still open)."""
        if batch is not None and batch.pending:
            self._conn().executemany(
                "INSERT OR REPLACE INTO items (pk, sk, version, state, doc) VALUES (?, ?, ?, ?, ?)",
                batch.pending.values(),
            )
            batch.pending.clear()

    def save(self, items: list[Item]) -> None:
        batch = self._batch()
        with self._locked():
            if batch is None:
                self._save_now(items)
            else:
                self._save_in(batch, items)
        self.writes += len(items)
        _bump(items)

    def _save_now(self, items: list[Item]) -> None:
        """Check and write ``items`` in a transaction of their own."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                row = conn.execute(
                    "SELECT version FROM items WHERE pk = ? AND sk = ?", (item["pk"], item["sk"])
                ).fetchone()
                _check(item, row[0] if row else 0)
            conn.executemany(
                "INSERT OR REPLACE INTO items (pk, sk, version, state, doc) VALUES (?, ?, ?, ?, ?)", map(_row, items)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _save_in(self, batch: _Batch, items: list[Item]) -> None:
        """Check ``items`` against the versions the batch knows and keep their rows until the next read."""
        for pk in {item["pk"] for item in items}:
            if pk not in batch.versions:  # neither read nor written in this batch yet
                query = "SELECT sk, version FROM items WHERE pk = ?"
                batch.versions[pk] = dict(self._conn().execute(query, (pk,)).fetchall())
        for item in items:
            _check(item, batch.versions[item["pk"]].get(item["sk"], 0))
        for item in items:
            row = _row(item)
            batch.pending[(item["pk"], item["sk"])] = row
            batch.versions[item["pk"]][item["sk"]] = row[2]
            batch.ahead.pop(item["pk"], None)  # read ahead before this write: no longer what is stored

    def items_in_state(self, *states: str) -> Iterator[Item]:
        marks = ", ".join("?" * len(states))
        with self._locked():
            self._write_pending(self._batch())
            rows = (
                self._conn()
                .execute(f"SELECT doc, version FROM items WHERE state IN ({marks}) ORDER BY pk, sk", states)
                .fetchall()
            )
        self.reads += 1
        for doc, version in rows:
            yield {**json.loads(doc), "version": version}


def _check(item: Item, stored: int) -> None:
    """Raise :class:`Conflict` unless ``item`` was read at the stored version (0: not stored)."""
    if stored != int(item["version"]):
        raise Conflict(f"{item['pk']}/{item['sk']} changed since it was read")


def _row(item: Item) -> tuple[str, str, int, str | None, str]:
    """The table row that stores ``item`` at its next version."""
    doc = json.dumps({k: v for k, v in item.items() if k != "version"}, sort_keys=True)
    return item["pk"], item["sk"], int(item["version"]) + 1, item.get("state"), doc


class DynamoEpisodeStore(EpisodeStore):
    """A DynamoDB table keyed ``pk`` (hash) + ``sk`` (range); TTL attribute ``expires_at``."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.reads = self.writes = 0

    @staticmethod
    def _to_item(item: Item, version: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pk": {"S": item["pk"]},
            "sk": {"S": item["sk"]},
            "version": {"N": str(version)},
            "doc": {"S": json.dumps({k: v for k, v in item.items() if k != "version"}, sort_keys=True)},
        }
        for name in ("state", "node"):
            if item.get(name) is not None:
                out[name] = {"S": str(item[name])}
        if item.get("expires_at") is not None:
            out["expires_at"] = {"N": str(int(item["expires_at"]))}
        return out

    @staticmethod
    def _from_item(raw: dict[str, Any]) -> Item:
        return {**json.loads(raw["doc"]["S"]), "version": int(Decimal(raw["version"]["N"]))}

    def load(self, pk: str) -> list[Item]:
        items, start = [], None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": pk}},
                "ConsistentRead": True,
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            try:
                page = self.client.query(**kwargs)
            except Exception as exc:
                raise TransientError(f"could not read episodes from {self.table}: {exc}") from exc
            self.reads += 1
            items += [self._from_item(r) for r in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def save(self, items: list[Item]) -> None:
        if not items:
            return
        writes = []
        for item in items:
            expected = int(item["version"])
            put: dict[str, Any] = {"TableName": self.table, "Item": self._to_item(item, expected + 1)}
            if expected == 0:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "version = :v"
                put["ExpressionAttributeValues"] = {":v": {"N": str(expected)}}
            writes.append({"Put": put})
        try:
            if len(writes) == 1:
                self.client.put_item(**writes[0]["Put"])
            else:
                self.client.transact_write_items(TransactItems=writes)
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise Conflict(f"{items[0]['pk']} changed since it was read") from exc
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
                raise Conflict(f"{items[0]['pk']} changed since it was read") from exc
            raise TransientError(f"could not write episodes to {self.table}: {exc}") from exc
        except Exception as exc:
            raise TransientError(f"could not write episodes to {self.table}: {exc}") from exc
        self.writes += len(items)
        _bump(items)

    def items_in_state(self, *states: str) -> Iterator[Item]:
        start = None
        values = {f":s{i}": {"S": state} for i, state in enumerate(states)}
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "FilterExpression": f"#s IN ({', '.join(values)})",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": values,
                # eventually consistent (half the cost): closing is a conditional write on the version
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.client.scan(**kwargs)
            self.reads += 1
            yield from (self._from_item(r) for r in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return
