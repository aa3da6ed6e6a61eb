"""Caps on an object's decompressed size, so that anything accepted fits in memory.

Ingest streams the object; what it holds is what the parser builds from it. The peak is
about ``PEAK_PER_INFLATED_BYTE[format]`` times the inflated size on top of the runtime
(measured with ``scripts/measure_ingest_memory.py`` and ``make bench``; numbers in
docs/deploy.md): dcgm is parsed piece by piece and keeps one float per sample, while the
table formats join the text and hold every cell as text and then as numbers. So the cap
is derived per format from the memory available: the function's memory in Lambda
(``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``), this machine's RAM elsewhere.
``GPULAKE_MAX_INFLATED_MB`` (or the CLI's ``--max-inflated-mb``) sets one cap for every
format instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gpulake.errors import ConfigError

ENV_VAR = "GPULAKE_MAX_INFLATED_MB"
LAMBDA_MEMORY_VAR = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
MIB = 2**20
#: Resident memory of the interpreter with pyarrow and boto3 loaded, before any object (MiB).
RUNTIME_MIB = 250
#: Peak resident bytes per inflated byte while ingesting, with a margin over the measured fits
#: (dcgm 1.70 before streaming, 0.23 streamed with the compiled scanner and 0.29 with the Python one;
#: nvidia-smi 8.2; docs/deploy.md). dcgm keeps 2.2 as a margin that also covers an older layer.
PEAK_PER_INFLATED_BYTE: dict[str, float] = {"dcgm": 2.2, "gpuz": 10.0, "nvidia-smi": 10.0, "thermal-csv": 10.0}


@dataclass(frozen=True)
class SizeLimit:
    """The largest inflated size accepted: per format, and overall (while inflating, before detection)."""

    overall: int
    by_format: Mapping[str, int] = field(default_factory=dict)

    def for_format(self, name: str) -> int:
        """The cap for a detected format."""
        return self.by_format.get(name, self.overall)

    @classmethod
    def uniform(cls, limit: int) -> SizeLimit:
        """The same cap for every format."""
        return cls(limit)

    @classmethod
    def for_memory(cls, memory_mib: int) -> SizeLimit:
        """Caps whose peak fits in ``memory_mib`` (at least 1 MiB each)."""
        usable = max(0, memory_mib - RUNTIME_MIB) * MIB
        by_format = {name: max(MIB, int(usable / factor)) for name, factor in PEAK_PER_INFLATED_BYTE.items()}
        return cls(max(by_format.values()), by_format)


def _machine_memory_mib() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MIB


def size_limit(environ: Mapping[str, str] | None = None, override_mib: int | None = None) -> SizeLimit:
    """An explicit cap, else ``GPULAKE_MAX_INFLATED_MB``, else from Lambda memory, else from this machine's RAM."""
    env = os.environ if environ is None else environ
    if override_mib is not None:
        return SizeLimit.uniform(_positive(override_mib, "--max-inflated-mb") * MIB)
    raw = env.get(ENV_VAR, "")
    if raw:
        try:
            return SizeLimit.uniform(_positive(int(raw), ENV_VAR) * MIB)
        except ValueError:
            raise ConfigError(f"{ENV_VAR}={raw!r} is not a whole number of MiB") from None
    memory = env.get(LAMBDA_MEMORY_VAR, "")
    return SizeLimit.for_memory(int(memory) if memory.isdigit() else _machine_memory_mib())


def _positive(value: int, name: str) -> int:
    if value <= 0:
        raise ConfigError(f"{name} must be a positive number of MiB, not {value}")
    return value
