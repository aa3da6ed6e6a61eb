"""The one interface every input format implements: bytes in, Arrow out."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from gpulake.context import SourceContext
from gpulake.decode import to_utf8
from gpulake.identity import sort_rows
from gpulake.schema import METRICS_SCHEMA

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
    #: Instead of ``batches``, from a format whose objects can be large (dcgm, streamed): the rows already in
    #: table order, as batches of a bounded number of rows each built when asked for (ADR 0007).
    slices: Iterator[pa.RecordBatch] | None = None

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)

    def in_table_order(self) -> Iterator[pa.Table]:
        """The rows in table order (:data:`gpulake.identity.SORT_KEYS`), a slice at a time: the format's
        ``slices``, else all ``batches`` sorted as one table. Each is handed over, not kept here."""
        if self.slices is not None:
            slices, self.slices = self.slices, None
            yield from (pa.Table.from_batches([batch]) for batch in slices)
        elif self.batches:
            table = pa.Table.from_batches(self.batches, schema=METRICS_SCHEMA)
            self.batches.clear()
            yield sort_rows(table)


class Format(ABC):
    """A telemetry format: recognise it from its first bytes, then parse it.

    Subclasses are stateless; register an instance in ``gpulake.formats``. A format
    implements :meth:`parse_text` (UTF-8 text in, Arrow out); :meth:`parse` takes bytes in
    any encoding :func:`~gpulake.decode.to_utf8` reads, and :meth:`parse_chunks` takes the
    text in pieces, as ingest streams it: a format that can parse piece by piece overrides
    it and never holds the whole object (dcgm), the others are handed the pieces joined.
    """

    #: The ``source`` value written to the canonical ``metrics`` table.
    name: str

    @abstractmethod
    def sniff(self, head: str) -> bool:
        """Whether ``head`` (the first few KiB, decoded) looks like this format."""

    def parse(self, data: bytes, ctx: SourceContext) -> ParseResult:
        """Parse a whole (decompressed) object in any supported encoding; raise ``InputRejected`` if impossible."""
        return self.parse_text(to_utf8(data), ctx)

    @abstractmethod
    def parse_text(self, text: bytes, ctx: SourceContext) -> ParseResult:
        """Parse a whole object already decoded to UTF-8 (ingest decodes once, before detection)."""

    def parse_windows(self, chunks: Iterable[bytes], ctx: SourceContext) -> Iterator[ParseResult]:
        """The object as consecutive windows, each parsed as the upload it would have been (ADR 0008): one
        window unless the format can cut a large object without splitting a row (dcgm, at scrapes)."""
        yield self.parse_chunks(chunks, ctx)

    def parse_chunks(self, chunks: Iterable[bytes], ctx: SourceContext) -> ParseResult:
        """Parse UTF-8 text given in pieces that each end at a line end (the last may lack its newline)."""
        whole = io.BytesIO()  # each piece is copied in once and dropped; getvalue() hands the buffer over
        for chunk in chunks:
            whole.write(chunk)
        return self.parse_text(whole.getvalue(), ctx)
