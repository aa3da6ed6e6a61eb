"""Comma-separated logs with (possibly repeated) header lines, read with pyarrow.csv.

GPU-Z, nvidia-smi and thermal CSVs share the same shape: a header line, data
rows, and sometimes the header again after a restart, with different columns.
This module finds the sections, splits each one into cells in place (``_cells``, compiled)
or, where that declines, hands it to Arrow's C++ CSV reader as a zero-copy slice, and keeps
rows with the wrong number of cells for quarantine.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gpulake.errors import InputRejected
from gpulake.formats import _cells
from gpulake.formats._cells import CellColumn, SplitSection
from gpulake.formats.base import BadRow

_BLOCK = 1 << 22  # the smallest CSV block: a row must fit in one
_MAX_BLOCK = (1 << 31) - 1  # Arrow's block size is an int32
_NONBLANK = re.compile(rb"[^\s]")


@dataclass
class Section:
    """One header and the rows under it: split in place (``cells``) or read by Arrow (``arrow``)."""

    columns: list[str]
    arrow: pa.Table | None
    start: int
    end: int
    header_line: int
    data: bytes = field(repr=False)
    rejected: list[str] = field(default_factory=list, repr=False)
    #: Set when repeated header lines sit among the rows (they are not rows).
    header_text: str | None = None
    cells: SplitSection | None = field(default=None, repr=False)

    @property
    def num_rows(self) -> int:
        return self.arrow.num_rows if self.arrow is not None else len(self.cells.bounds)

    @functools.cached_property
    def table(self) -> pa.Table:
        """Every cell as (untrimmed) text, as Arrow's CSV reader gives it."""
        if self.arrow is not None:
            return self.arrow
        return pa.table({name: col.strings() for name, col in zip(self.columns, self._cell_columns())})

    def named_columns(self) -> dict[str, pa.Array | CellColumn]:
        """The named columns (the trailing empty one left out): in place when split, else Arrow's."""
        if self.arrow is not None:
            return table_columns(self.arrow)
        return {name: col for name, col in zip(self.columns, self._cell_columns()) if name}

    def _cell_columns(self) -> list[CellColumn]:
        return [CellColumn(self.cells, i) for i in range(len(self.columns))]

    def _lines(self) -> Iterator[tuple[int, str, bool]]:
        """(1-based line number, text, rejected?) of every row line, header repeats skipped."""
        rejected = iter(self.rejected)
        pending = next(rejected, None)
        for offset, line in enumerate(self.data[self.start : self.end].split(b"\n")):
            if line in (b"", b"\r"):
                continue
            text = line.decode("utf-8", "replace").rstrip("\r")
            if text == pending:
                pending = next(rejected, None)
                yield self.header_line + 1 + offset, text, True
            elif self.header_text is None or text.split(",", 1)[0].strip() != self.header_text:
                yield self.header_line + 1 + offset, text, False

    def row_lines(self) -> list[tuple[int, str]]:
        """(1-based line number, raw text) of each row of ``table``; only for bad rows."""
        return [(number, text) for number, text, rejected in self._lines() if not rejected]

    def rejected_lines(self) -> list[tuple[int, str]]:
        """(line number, raw text) of the rows the CSV reader refused (wrong cell count)."""
        return [(number, text) for number, text, rejected in self._lines() if rejected]


def table_columns(table: pa.Table) -> dict[str, pa.Array]:
    """A section's named columns (the trailing empty one left out), each one array.

    The reader gives one chunk per column (one block per section), taken as it is:
    ``combine_chunks`` would copy even a single chunk.
    """
    return {
        name: col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
        for name, col in zip(table.column_names, table.columns)
        if name
    }


