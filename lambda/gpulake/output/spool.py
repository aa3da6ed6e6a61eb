"""Output bodies written before they are put: in memory while small, in a temporary file (Lambda's ``/tmp``)
past :data:`SPOOL_BYTES`, so a large object's outputs are never whole in memory (ADR 0007, ADR 0008)."""

from __future__ import annotations

import tempfile
from typing import IO

#: An object's alerts are ~0.7 KB each (~15 MB at 1 GB of dcgm-exporter text), a hostile object's quarantine
#: can be larger, and a large object's Parquet files stay open while its windows are written.
SPOOL_BYTES = 1 << 20


def spooled() -> IO[bytes]:
    """A new body, spooled to a temporary file past :data:`SPOOL_BYTES` (removed when closed)."""
    return tempfile.SpooledTemporaryFile(SPOOL_BYTES)
