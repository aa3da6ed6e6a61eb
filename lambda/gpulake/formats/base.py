"""The one interface every input format implements: bytes in, Arrow out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import pyarrow as pa

from gpulake.context import SourceContext

#: Raw text kept per quarantined row; longer lines are cut and flagged.
MAX_RAW_CHARS = 4096


@dataclass(frozen=True)
class BadRow:
    """One input row that could not be used, with the reason and its raw text."""

    line: int
    reason: str
    raw: str

    def to_record(self, source_object: str) -> dict[str, object]:
        raw = self.raw
        truncated = len(raw) > MAX_RAW_CHARS
        return {
            "source_object": source_object,
            "line": self.line,
            "reason": self.reason,
            "raw": raw[:MAX_RAW_CHARS],
            "raw_truncated": truncated,
        }


@dataclass
class ParseResult:
    """What a parser returns: canonical metric batches and quarantined rows."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)


class Format(ABC):
    """A telemetry format: recognise it from its first bytes, then parse it.

    Subclasses are stateless; register an instance in ``gpulake.formats``.
    """

    #: The ``source`` value written to the canonical ``metrics`` table.
    name: str

    @abstractmethod
    def sniff(self, head: str) -> bool:
        """Whether ``head`` (the first few KiB, decoded) looks like this format."""

    @abstractmethod
    def parse(self, data: bytes, ctx: SourceContext) -> ParseResult:
        """Parse a whole (decompressed) object; raise ``InputRejected`` if impossible."""
