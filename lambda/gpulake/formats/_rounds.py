"""GPUs of an nvidia-smi log without ``index``, ``uuid`` or ``pci.bus_id``: by position in a sampling round.

``nvidia-smi --query-gpu ... -l N`` prints every GPU once per round, always in index
order, each row stamped when that GPU was queried (a few ms apart). So without an id
column the k-th row of a round is GPU k. Rounds are found from the timestamps:

- a log spanning less than ``ONE_ROUND_MS`` (or without timestamps) is one round, as
  a single ``nvidia-smi --query-gpu`` call prints;
- otherwise the GPU count is the smallest ``k`` (2..``MAX_GPUS``) for which, over at
  least ``MIN_ROUNDS`` complete rounds, every gap before a round's first row is more
  than ``GAP_RATIO`` times every gap inside a round (the last round may be cut off);
- if no ``k`` fits, the log is one GPU sampled repeatedly (``-lms`` logs are such).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

ONE_ROUND_MS = 1000
MAX_GPUS = 64
MIN_ROUNDS = 3
GAP_RATIO = 2.0


def gpus_per_round(time_ms: np.ndarray) -> int:
    """How many rows (GPUs) each sampling round has; ``len(time_ms)`` for a single round."""
    n = len(time_ms)
    if n < 2 or time_ms.max() - time_ms.min() < ONE_ROUND_MS:
        return max(n, 1)
    gaps = np.diff(time_ms)
    for k in range(2, min(MAX_GPUS, n // MIN_ROUNDS) + 1):
        starts = (np.arange(len(gaps)) % k) == k - 1  # gaps[i] precedes row i + 1
        if gaps[~starts].min() >= 0 and gaps[starts].min() > GAP_RATIO * gaps[~starts].max():
            return k
    return 1


def gpu_by_position(time_ms: pa.Array) -> pa.Array:
    """Per row, its position in its sampling round as a string (``"0"``, ``"1"``...)."""
    times = np.asarray(time_ms.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    k = gpus_per_round(times)
    return pa.array((np.arange(len(times)) % k).astype(str), pa.string())
