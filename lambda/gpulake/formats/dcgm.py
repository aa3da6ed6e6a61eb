"""dcgm-exporter ``/metrics`` scrapes (Prometheus text), 1.x to 4.x.

The per-line work is done by ``_expo_scan`` (compiled when built, else the pure-Python
reference): the text before the value (``NAME{labels}``) repeats identically in every
scrape, so this module parses its labels once per distinct text (``resolve``) and the
scanner caches the answer. Samples of one GPU at one time fold into one canonical row.

Sample time, in order: the sample's own timestamp (ms), the latest
``# gpulake-scrape <epoch_ms>`` marker written by the gpulake collector, else
the object's time. DCGM "blank" sentinels (exactly the values in ``BLANK_SENTINELS``,
e.g. 9223372036854775794) and NaN become null; a value outside its column's physical
range (``schema.PHYSICAL_RANGE``, finite for ``extra``) puts the sample line in quarantine.
The rule is one table, ``_expo_scan.VALUE_RULES``, which both scanners read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from gpulake import schema
from gpulake.context import SourceContext
from gpulake.formats import _expo_scan
from gpulake.formats import dcgm_fields as f
from gpulake.formats._expo_scan import BLANK_MIN, BLANK_SENTINELS, MARKER, ScanFunction, Scanned, is_blank
from gpulake.formats.base import BadRow, Format, ParseResult

_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*$")
_SNIFF = re.compile(r"^(?:# (?:HELP|TYPE) )?(?:DCGM_|dcgm_)|^# gpulake-scrape ", re.M)
_UNESCAPE = re.compile(r"\\(.)")
#: Labels folded into identity columns or ``extra`` keys rather than kept in ``labels``.
_NOT_ROW_LABELS = frozenset(
    {*f.NODE_LABELS, *f.GPU_LABELS, *f.UUID_LABELS, *f.MODEL_LABELS, f.MIG_INSTANCE_LABEL, *f.SERIES_LABELS}
)
#: Column slot of each canonical field in a row (``throttle_reasons`` last).
_SLOTS = {name: i for i, name in enumerate((*schema.CANONICAL_COLUMNS, "throttle_reasons"))}
#: Physical range per slot (``_SLOTS`` order), ``throttle_reasons`` last.
_SLOT_RANGES = [*(schema.PHYSICAL_RANGE[c] for c in schema.CANONICAL_COLUMNS), schema.THROTTLE_RANGE]
#: Rows per batch of a large object (ADR 0007): a slice costs its ``extra`` map (~40 keys of text per row at
#: 40 fields); below 2048 the 1 GB peak stops dropping (``scripts/bench_ingest.py`` files; table in the ADR).
ROWS_PER_SLICE = 2048
#: Text per window of a large object (ADR 0008): a window ends before the first valid scrape marker past it.
#: A collector upload (~2-5 MB per node and 5 minutes) is one window; 1 GB at 64 MiB peaks as 100 MB does.
WINDOW_BYTES = 64 << 20
__all__ = ["BLANK_MIN", "BLANK_SENTINELS", "MARKER", "BadSeries", "DcgmFormat", "is_blank", "parse_labels"]


class BadSeries(ValueError):
    """A series whose labels cannot be read or attributed to a GPU."""


@dataclass
class _Group:
    """One GPU (or MIG instance) on one node: a row's identity."""

    node: str
    gpu: str
    uuid: str | None
    model: str | None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Series:
    group: int
    slot: int  # canonical slot, or -1 for ``extra``
    key: str  # ``extra`` key (metric name plus any series label)
    scale: float
    low: float  # physical range of the (scaled) value; outside it the line is quarantined
    high: float


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_labels(text: str) -> dict[str, str]:
    """``a="1", b="x\\"y"`` -> ``{'a': '1', 'b': 'x"y'}``; raises ``BadSeries`` on junk."""
    labels: dict[str, str] = {}
    pos, end = 0, len(text)
    while pos < end:
        match = _LABEL.match(text, pos)
        if not match:
            if text[pos:].strip(" ,"):
                raise BadSeries(f"cannot read labels at {text[pos : pos + 40]!r}")
            break
        labels[match.group(1)] = _unescape(match.group(2))
        pos = match.end()
    return labels


