"""Prometheus exposition text to sample buffers: the scanner behind the dcgm parser.

Two implementations with one signature, :func:`scan`:

- :func:`scan_python`, the reference, here: a flat per-line Python loop;
- :func:`scan_compiled`, the C extension ``_expo_scan_c`` (CPython limited API,
  ``lambda/gpulake/formats/_expo_scan_c.c``), built by ``setup.py`` when a compiler is there.

:data:`scan` is the compiled one when it imported, else the reference; both must give
identical :class:`Scanned` results (``tests/formats/test_expo_scan.py``). See
``docs/adr/0006-compiled-exposition-scanner.md``.

What the scanner does per line: skip blank lines and comments (reading
``# gpulake-scrape <epoch_ms>`` markers), split ``NAME{labels}`` from the value and the
optional timestamp, map the ``NAME{labels}`` text to a series through a cache (the caller's
``resolve`` runs once per distinct text), apply the value rule (:data:`VALUE_RULES`: NaN and
DCGM blanks are null, a value outside the series' physical range puts the line in quarantine)
and fold samples of one (time, GPU) into one row. Lines that cannot be used come back as
``(line number, reason, raw text)``.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import numpy as np

from gpulake.formats._values import MAX_TIME_MS, MIN_TIME_MS, impossible

MARKER = b"# gpulake-scrape "

# --- The value rule: the ONE place both scanners take it from ---------------------------
#: DCGM's "no value" sentinels (dcgm_structs.h): DCGM_{INT32,INT64,FP64}_BLANK and their
#: +1 NOT_FOUND, +2 NOT_SUPPORTED, +3 NOT_PERMISSIONED. Only these exact values are blanks;
#: any other large number is a reading (and then subject to the physical range).
BLANK_BASES = (0x7FFFFFF0, 0x7FFFFFFFFFFFFFF0, 2**47)
BLANK_SENTINELS = frozenset(base + k for base in BLANK_BASES for k in range(4))
#: Smallest sentinel as a float: a cheap pre-check before the exact test in the hot loop.
BLANK_MIN = float(min(BLANK_SENTINELS))


def is_blank(token: bytes) -> bool:
    """Whether a sample's value text is exactly a DCGM blank sentinel, not a reading.

    Compared as the exact decimal the exporter printed (``9223372036854775794`` or
    ``140737488355329.000000``): as floats, every int64 sentinel rounds to 2**63 and
    could not be told from a genuine value nearby.
    """
    try:
        value = Decimal(token.decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        return False
    return value.is_finite() and value == value.to_integral_value() and int(value) in BLANK_SENTINELS


class ValueRules(NamedTuple):
    """The value rule as data, handed to the compiled scanner when it is created.

    A sample value ``v`` (``float(token)``): NaN -> null; ``v >= blank_min`` and
    ``is_blank(token)`` -> null (the C scanner matches plain decimals against
    ``blank_sentinels`` itself and asks ``is_blank`` about any other spelling); otherwise
    ``v * scale`` outside the series' ``(low, high)`` (from ``resolve``) -> quarantine with
    the reason ``impossible(v * scale, low, high)``.
    """

    blank_sentinels: tuple[int, ...]
    blank_min: float
    is_blank: Callable[[bytes], bool]
    impossible: Callable[[float, float, float], str]


VALUE_RULES = ValueRules(tuple(sorted(BLANK_SENTINELS)), BLANK_MIN, is_blank, impossible)

# --- Messages of quarantined lines ----------------------------------------------------------
BAD_MARKER = "scrape marker without an integer epoch-ms time"
BAD_NUMBER = "sample value (or timestamp) is not a number"
BAD_TIME = "timestamp outside 2000-01-01..2100-01-01"

#: Rows one object may have: row numbers are kept as int32, 4 bytes per sample (both scanners refuse
#: more with ``OverflowError``). Far above the size caps (``limits.py``): a row takes one sample
#: line of >= 20 bytes, so 2**31 rows are over 40 GB of text.
MAX_ROWS = 2**31 - 2

#: ``resolve(head)``: the series of one ``NAME{labels}`` text, as ``(group, slot, extra key,
#: scale, low, high)`` (slot -1: the value goes to the extra key; ``low..high``: the physical
#: range of the scaled value), or the reason it cannot be used.
Series = tuple[int, int, int, float, float, float]
Resolve = Callable[[bytes], "Series | str"]


def reading(token: bytes) -> float | None:
    """The null part of the value rule: ``float(token)``, or None when it is no reading."""
    value = float(token)
    if value != value or (value >= BLANK_MIN and is_blank(token)):
        return None
    return value


class Scanned(NamedTuple):
    """What a scan produces: rows (time, group) with one value column per slot, NaN = null."""

    row_time: np.ndarray  # int64, one per row, in order of first appearance
    row_group: np.ndarray  # int32
    values: np.ndarray  # float64, shape (slots, rows)
    #: per extra key with a value, its column: float64, one per row, NaN where the row has none (a null
    #: sample is none, so NaN is never a value); of a key given twice in a row the later value
    extra: dict[int, np.ndarray]
    bad: list[tuple[int, str, str]]  # (line number, reason, raw text)
    lines: int  # lines scanned (the next window's bad rows count on from here)


def _chunks(data: bytes, size: int = 1 << 22) -> Iterator[list[bytes]]:
    """Lines in pieces of ~4 MiB, so a 100 MB object never becomes one huge list."""
    start, total = 0, len(data)
    while start < total:
        cut = data.find(b"\n", min(start + size, total - 1))
        end = total if cut < 0 else cut + 1
        lines = data[start:end].split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        yield lines
        start = end


class _PyScanner:
    """The reference: state carried from one chunk of lines to the next."""

    def __init__(self, resolve: Resolve, slots: int, now: int) -> None:
        self.resolve = resolve
        self.cache: dict[bytes, Series | str] = {}
        self.now = now
        self.line = 0
        self.rows: dict[tuple[int, int], int] = {}
        self.row_time: list[int] = []
        self.row_group: list[int] = []
        self.slots: list[list[float | None]] = [[] for _ in range(slots)]
        # per extra key, a typed array of one float per row up to the key's last value so far (NaN: none),
        # not lists: a pointer and a float object per value would be ~260 MB for a 1 GB object
        self.extra: dict[int, array] = {}
        self.bad: list[tuple[int, str, str]] = []

    def new_row(self, ts: int, group: int) -> int:
        index = len(self.row_time)
        if index >= MAX_ROWS:
            raise OverflowError("too many rows in one object")
        self.rows[(ts, group)] = index
        self.row_time.append(ts)
        self.row_group.append(group)
        for slot in self.slots:
            slot.append(None)
        return index

    def feed(self, data: bytes | memoryview) -> None:
        for lines in _chunks(bytes(data)):  # no copy of bytes; a memoryview (ingest's whole lines) is copied
            self._scan(lines)

    def _scan(self, lines: list[bytes]) -> None:  # noqa: C901
        """The hot loop, kept flat: one cache look-up and one float() per sample line."""
        cache, resolve, rows, slots, bad = self.cache, self.resolve, self.rows, self.slots, self.bad
        extra = self.extra
        now, number, floor = self.now, self.line, BLANK_MIN
        for line in lines:
            number += 1
            if line[-1:] == b"\r":
                line = line[:-1]
            if not line or line[0] == 35:  # "#"
                if line.startswith(MARKER):
                    try:
                        now = int(line[len(MARKER) :])
                    except ValueError:
                        bad.append((number, BAD_MARKER, _text(line)))
                continue
            brace = line.rfind(b"}")
            if brace >= 0:
                head, rest = line[: brace + 1], line[brace + 1 :]
            else:
                head, _, rest = line.strip().partition(b" ")
            series = cache.get(head)
            if series is None:
                series = cache[head] = resolve(head)
            if series.__class__ is str:
                bad.append((number, series, _text(line)))
                continue
            parts = rest.split()
            try:
                value = float(parts[0])
                ts = int(parts[1]) if len(parts) > 1 else now
            except (ValueError, IndexError):
                bad.append((number, BAD_NUMBER, _text(line)))
                continue
            if not MIN_TIME_MS <= ts < MAX_TIME_MS:
                bad.append((number, BAD_TIME, _text(line)))
                continue
            group, slot, key, scale, low, high = series
            if value != value or (value >= floor and is_blank(parts[0])):  # NaN or a DCGM blank
                value = None
            else:
                if scale != 1.0:
                    value *= scale
                if not low <= value <= high:
                    bad.append((number, impossible(value, low, high), _text(line)))
                    continue
            index = rows.get((ts, group))
            if index is None:
                index = self.new_row(ts, group)
            if slot >= 0:
                slots[slot][index] = value
            elif value is not None:
                column = extra.get(key)
                if column is None:
                    column = extra[key] = array("d")
                if len(column) <= index:
                    column.frombytes(_NAN_BYTES * (index + 1 - len(column)))
                column[index] = value
        self.now = now
        self.line = number

    def finish(self) -> Scanned:
        n = len(self.row_time)
        values = np.array(self.slots, dtype=np.float64) if n else np.empty((len(self.slots), 0))
        return Scanned(
            np.array(self.row_time, dtype=np.int64),
            np.array(self.row_group, dtype=np.int32),
            values.reshape(len(self.slots), n),
            {key: _filled(column, n) for key, column in sorted(self.extra.items())},
            self.bad,
            self.line,
        )


#: One NaN float64, as the bytes a column of absent values is extended with.
_NAN_BYTES = array("d", [float("nan")]).tobytes()


def _filled(column: array, rows: int) -> np.ndarray:
    """A key's column extended with NaN (no value) to every row, as numpy (a view, no copy)."""
    column.frombytes(_NAN_BYTES * (rows - len(column)))
    return np.frombuffer(column, dtype=np.float64)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def scan_python(chunks: Iterable[bytes | memoryview], resolve: Resolve, *, slots: int, now: int) -> Scanned:
    """Scan exposition text (pieces that each end at a line end) with the reference loop."""
    scanner = _PyScanner(resolve, slots, now)
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.finish()


