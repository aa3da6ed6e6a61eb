"""The cap on an object's decompressed size, so that anything accepted fits in memory.

Ingest holds the inflated object and what the parser builds from it; the peak is
about ``PEAK_PER_INFLATED_BYTE`` times the inflated size on top of the runtime
(measured with ``scripts/measure_ingest_memory.py``, see docs/deploy.md). In Lambda
the cap follows from the function's memory; elsewhere it is a fixed default.
Either way ``GPULAKE_MAX_INFLATED_MB`` (or the CLI's ``--max-inflated-mb``) overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gpulake.errors import ConfigError

ENV_VAR = "GPULAKE_MAX_INFLATED_MB"
LAMBDA_MEMORY_VAR = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
#: Resident memory of the interpreter with pyarrow and boto3 loaded, before any object (MiB).
RUNTIME_MIB = 250
#: Peak resident bytes per inflated byte while parsing (the worst format, rounded up).
PEAK_PER_INFLATED_BYTE = 3.0
#: Default cap outside Lambda (the CLI): a 2 GiB log needs about 6 GiB of memory.
DEFAULT_MIB = 2048
MIB = 2**20


def limit_for_memory(memory_mib: int) -> int:
    """The largest inflated size (bytes) whose parse fits in ``memory_mib`` of memory."""
    return max(MIB, int((memory_mib - RUNTIME_MIB) * MIB / PEAK_PER_INFLATED_BYTE))


def max_inflated_bytes(environ: Mapping[str, str] | None = None, override_mib: int | None = None) -> int:
    """The cap in bytes: an explicit value, else ``GPULAKE_MAX_INFLATED_MB``, else from Lambda memory, else default."""
    env = os.environ if environ is None else environ
    if override_mib is not None:
        return _positive(override_mib, "--max-inflated-mb") * MIB
    raw = env.get(ENV_VAR, "")
    if raw:
        try:
            return _positive(int(raw), ENV_VAR) * MIB
        except ValueError:
            raise ConfigError(f"{ENV_VAR}={raw!r} is not a whole number of MiB") from None
    memory = env.get(LAMBDA_MEMORY_VAR, "")
    if memory.isdigit():
        return limit_for_memory(int(memory))
    return DEFAULT_MIB * MIB


def _positive(value: int, name: str) -> int:
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number of MiB, not {value}")
    return value
