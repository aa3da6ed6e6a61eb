"""The one place Parquet writer options are set.

Deterministic bytes for the same table (no wall-clock metadata), zstd, ms
timestamps (Athena and Glue read them as ``timestamp``), statistics on.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq


def to_parquet_bytes(table: pa.Table) -> bytes:
    """Serialise ``table`` to Parquet bytes with the project's fixed options."""
    sink = pa.BufferOutputStream()
    writer = pq.ParquetWriter(
        sink,
        table.schema,
        compression="zstd",
        use_dictionary=True,
        write_statistics=True,
        coerce_timestamps="ms",
        version="2.6",
    )
    try:
        writer.write_table(table, row_group_size=1_000_000)
    finally:
        writer.close()
    return sink.getvalue().to_pybytes()
