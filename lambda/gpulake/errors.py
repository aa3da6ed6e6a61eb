"""Exception families of gpulake.

Every error a user can meet is a subclass of :class:`GpulakeError` and carries a
message that says what went wrong *and* what to do about it.
"""

from __future__ import annotations


class GpulakeError(Exception):
    """Base of every error gpulake raises on purpose."""


class InputRejected(GpulakeError):
    """A whole object cannot be read as telemetry (retrying will not help)."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        self.source = source
        self.problem = problem
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


class ConfigError(GpulakeError):
    """A setting (CLI flag, environment variable, metadata) is invalid."""


class TransientError(GpulakeError):
    """A dependency (S3, SNS) failed in a way that a retry may fix."""