def dedupe(names: list[str]) -> list[str]:
    """Make header names unique (``X``, ``X #2``...) so no column is silently lost."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name} #{count}")
    return out


def split_header(line: bytes) -> list[str]:
    """Header cells, trimmed; a trailing empty cell (GPU-Z's `` ,``) is kept as ``""``."""
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    return [cell.strip() for cell in text.split(",")]


def _header_spans(data: bytes, first_cell: str) -> Iterator[tuple[int, int]]:
    """(start, end) byte offsets of every header line (end excludes the newline).

    A header line is ``first_cell ,...`` after optional blanks. The search looks for the
    literal cell (a fast substring scan) and then checks that only blanks precede it on its
    line: a ``^``-anchored multiline regex would be tried at every byte (0.13 s per 4 MB).
    """
    pattern = re.compile(re.escape(first_cell.encode()) + rb"[ \t]*,[^\n]*")
    for match in pattern.finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        if not data[start : match.start()].strip(b" \t"):
            yield start, match.end()


def read_sections(data: bytes, first_cell: str, bad_rows: list[BadRow], source: str) -> list[Section]:
    """Split ``data`` (UTF-8) at header lines starting with ``first_cell`` and read each part.

    A header repeated unchanged (a logger appending one call per line) does not
    start a new section: those lines are read as rows and dropped in one
    vectorised step. Rows whose cell count differs from their header go to ``bad_rows``.
    """
    spans = list(_header_spans(data, first_cell))
    sections = []
    line_at = _LineCounter(data)
    if spans:
        _quarantine_preamble(data[: spans[0][0]], bad_rows)
    i = 0
    while i < len(spans):
        h_start, h_end = spans[i]
        header = data[h_start:h_end].rstrip(b"\r")
        j = i + 1
        while j < len(spans) and data[spans[j][0] : spans[j][1]].rstrip(b"\r") == header:
            j += 1
        start = h_end + 1 if data[h_end : h_end + 1] == b"\n" else h_end
        end = spans[j][0] if j < len(spans) else len(data)
        names = dedupe(split_header(header))
        section = _read(data, start, end, names, line_at(h_start), j - i > 1, source)
        if section.rejected:
            _quarantine_rejected(section, bad_rows)
        sections.append(section)
        i = j
    return sections


def _read(
    data: bytes, start: int, end: int, names: list[str], header_line: int, repeated: bool, source: str
) -> Section:
    rejected: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        rejected.append(row.text)
        return "skip"

    if not _NONBLANK.search(data, start, end):
        empty = pa.table({name: pa.array([], pa.string()) for name in names})
        return Section(names, empty, start, end, header_line, data, rejected)
    header_text = names[0] if repeated else None
    cells = _cells.split(data, start, end, len(names), header_text)
    if cells is not None:
        rejected = [bytes(cells.text[a:b]).decode("utf-8", "replace") for a, b in cells.rejected]
        return Section(names, None, start, end, header_line, data, rejected, header_text, cells)
    view = memoryview(data)[start:end]
    try:
        table = _read_csv(view, names, on_invalid)
    except pa.ArrowInvalid as exc:
        raise InputRejected(source, f"the CSV rows after line {header_line} cannot be read ({exc})") from exc
    if repeated:
        first = pc.utf8_trim_whitespace(table.column(0))
        table = table.filter(pc.invert(pc.equal(first, names[0])))
    return Section(names, table, start, end, header_line, data, rejected, header_text)


def _read_csv(view: memoryview, names: list[str], on_invalid: object) -> pa.Table:
    """Arrow's CSV reader on one section, serially, so no Arrow thread holds a Python object.

    The invalid-row handler is a Python callable that Arrow keeps in its parse options
    (an ``OwnedRefNoGIL``, whose destructor takes the GIL). With ``use_threads=True`` the
    last reference to those options can be dropped by a pool thread after ``read_csv``
    returned; a thread that takes the GIL while the interpreter shuts down is ended by
    Python in the middle of a C++ destructor, and the process aborts with "terminate
    called without an active exception" (exit 134, reported about one run in 30 after
    short rows). Serial reading from an Arrow buffer (not a Python file object) keeps
    every Python object on the calling thread.
    """
    return pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(view)),
        # one block for the whole section: its columns come out in one chunk, so taking them is no copy
        read_options=pacsv.ReadOptions(
            column_names=names, block_size=min(max(len(view), _BLOCK), _MAX_BLOCK), use_threads=False
        ),
        parse_options=pacsv.ParseOptions(delimiter=",", invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names}, strings_can_be_null=False
        ),
    )


def _quarantine_rejected(section: Section, bad_rows: list[BadRow]) -> None:
    expected = len(section.columns)
    for number, text in section.rejected_lines():
        cells = text.count(",") + 1
        bad_rows.append(BadRow(number, f"row has {cells} cells but its header has {expected}", text))


def _quarantine_preamble(head: bytes, bad_rows: list[BadRow]) -> None:
    for number, line in enumerate(head.split(b"\n"), start=1):
        text = line.decode("utf-8", "replace").strip()
        if text:
            bad_rows.append(BadRow(number, "row before the first header line", text))


class _LineCounter:
    """Line number of a byte offset, counting newlines incrementally (offsets ascend)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._line = 1

    def __call__(self, offset: int) -> int:
        self._line += self._data.count(b"\n", self._pos, offset)
        self._pos = offset
        return self._line
