"""Prometheus exposition text to sample buffers: the scanner behind the dcgm parser.

Two implementations with one signature, :func:`scan`:

- :func:`scan_python`, the reference, here: a flat per-line Python loop;
- :func:`scan_compiled`, the C extension ``_expo_scan_c`` (CPython limited API,
  ``lambda/gpulake/formats/_expo_scan_c.c``), built by ``setup.py`` when a compiler is there.

:data:`scan` is the compiled one when it imported, else the reference; both must give
identical :class:`Scanned` results (``tests/formats/test_expo_scan.py``). See
``docs/adr/0003-compiled-exposition-scanner.md``.

What the scanner does per line: skip blank lines and comments (reading
``# gpulake-scrape <epoch_ms>`` markers), split ``NAME{labels}`` from the value and the
optional timestamp, map the ``NAME{labels}`` text to a series through a cache (the caller's
``resolve`` runs once per distinct text), fold samples of one (time, GPU) into one row, and
apply the value rule (:func:`reading`). Lines that cannot be used come back as
``(line number, reason, raw text)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np

from gpulake.formats._values import MAX_TIME_MS, MIN_TIME_MS

MARKER = b"# gpulake-scrape "

# --- The value rule: the ONE place both scanners take it from ---------------------------
#: DCGM "blank"/"not supported" sentinels as inclusive ``(low, high)`` float ranges: such a
#: value is no reading and becomes null. The compiled scanner receives this table when it
#: is created, so changing the rule here changes both scanners.
BLANK_RANGES: tuple[tuple[float, float], ...] = (
    (2147483632.0, 2147483647.0),  # DCGM_INT32_BLANK 0x7ffffff0 and its family (+0..+15)
    (140737488355328.0, 140737488355343.0),  # DCGM_FP64_BLANK 2**47 (+0..+15)
    (9.2233720368547e18, math.inf),  # DCGM_INT64_BLANK 0x7ffffffffffffff0, as a float
)
#: Non-finite values (NaN, +Inf, -Inf) are no readings either: null (mirrored in C).
NON_FINITE_IS_NULL = True
_BLANK_FLOOR = min(low for low, _ in BLANK_RANGES)

# --- Messages of quarantined lines ----------------------------------------------------------
BAD_MARKER = "scrape marker without an integer epoch-ms time"
BAD_NUMBER = "sample value (or timestamp) is not a number"
BAD_TIME = "timestamp outside 2000-01-01..2100-01-01"

#: ``resolve(head)``: the series of one ``NAME{labels}`` text, as ``(group, slot, extra key,
#: scale)`` (slot -1: the value goes to the extra key), or the reason it cannot be used.
Resolve = Callable[[bytes], "tuple[int, int, int, float] | str"]


def is_blank(value: float) -> bool:
    """Whether a value is a DCGM 'blank'/'not supported' sentinel, not a reading."""
    return any(low <= value <= high for low, high in BLANK_RANGES)


def reading(value: float) -> float | None:
    """The value rule: a parsed sample value, or None when it is no reading."""
    if (value >= _BLANK_FLOOR and is_blank(value)) or (NON_FINITE_IS_NULL and not math.isfinite(value)):
        return None
    return value


class Scanned(NamedTuple):
    """What a scan produces: rows (time, group) with one value column per slot, NaN = null."""

    row_time: np.ndarray  # int64, one per row, in order of first appearance
    row_group: np.ndarray  # int32
    values: np.ndarray  # float64, shape (slots, rows)
    extra_row: np.ndarray  # int64: one entry per non-null sample of an extra key, in input order
    extra_key: np.ndarray  # int32
    extra_value: np.ndarray  # float64
    bad: list[tuple[int, str, str]]  # (line number, reason, raw text)


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
        self.cache: dict[bytes, tuple[int, int, int, float] | str] = {}
        self.now = now
        self.line = 0
        self.rows: dict[tuple[int, int], int] = {}
        self.row_time: list[int] = []
        self.row_group: list[int] = []
        self.slots: list[list[float | None]] = [[] for _ in range(slots)]
        self.extra_row: list[int] = []
        self.extra_key: list[int] = []
        self.extra_value: list[float] = []
        self.bad: list[tuple[int, str, str]] = []

    def new_row(self, ts: int, group: int) -> int:
        index = len(self.row_time)
        self.rows[(ts, group)] = index
        self.row_time.append(ts)
        self.row_group.append(group)
        for slot in self.slots:
            slot.append(None)
        return index

    def feed(self, data: bytes) -> None:
        for lines in _chunks(data):
            self._scan(lines)

    def _scan(self, lines: list[bytes]) -> None:  # noqa: C901
        """The hot loop, kept flat: one cache look-up and one float() per sample line."""
        cache, resolve, rows, slots, bad = self.cache, self.resolve, self.rows, self.slots, self.bad
        extra_row, extra_key, extra_value = self.extra_row, self.extra_key, self.extra_value
        now, number, floor = self.now, self.line, _BLANK_FLOOR
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
            group, slot, key, scale = series
            index = rows.get((ts, group))
            if index is None:
                index = self.new_row(ts, group)
            if (value >= floor and is_blank(value)) or not math.isfinite(value):
                value = None
            elif scale != 1.0:
                value *= scale
            if slot >= 0:
                slots[slot][index] = value
            elif value is not None:
                extra_row.append(index)
                extra_key.append(key)
                extra_value.append(value)
        self.now = now
        self.line = number

    def finish(self) -> Scanned:
        n = len(self.row_time)
        values = np.array(self.slots, dtype=np.float64) if n else np.empty((len(self.slots), 0))
        return Scanned(
            np.array(self.row_time, dtype=np.int64),
            np.array(self.row_group, dtype=np.int32),
            values.reshape(len(self.slots), n),
            np.array(self.extra_row, dtype=np.int64),
            np.array(self.extra_key, dtype=np.int32),
            np.array(self.extra_value, dtype=np.float64),
            self.bad,
        )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def scan_python(chunks: Iterable[bytes], resolve: Resolve, *, slots: int, now: int) -> Scanned:
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


def scan_compiled(chunks: Iterable[bytes], resolve: Resolve, *, slots: int, now: int) -> Scanned:
    """Scan exposition text with the compiled scanner (``ImportError`` if it is not built)."""
    if _expo_scan_c is None:
        raise ImportError("gpulake.formats._expo_scan_c is not built; run `python setup.py build_ext --inplace`")
    scanner = _expo_scan_c.Scanner(resolve, slots, now, BLANK_RANGES, NON_FINITE_IS_NULL, MIN_TIME_MS, MAX_TIME_MS)
    for chunk in chunks:
        scanner.feed(chunk)
    row_time, row_group, values, extra_row, extra_key, extra_value, bad = scanner.finish()
    n = len(row_time) // 8
    return Scanned(
        np.frombuffer(row_time, dtype=np.int64),
        np.frombuffer(row_group, dtype=np.int32),
        np.ascontiguousarray(np.frombuffer(values, dtype=np.float64).reshape(n, slots).T),
        np.frombuffer(extra_row, dtype=np.int64),
        np.frombuffer(extra_key, dtype=np.int32),
        np.frombuffer(extra_value, dtype=np.float64),
        bad,
    )


#: The signature both scanners share.
ScanFunction = Callable[..., Scanned]

#: The scanner in use: compiled when built, else the reference.
scan = scan_compiled if COMPILED else scan_python
