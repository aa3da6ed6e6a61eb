"""One heap for Arrow and numpy, so memory one frees the other reuses.

pyarrow allocates from its own heap (mimalloc or jemalloc when built in), numpy from the C
heap. Ingesting a dcgm object alternates between them: numpy temporaries (the ``extra``
matrix, masks, indices) are freed just before Arrow builds the map column from them, then
Arrow's buffers are freed before numpy's detection arrays are made. With two heaps each
keeps what it freed and the other grows the process: measured on ``make bench``'s dcgm
objects, peak RSS 155 instead of 121 MB (100 MB object) and 386 instead of 319 MB (1 GB).

Arrow reads its choice, ``ARROW_DEFAULT_MEMORY_POOL``, once, when pyarrow is first imported
(https://arrow.apache.org/docs/cpp/env_vars.html), so ``gpulake/__init__`` calls
:func:`use_c_heap` before any of its modules imports pyarrow. If pyarrow was imported before
gpulake, what Python allocates still moves (``pyarrow.set_memory_pool``); Arrow's C++
internals (the Parquet writer's pages) keep the heap they started with. An explicit
``ARROW_DEFAULT_MEMORY_POOL`` in the environment is left as chosen.
"""

from __future__ import annotations

import os
import sys

#: Arrow's environment variable naming its default memory pool, and the C heap's name in it.
POOL_VARIABLE, C_HEAP = "ARROW_DEFAULT_MEMORY_POOL", "system"


def use_c_heap() -> None:
    """Make Arrow allocate from the C heap (numpy's), unless the environment chose another pool."""
    if os.environ.setdefault(POOL_VARIABLE, C_HEAP) != C_HEAP or "pyarrow" not in sys.modules:
        return
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
