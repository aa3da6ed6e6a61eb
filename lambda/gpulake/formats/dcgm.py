"""dcgm-exporter ``/metrics`` scrapes (Prometheus text), 1.x to 4.x.

The hot loop does one dictionary look-up per sample: the text before the value
(``NAME{labels}``) repeats identically in every scrape, so its labels are parsed
once and cached. Samples of one GPU at one time fold into one canonical row.

Sample time, in order: the sample's own timestamp (ms), the latest
``# gpulake-scrape <epoch_ms>`` marker written by the gpulake collector, else
the object's time. DCGM "blank" sentinels (exactly the values in ``BLANK_SENTINELS``,
e.g. 9223372036854775794) and NaN become null; a value outside its column's physical
range (``schema.PHYSICAL_RANGE``, finite for ``extra``) puts the sample line in quarantine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import pyarrow as pa

from gpulake import schema
from gpulake.context import SourceContext
from gpulake.decode import to_utf8
from gpulake.formats import dcgm_fields as f
from gpulake.formats._values import MAX_TIME_MS, MIN_TIME_MS, impossible
from gpulake.formats.base import BadRow, Format, ParseResult

MARKER = b"# gpulake-scrape "
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
#: DCGM's "no value" sentinels (dcgm_structs.h): DCGM_{INT32,INT64,FP64}_BLANK and their
#: +1 NOT_FOUND, +2 NOT_SUPPORTED, +3 NOT_PERMISSIONED. Only these exact values are blanks;
#: any other large number is a reading (and then subject to the physical range).
BLANK_BASES = (0x7FFFFFF0, 0x7FFFFFFFFFFFFFF0, 2**47)
BLANK_SENTINELS = frozenset(base + k for base in BLANK_BASES for k in range(4))
#: Smallest sentinel as a float: a cheap pre-check before the exact test in the hot loop.
BLANK_MIN = float(min(BLANK_SENTINELS))
#: Physical range per slot (``_SLOTS`` order), ``throttle_reasons`` last.
_SLOT_RANGES = [*(schema.PHYSICAL_RANGE[c] for c in schema.CANONICAL_COLUMNS), schema.THROTTLE_RANGE]


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
    """Accumulates rows while lines stream past; one instance per object."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.series: dict[str, _Series | str] = {}
        self.groups: list[_Group] = []
        self.group_ids: dict[tuple[str, str], int] = {}
        self.rows: dict[tuple[int, int], int] = {}
        self.row_time: list[int] = []
        self.row_group: list[int] = []
        self.slots: list[list[float | None]] = [[] for _ in _SLOTS]
        self.extra: list[dict[str, float]] = []

    def resolve(self, head: str) -> _Series:
        brace = head.find("{")
        name = head[:brace] if brace >= 0 else head
        if not _NAME.match(name):
            raise BadSeries(f"{name[:80]!r} is not a metric name")
        labels = parse_labels(head[brace + 1 : -1]) if brace >= 0 else {}
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
        column, scale = f.BY_NAME.get(name, ("", 1.0))
        qualifiers = [f'{k}="{labels[k]}"' for k in f.SERIES_LABELS if labels.get(k)]
        key = f"{name}{{{','.join(qualifiers)}}}" if qualifiers else name
        slot = _SLOTS[column] if column else -1
        low, high = _SLOT_RANGES[slot] if slot >= 0 else schema.FINITE_RANGE
        return _Series(gid, slot, key, scale, low, high)

    def row(self, ts: int, group: int) -> int:
        key = (ts, group)
        index = self.rows.get(key)
        if index is None:
            index = len(self.row_time)
            self.rows[key] = index
            self.row_time.append(ts)
            self.row_group.append(group)
            for slot in self.slots:
                slot.append(None)
            self.extra.append({})
        return index

    def batch(self) -> pa.RecordBatch:
        n = len(self.row_time)
        groups = [self.groups[g] for g in self.row_group]
        slots = dict(zip(_SLOTS, self.slots))
        throttle = slots.pop("throttle_reasons")
        extra_keys = sorted({k for row in self.extra for k in row})
        label_keys = sorted({k for g in self.groups for k in g.labels})
        return schema.assemble(
            n,
            time_ms=self.row_time,
            identity={
                "node": [g.node for g in groups],
                "gpu": [g.gpu for g in groups],
                "gpu_uuid": [g.uuid for g in groups],
                "gpu_model": [g.model for g in groups],
                "source": DcgmFormat.name,
            },
            canonical=slots,
            throttle_reasons=[None if v is None else int(v) for v in throttle],
            extra=schema.numeric_map(n, {k: [row.get(k) for row in self.extra] for k in extra_keys}),
            labels=schema.string_map(n, {k: [g.labels.get(k) for g in groups] for k in label_keys}),
            source_object=self.ctx.key,
        )


class DcgmFormat(Format):
    name = "dcgm"

    def sniff(self, head: str) -> bool:
        return bool(_SNIFF.search(head))

    def parse(self, data: bytes, ctx: SourceContext) -> ParseResult:
        result = ParseResult()
        scrape = _Scrape(ctx)
        state = _ScanState(now=ctx.object_time_ms)
        for chunk in _chunks(to_utf8(data)):
            _scan(chunk, scrape, state, result.bad_rows)
        if scrape.row_time:
            result.batches.append(scrape.batch())
        return result


@dataclass
class _ScanState:
    """What carries over from one chunk of lines to the next."""

    now: int
    line: int = 0


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


def _scan(lines: list[bytes], scrape: _Scrape, state: _ScanState, bad: list[BadRow]) -> None:  # noqa: C901
    """The hot loop, kept flat: one cache look-up and one float() per sample line."""
    cache = scrape.series
    slots = scrape.slots
    extra = scrape.extra
    rows = scrape.rows
    new_row = scrape.row
    now = state.now
    number = state.line
    for line in lines:
        number += 1
        if line[-1:] == b"\r":
            line = line[:-1]
        if not line or line[0] == 35:  # "#"
            if line.startswith(MARKER):
                try:
                    now = int(line[len(MARKER) :])
                except ValueError:
                    bad.append(BadRow(number, "scrape marker without an integer epoch-ms time", _text(line)))
            continue
        brace = line.rfind(b"}")
        if brace >= 0:
            head, rest = line[: brace + 1], line[brace + 1 :]
        else:
            head, _, rest = line.strip().partition(b" ")
        series = cache.get(head)
        if series is None:
            try:
                series = scrape.resolve(_text(head))
            except BadSeries as exc:
                series = str(exc)
            cache[head] = series
        if series.__class__ is str:
            bad.append(BadRow(number, series, _text(line)))
            continue
        parts = rest.split()
        try:
            value = float(parts[0])
            ts = int(parts[1]) if len(parts) > 1 else now
        except (ValueError, IndexError):
            bad.append(BadRow(number, "sample value (or timestamp) is not a number", _text(line)))
            continue
        if not MIN_TIME_MS <= ts < MAX_TIME_MS:
            bad.append(BadRow(number, "timestamp outside 2000-01-01..2100-01-01", _text(line)))
            continue
        if value != value or (value >= BLANK_MIN and is_blank(parts[0])):  # NaN or a DCGM blank
            value = None
        else:
            if series.scale != 1.0:
                value *= series.scale
            if not series.low <= value <= series.high:
                bad.append(BadRow(number, impossible(value, series.low, series.high), _text(line)))
                continue
        index = rows.get((ts, series.group))
        if index is None:
            index = new_row(ts, series.group)
        if series.slot >= 0:
            slots[series.slot][index] = value
        elif value is not None:
            extra[index][series.key] = value
    state.now = now
    state.line = number


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
