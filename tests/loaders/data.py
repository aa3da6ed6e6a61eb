"""Expected values straight from the processed files, and hand-made objects for edge cases."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gpulake.output.parquet import to_parquet_bytes
from gpulake.schema import METRICS_SCHEMA, assemble, numeric_map, string_map

TRICKY_NODES = ['quo"te', "comma,and space", "equals=sign", "back\\slash", "it's", "ünïcode-节点"]


def metrics_table(root: Path) -> pa.Table:
    """Every metrics row of a processed directory, sorted by identity."""
    tables = [pq.read_table(p, partitioning=None) for p in sorted((root / "metrics").rglob("*.parquet"))]
    table = pa.concat_tables(tables).select(METRICS_SCHEMA.names)
    return table.sort_by([("node", "ascending"), ("gpu", "ascending"), ("source", "ascending"), ("time", "ascending")])


def write_metrics(root: Path, key: str, nodes: list[str], start_ms: int = 1_793_606_400_000, n: int = 3) -> pa.Table:
    """A small canonical metrics object at ``root/key``: ``n`` samples per node, GPU 0, source dcgm."""
    rows = len(nodes) * n
    batch = assemble(
        rows,
        time_ms=[start_ms + 1000 * (i % n) for i in range(rows)],
        identity={"node": [nodes[i // n] for i in range(rows)], "gpu": ["0"] * rows, "source": ["dcgm"] * rows},
        canonical={"gpu_temp_c": [50.5 + i for i in range(rows)], "power_w": [300.25] * rows},
        throttle_reasons=[4] * rows,
        extra=numeric_map(rows, {"DCGM_FI_DEV_XID_ERRORS": [float(i) for i in range(rows)]}),
        labels=string_map(rows, {"Hostname": [nodes[i // n] for i in range(rows)]}),
        source_object=f"s3://raw/{key}",
    )
    table = pa.Table.from_batches([batch])
    # node names verbatim, control characters included: what a lake written before ingest's string rule
    # (or by another writer) may hold, and what the loaders must still store or refuse object by object
    node = table.schema.get_field_index("node")
    table = table.set_column(node, "node", pa.array([nodes[i // n] for i in range(rows)], pa.string()))
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_parquet_bytes(table))
    return table