try:
    from gpulake.formats import _expo_scan_c
except ImportError:  # no compiled build here (no compiler at install time, or another platform)
    _expo_scan_c = None

#: Whether the compiled scanner is available in this interpreter.
COMPILED = _expo_scan_c is not None


def scan_compiled(chunks: Iterable[bytes | memoryview], resolve: Resolve, *, slots: int, now: int) -> Scanned:
    """Scan exposition text with the compiled scanner (``ImportError`` if it is not built)."""
    if _expo_scan_c is None:
        raise ImportError("gpulake.formats._expo_scan_c is not built; run `python setup.py build_ext --inplace`")
    scanner = _expo_scan_c.Scanner(resolve, slots, now, VALUE_RULES, MIN_TIME_MS, MAX_TIME_MS)
    for chunk in chunks:
        scanner.feed(chunk)
    lines = scanner.lines()
    row_time, row_group, values, extra, bad = scanner.finish()
    times = np.frombuffer(row_time, dtype=np.int64)  # each array a view of the buffer the scanner filled
    n = len(times)
    return Scanned(
        times,
        np.frombuffer(row_group, dtype=np.int32),
        np.ascontiguousarray(np.frombuffer(values, dtype=np.float64).reshape(n, slots).T),
        {key: np.frombuffer(column, dtype=np.float64) for key, column in extra.items()},
        bad,
        lines,
    )


#: The signature both scanners share.
ScanFunction = Callable[..., Scanned]

#: The scanner in use: compiled when built, else the reference.
scan = scan_compiled if COMPILED else scan_python
