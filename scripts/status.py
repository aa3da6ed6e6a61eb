"""What ``automated_pipeline.py status`` reports: objects per prefix, quarantine, DLQ depth, syncs, newest data."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq


class Tree:
    """A bucket prefix or a directory, listed as (key, size) and read by key."""

    def __init__(self, spec: str, s3: Any = None) -> None:
        self.spec = spec
        if spec.startswith("s3://"):
            self.bucket, _, prefix = spec[5:].partition("/")
            self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
            self.s3 = s3
            self.root = None
        else:
            self.root = Path(spec)

    def list_keys(self) -> Iterator[str]:
        if self.root is not None:
            if self.root.is_dir():
                yield from (p.relative_to(self.root).as_posix() for p in sorted(self.root.rglob("*")) if p.is_file())
            return
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            yield from (item["Key"][len(self.prefix) :] for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        if self.root is not None:
            return (self.root / key).read_bytes()
        return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()


def raw_counts(tree: Tree) -> dict[str, int]:
    """Raw objects per top-level prefix (the source format)."""
    return dict(sorted(Counter(key.split("/", 1)[0] for key in tree.list_keys()).items()))


def processed_counts(tree: Tree) -> dict[str, Any]:
    """Objects per processed prefix, quarantined rows and rejected objects, newest sample per node."""
    counts: Counter[str] = Counter()
    quarantined_rows = rejected = 0
    newest: dict[str, int] = {}
    for key in tree.list_keys():
        top = key.split("/", 1)[0]
        counts[top] += 1
        if top == "quarantine":
            for line in tree.read(key).decode().splitlines():
                record = json.loads(line) if line.strip() else {}
                rejected += bool(record.get("rejected"))
                quarantined_rows += bool(record) and not record.get("rejected")
        elif top == "metrics" and key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(tree.read(key)), columns=["node", "time"], partitioning=None)
            grouped = table.group_by("node").aggregate([("time", "max")])
            for node, latest in zip(grouped["node"].to_pylist(), pc.cast(grouped["time_max"], "int64").to_pylist()):
                newest[node] = max(newest.get(node, latest), latest)
    return {
        "objects": dict(sorted(counts.items())),
        "quarantined_rows": quarantined_rows,
        "rejected_objects": rejected,
        "newest_ms_by_node": dict(sorted(newest.items())),
    }


def dlq_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
