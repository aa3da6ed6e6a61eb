"""Exception families of the loaders (all are :class:`gpulake.errors.GpulakeError`)."""

from __future__ import annotations

from gpulake.errors import GpulakeError


class TargetRejected(GpulakeError):
    """The database refused us (bad credentials, unknown database/bucket); retrying will not help."""


class ObjectRejected(TargetRejected):
    """The database refused one object's data (a character or value it cannot hold); the others still load."""


class TargetUnavailable(GpulakeError):
    """The database could not be reached or kept failing after retries; run sync again later."""


class SourceUnavailable(GpulakeError):
    """The processed data (directory or bucket) cannot be listed or read."""
