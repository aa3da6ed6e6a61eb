"""The interface every database target implements (a tiny ABC, like Powertools' providers)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from loaders.source import ProcessedObject


class Target(ABC):
    """A database that keeps a ledger of the objects it holds and loads one object atomically or idempotently.

    Loading is split so that ``sync`` can encode the next object (``prepare``: CPU
    only, no database, runs in a worker thread) while this one is being written
    (``write``: database I/O only).
    """

    name: str

    @abstractmethod
    def versions(self, keys: Iterable[str]) -> dict[str, str]:
        """``{object key: version}`` of those of ``keys`` the ledger holds (only those keys are asked for)."""

    @abstractmethod
    def high_water_mark(self) -> str | None:
        """The newest ``date=`` partition (``YYYY-MM-DD``) in the ledger, None when it holds none."""

    @abstractmethod
    def prepare(self, obj: ProcessedObject, data: bytes) -> Any:
        """Decode and encode one object for this database (raises InputRejected for unreadable data)."""

    @abstractmethod
    def write(self, obj: ProcessedObject, prepared: Any) -> int:
        """Write a prepared object (replacing rows of an earlier version of it) and record it; return rows."""

    def load(self, obj: ProcessedObject, data: bytes) -> int:
        """``prepare`` then ``write``."""
        return self.write(obj, self.prepare(obj, data))

    @abstractmethod
    def last_loaded(self) -> str | None:
        """When the newest ledger entry was written (ISO 8601, UTC), None when nothing was loaded."""

    def take_warnings(self) -> list[str]:
        """What is worth telling about the objects written since the last call; it does not stop the load.

        PostgreSQL reports rows of one raw object that replaced another's (two machines under one node name).
        """
        return []

    def behind(self) -> bool:
        """Whether work ``finish`` does is still pending from an earlier sync (one killed before it)."""
        return False

    def finish(self) -> None:  # noqa: B027 - optional hook
        """Work after a sync that loaded something, or when ``behind`` (refresh aggregates)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
