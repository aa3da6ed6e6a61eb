"""Where processed objects come from: a local directory or an S3 bucket/prefix, same layout."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loaders.errors import SourceUnavailable

#: layout prefix -> kind of object
KINDS = {"metrics/": "metrics", "alerts/": "alerts", "episodes/": "episodes"}
SUFFIXES = {"metrics": ".parquet", "alerts": ".jsonl", "episodes": ".json"}
#: the date partition of a key (``metrics/source=dcgm/date=2026-11-02/…``, ``alerts/date=2026-11-02/…``)
DATE_PARTITION = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})/")


def partition_date(key: str) -> str | None:
    """``YYYY-MM-DD`` of the key's ``date=`` partition, None outside one."""
    match = DATE_PARTITION.search(key)
    return match.group(1) if match else None


@dataclass(frozen=True)
class ProcessedObject:
    """One object of the processed layout; ``version`` is its ETag or content MD5."""

    key: str
    version: str
    kind: str
    size: int


class Source(ABC):
    """Lists and reads a directory or a bucket prefix: the processed layout (or, for ``status``, the raw one)."""

    @abstractmethod
    def list(self) -> list[ProcessedObject]:
        """Every metrics/ and alerts/ object, sorted by key."""

    def list_since(self, day: str) -> list[ProcessedObject]:
        """The objects of :meth:`list` in date partitions ``day`` (``YYYY-MM-DD``) or later."""
        return [o for o in self.list() if (partition_date(o.key) or day) >= day]

    @abstractmethod
    def all_keys(self) -> Iterator[str]:
        """Every key below the root, whatever it holds, sorted."""

    @abstractmethod
    def read_key(self, key: str) -> bytes:
        """The bytes at ``key``."""

    def read(self, obj: ProcessedObject) -> bytes:
        """The object's bytes."""
        return self.read_key(obj.key)

    @abstractmethod
    def describe(self) -> str:
        """Where this source is, for messages."""


def kind_of(key: str) -> str | None:
    for prefix, kind in KINDS.items():
        if key.startswith(prefix) and key.endswith(SUFFIXES[kind]):
            return kind
    return None


class LocalSource(Source):
    """A directory written by ``automated_pipeline.py process`` (or a copy of the bucket)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SourceUnavailable(f"{self.root} is not a directory of processed output (metrics/, alerts/)")

    def list(self) -> list[ProcessedObject]:
        return self._hashed(self.all_keys())

    def list_since(self, day: str) -> list[ProcessedObject]:
        return self._hashed(k for k in self.all_keys() if (partition_date(k) or day) >= day)

    def _hashed(self, keys: Iterable[str]) -> list[ProcessedObject]:
        found = []
        for key in keys:
            kind = kind_of(key)
            if kind:
                data = self.read_key(key)
                found.append(ProcessedObject(key, hashlib.md5(data).hexdigest(), kind, len(data)))
        return found

    def all_keys(self) -> Iterator[str]:
        return (p.relative_to(self.root).as_posix() for p in sorted(self.root.rglob("*")) if p.is_file())

    def read_key(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def describe(self) -> str:
        return str(self.root)


class S3Source(Source):
    """``s3://bucket/prefix`` (boto3 honours ``AWS_ENDPOINT_URL`` for local endpoints)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _items(self, below: str = "", start_after: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        """(key below the prefix, listing entry) in key order, of keys under ``below`` after ``start_after``."""
        extra = {"StartAfter": self.prefix + start_after} if start_after else {}
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + below, **extra):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :], item
        except Exception as exc:
            raise SourceUnavailable(f"cannot list {self.describe()}: {exc}") from exc

    @staticmethod
    def _objects(items: Iterable[tuple[str, dict[str, Any]]]) -> list[ProcessedObject]:
        found = [
            ProcessedObject(key, item["ETag"].strip('"'), kind, item["Size"])
            for key, item in items
            if (kind := kind_of(key))
        ]
        return sorted(found, key=lambda o: o.key)

    def list(self) -> list[ProcessedObject]:
        return self._objects(self._items())

    def _partitioned_roots(self) -> list[str]:
        """The folders whose children are ``date=`` partitions: ``metrics/source=<s>/`` (one LIST), then every other
        kind's folder (``alerts/``, ``episodes/``)."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}metrics/", Delimiter="/"
            )
            sources = [p["Prefix"][len(self.prefix) :] for page in pages for p in page.get("CommonPrefixes", [])]
        except Exception as exc:
            raise SourceUnavailable(f"cannot list {self.describe()}: {exc}") from exc
        return [*sources, *(prefix for prefix in KINDS if prefix != "metrics/")]

    def list_since(self, day: str) -> list[ProcessedObject]:
        """One listing per partitioned folder, starting after its ``date=<day - 1>`` keys: LIST calls grow with the
        objects since ``day``, not with the bucket."""
        items = (item for root in self._partitioned_roots() for item in self._items(root, f"{root}date={day}"))
        return self._objects(items)  # StartAfter already skipped the partitions before ``day``

    def all_keys(self) -> Iterator[str]:
        return (key for key, _ in self._items())

    def read_key(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except Exception as exc:
            raise SourceUnavailable(f"cannot read s3://{self.bucket}/{self.prefix}{key}: {exc}") from exc

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def open_source(spec: str, s3_client: Any = None) -> Source:
    """``s3://bucket/prefix`` or a directory path."""
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[5:].partition("/")
        if not bucket:
            raise SourceUnavailable(f"{spec!r} names no bucket; use s3://<bucket>/<prefix>")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Source(s3_client, bucket, prefix)
    return LocalSource(spec)