def _first(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = labels.get(name)
        if value:
            return value
    return None


class _Scrape:
    """The series of one object: groups (GPUs), ``extra`` keys; turns scanner output into a batch."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.groups: list[_Group] = []
        self.group_ids: dict[tuple[str, str], int] = {}
        self.keys: list[str] = []
        self.key_ids: dict[str, int] = {}
        #: label text -> (labels, group) or why it is unusable: the ~40 metrics of a GPU share one
        self.label_sets: dict[str, tuple[dict[str, str], int] | str] = {}

    def resolve_head(self, head: bytes) -> tuple[int, int, int, float, float, float] | str:
        """The scanner's ``resolve``: ``(group, slot, extra key, scale, low, high)`` or why the series is unusable."""
        try:
            series = self.resolve(_text(head))
        except BadSeries as exc:
            return str(exc)
        key = self.key_ids.get(series.key)
        if key is None:
            key = self.key_ids[series.key] = len(self.keys)
            self.keys.append(series.key)
        return series.group, series.slot, key, series.scale, series.low, series.high

    def resolve(self, head: str) -> _Series:
        brace = head.find("{")
        name = head[:brace] if brace >= 0 else head
        if not _NAME.match(name):
            raise BadSeries(f"{name[:80]!r} is not a metric name")
        text = head[brace + 1 : -1] if brace >= 0 else ""
        found = self.label_sets.get(text)
        if found is None:
            try:
                found = self._label_set(text)
            except BadSeries as exc:
                found = str(exc)
            self.label_sets[text] = found
        if found.__class__ is str:
            raise BadSeries(found)
        labels, gid = found
        column, scale = f.BY_NAME.get(name, ("", 1.0))
        qualifiers = [f'{k}="{labels[k]}"' for k in f.SERIES_LABELS if labels.get(k)]
        key = f"{name}{{{','.join(qualifiers)}}}" if qualifiers else name
        slot = _SLOTS[column] if column else -1
        low, high = _SLOT_RANGES[slot] if slot >= 0 else schema.FINITE_RANGE
        return _Series(gid, slot, key, scale, low, high)

    def _label_set(self, text: str) -> tuple[dict[str, str], int]:
        """The labels of a series and the group (GPU) they name; the group gains its row labels."""
        labels = parse_labels(text)
        gpu = _first(labels, f.GPU_LABELS)
        uuid = _first(labels, f.UUID_LABELS)
        if gpu is None and uuid is None:
            raise BadSeries("series has no gpu or UUID label, so it belongs to no GPU")
        gpu = gpu if gpu is not None else uuid
        instance = labels.get(f.MIG_INSTANCE_LABEL)
        if instance:
            gpu = f"{gpu}/{instance}"
        node = _first(labels, f.NODE_LABELS) or self.ctx.node
        gid = self.group_ids.get((node, gpu))
        if gid is None:
            gid = len(self.groups)
            self.group_ids[(node, gpu)] = gid
            self.groups.append(_Group(node, gpu, uuid, _first(labels, f.MODEL_LABELS)))
        group = self.groups[gid]
        for key, value in labels.items():
            if value and key not in _NOT_ROW_LABELS:
                group.labels.setdefault(key, value)
        return labels, gid

    def rows(self, scanned: Scanned) -> tuple[np.ndarray, _Rows]:
        """The scanned rows, and the order they go into the table: as ingest's stable sort (node, GPU, time on
        the stored, cleaned names) would leave them.

        Two GPUs whose names are the same once cleaned (control characters) interleave by time, each
        time's rows in group order: the order a stable sort gives rows laid out GPU after GPU."""
        cleaned = [(schema.clean_name(g.node), schema.clean_name(g.gpu)) for g in self.groups]
        by_name = sorted(range(len(cleaned)), key=cleaned.__getitem__)
        rank = np.empty(len(cleaned), dtype=np.int64)
        rank[by_name] = np.arange(len(cleaned))
        name_rank = np.empty(len(cleaned), dtype=np.int64)  # equal for equal cleaned names
        name_rank[by_name] = np.cumsum([i > 0 and cleaned[g] != cleaned[by_name[i - 1]] for i, g in enumerate(by_name)])
        group = scanned.row_group
        order = np.lexsort((rank[group], scanned.row_time, name_rank[group]))  # stable: then in scan order
        extra = {self.keys[key]: column for key, column in scanned.extra.items()}
        return order, _Rows(scanned.row_time, group, scanned.values, extra)

    def slices(self, order: np.ndarray, rows: _Rows, size: int) -> Iterator[pa.RecordBatch]:
        """The rows as canonical batches of at most ``size`` rows, in table ``order``, each built when asked for
        (gathered from the scan's columns: no copy of all rows in table order)."""
        for start in range(0, len(order), size):
            yield self.batch(rows.take(order[start : start + size]))

    def batch(self, rows: _Rows) -> pa.RecordBatch:
        """The canonical batch of the rows: what is per GPU (identity, labels) is built once per GPU and taken."""
        group_index = pa.array(rows.group)

        def per_row(values: list[str | None]) -> pa.Array:
            return pa.array(values, pa.string()).take(group_index)

        slots = dict(zip(_SLOTS, rows.values))
        throttle = slots.pop("throttle_reasons")
        label_keys = sorted({k for g in self.groups for k in g.labels})
        labels = schema.string_map(len(self.groups), {k: [g.labels.get(k) for g in self.groups] for k in label_keys})
        return schema.assemble(
            len(rows.time),
            time_ms=rows.time,
            identity={
                "node": per_row([g.node for g in self.groups]),
                "gpu": per_row([g.gpu for g in self.groups]),
                "gpu_uuid": per_row([g.uuid for g in self.groups]),
                "gpu_model": per_row([g.model for g in self.groups]),
                "source": DcgmFormat.name,
            },
            canonical=slots,
            throttle_reasons=pa.array(np.nan_to_num(throttle).astype(np.int64), pa.int64(), mask=np.isnan(throttle)),
            extra=schema.numeric_map(len(rows.time), rows.extra),
            labels=labels.take(group_index),
            source_object=self.ctx.key,
        )


class _Rows(NamedTuple):
    """Scanned rows: time, GPU (group), canonical values (slots x rows), ``extra`` (per key, NaN: none)."""

    time: np.ndarray
    group: np.ndarray
    values: np.ndarray
    extra: dict[str, np.ndarray]

    def take(self, index: np.ndarray) -> _Rows:
        """The rows at ``index``, in that order."""
        extra = {key: column[index] for key, column in self.extra.items()}
        return _Rows(self.time[index], self.group[index], self.values[:, index], extra)


class DcgmFormat(Format):
    name = "dcgm"

    def __init__(self, scan: ScanFunction | None = None, rows_per_slice: int = ROWS_PER_SLICE) -> None:
        #: The exposition scanner; the compiled one when built (``_expo_scan.scan``).
        self.scan = scan or _expo_scan.scan
        #: The most rows of one batch (ADR 0007): a large object is built and written a slice at a time.
        self.rows_per_slice = rows_per_slice

    def sniff(self, head: str) -> bool:
        return bool(_SNIFF.search(head))

    def parse_text(self, text: bytes, ctx: SourceContext) -> ParseResult:
        result = self.parse_chunks([text], ctx)
        result.batches = list(result.slices or ())  # a caller holding the whole text gets every batch
        result.slices = None
        return result

    def parse_chunks(self, chunks: Iterable[bytes], ctx: SourceContext) -> ParseResult:
        """Scan the pieces as they come (only the scanner's buffers, one float per sample, are kept); the
        batches come as ``slices``, built when asked for."""
        return self._window(_Scrape(ctx), chunks, 0)[0]

    def parse_windows(self, chunks: Iterable[bytes], ctx: SourceContext) -> Iterator[ParseResult]:
        """Windows of whole scrapes (ADR 0008), each scanned once the one before is handed over."""
        scrape, lines = _Scrape(ctx), 0
        for window in _Windows(chunks, WINDOW_BYTES):
            result, scanned = self._window(scrape, window, lines)
            lines += scanned
            yield result

    def _window(self, scrape: _Scrape, chunks: Iterable[bytes], lines_before: int) -> tuple[ParseResult, int]:
        """A window's rows and bad rows (their line numbers counted from the object's start); its lines."""
        scanned = self.scan(chunks, scrape.resolve_head, slots=len(_SLOTS), now=scrape.ctx.object_time_ms)
        result = ParseResult(bad_rows=[BadRow(line + lines_before, *bad) for line, *bad in scanned.bad])
        if len(scanned.row_time):
            result.slices = scrape.slices(*scrape.rows(scanned), self.rows_per_slice)
        return result, scanned.lines


class _Windows:
    """Text pieces cut into windows of at least ``size`` bytes, each ending before a scrape marker with a valid
    time (so a row, one GPU at one time, is whole in one window and starts at its marker's time)."""

    def __init__(self, chunks: Iterable[bytes | memoryview], size: int) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._next: bytes | memoryview | None = None
        self._ended = False

    def __iter__(self) -> Iterator[Iterator[bytes | memoryview]]:
        while not self._ended:
            yield self._window()  # read to its end before the next is asked for

    def _window(self) -> Iterator[bytes | memoryview]:
        size = 0
        while True:
            if self._next is not None:
                chunk, self._next = self._next, None
            else:
                chunk = next(self._chunks, None)
                if chunk is None:
                    self._ended = True
                    return
            # the piece that fills the window is searched (a copy of it alone) from where the window is full
            at = _marker_at(bytes(chunk), self._size - size) if size + len(chunk) > self._size else -1
            if at >= 0:
                self._next = chunk[at:]
                if at:
                    yield chunk[:at]
                return
            yield chunk
            size += len(chunk)


def _marker_at(chunk: bytes, start: int) -> int:
    """Where the first line from ``start`` on that is a scrape marker with a valid time starts, or -1."""
    first = chunk.startswith(MARKER) and start <= 0
    at = 0 if first else _line_after(chunk.find(b"\n" + MARKER, max(start - 1, 0)))
    while at >= 0:
        end = chunk.find(b"\n", at)
        if chunk[at + len(MARKER) : end if end >= 0 else len(chunk)].strip().isdigit():
            return at
        at = _line_after(chunk.find(b"\n" + MARKER, at))
    return -1


def _line_after(newline: int) -> int:
    return newline + 1 if newline >= 0 else -1


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
