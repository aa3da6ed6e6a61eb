"""The one place Parquet writer and reader options are set.

Deterministic bytes for the same rows (no wall-clock metadata), zstd, ms
timestamps (Athena and Glue read them as ``timestamp``), statistics on.
A file is written a row group per :meth:`ParquetFile.write`, so a large object
is never held whole (ADR 0007); one write of a table gives one row group, as before.
"""

from __future__ import annotations

from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from gpulake.output.spool import spooled

#: The most rows one write puts in one row group (a write of more gives several).
ROW_GROUP_ROWS = 1_000_000


class ParquetFile:
    """A Parquet file written a row group per :meth:`write` into a spooled body (:mod:`gpulake.output.spool`);
    each written table can be dropped."""

    def __init__(self, schema: pa.Schema) -> None:
        self._sink = spooled()  # handed over by close()
        self._writer = pq.ParquetWriter(
            self._sink,
            schema,
            compression="zstd",
            use_dictionary=True,
            write_statistics=True,
            coerce_timestamps="ms",
            version="2.6",
        )

    def write(self, table: pa.Table) -> None:
        """Append ``table``'s rows as the next row group."""
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    def close(self) -> IO[bytes]:
        """Finish the file (footer and statistics) and hand it over, at its start (the caller closes it)."""
        self._writer.close()
        self._sink.seek(0)
        return self._sink


def to_parquet_bytes(table: pa.Table) -> bytes:
    """Serialise ``table`` to Parquet bytes with the project's fixed options (one row group)."""
    file = ParquetFile(table.schema)
    file.write(table)
    with file.close() as body:
        return body.read()


def read_parquet_bytes(data: bytes, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file's rows, read on this thread from memory.

    Neither Arrow's CPU pool nor its I/O pool starts: a pool thread still alive when the
    interpreter exits aborts the process after its work is done (apache/arrow#34314), and
    a command's output is small enough that one thread reads it in milliseconds.
    """
    return pq.ParquetFile(pa.BufferReader(data)).read(columns=columns, use_threads=False)
