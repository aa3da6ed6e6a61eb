"""What ``automated_pipeline.py status`` reports: objects per prefix, quarantine, DLQ depth, syncs, newest data."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow.compute as pc

from gpulake.output.parquet import read_parquet_bytes
from loaders.source import Source


def raw_counts(tree: Source) -> dict[str, int]:
    """Raw objects per top-level prefix (the source format)."""
    return dict(sorted(Counter(key.split("/", 1)[0] for key in tree.all_keys()).items()))


def processed_counts(tree: Source) -> dict[str, Any]:
    """Objects per processed prefix, quarantined rows and rejected objects, newest sample per node."""
    counts: Counter[str] = Counter()
    quarantined_rows = rejected = 0
    newest: dict[str, int] = {}
    for key in tree.all_keys():
        top = key.split("/", 1)[0]
        if top == "manifests" or top.startswith("."):  # ingest's bookkeeping and offline state, not data
            continue
        counts[top] += 1
        if top == "quarantine":
            for line in tree.read_key(key).decode().splitlines():
                record = json.loads(line) if line.strip() else {}
                rejected += bool(record.get("rejected"))
                quarantined_rows += bool(record) and not record.get("rejected")
        elif top == "metrics" and key.endswith(".parquet"):
            table = read_parquet_bytes(tree.read_key(key), ["node", "time"])
            grouped = table.group_by("node", use_threads=False).aggregate([("time", "max")])
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
