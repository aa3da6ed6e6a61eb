"""The interface every database target implements (a tiny ABC, like Powertools' providers)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from loaders.source import ProcessedObject


class Target(ABC):
    """A database that keeps a ledger of the objects it holds and loads one object atomically or idempotently."""

    name: str

    @abstractmethod
    def loaded(self) -> dict[str, str]:
        """``{object key: version}`` of everything loaded so far (the ledger)."""

    @abstractmethod
    def load(self, obj: ProcessedObject, data: bytes) -> int:
        """Load one object (replacing rows of an earlier version of it) and record it; return rows written."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """Work after a sync that loaded something (refresh aggregates)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
