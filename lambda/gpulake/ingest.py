"""One object in, the processed layout out: the core both the Lambda and the CLI call.

``ingest`` never raises for bad data: a file no format can read (or one that
inflates past the size cap) becomes a quarantine record, bad rows become
quarantine lines, good rows still land. A cut-off gzip lands its complete lines,
records ``truncated_input`` in quarantine and reports the object as failed, so
the sender uploads it again. It raises only ``TransientError`` (the sink failed;
retrying may help).

The object is read as a stream (:data:`Opener`): hashed, inflated, decoded and handed
to the format piece by piece, so a format that parses pieces (dcgm) never holds the
whole object (see ``docs/architecture.md``, "Streaming ingest").
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from gpulake import dedupe, formats
from gpulake.alerts import AlertConfig, carryover, detect, rules
from gpulake.alerts.fold import Lifecycle, ObjectFold
from gpulake.alerts.grouping import Claim, Event
from gpulake.context import SourceContext
from gpulake.decode import Inflating, NotUtf8, Utf8Lines, too_large
from gpulake.errors import InputRejected
from gpulake.formats.base import BadRow, Format, ParseResult
from gpulake.identity import EarlierWindows, InOrder, Span, merge_spans, spans
from gpulake.kept import KeptRows
from gpulake.limits import SizeLimit, size_limit
from gpulake.output import layout
from gpulake.output.days import DailyJsonLines, DailyParquet
from gpulake.output.jsonl import JsonLines
from gpulake.output.sink import Body, Sink

#: Quarantine reason of the cut-off end of a truncated object.
TRUNCATED = "truncated_input"
#: An object's stored bytes (gzip or not) from the start, in pieces; called once more when they
#: must be read again (to hash before parsing a key seen before, or to re-read as Windows-1252).
Opener = Callable[[], Iterable[bytes]]
#: Pieces a bytes object is handed over in (as a file or an S3 body is read): 1 MiB, as fast as 4 MiB and
#: ~7 MB lower at the peak of a 120 MB object (fewer bytes in flight; ``make bench``, tests/test_streaming.py).
PIECE = 1 << 20
#: Pieces the hash may lag behind the parser (each held until hashed).
HASH_AHEAD = 2


@dataclass
class IngestResult:
    """What happened to one object (counts feed metrics, the CLI summary and tests)."""

    source_object: str
    name: str
    format: str | None = None
    rows: int = 0
    bad_rows: int = 0
    #: How many alerts the object raised, and how many of them critical (the alerts are in its alerts
    #: files: :attr:`alerts`).
    alert_count: int = 0
    critical_alerts: int = 0
    keys: list[str] = field(default_factory=list)
    #: The reason the whole object was rejected, or None.
    rejected: str | None = None
    #: Why the object ended early (its complete lines landed), or None.
    truncated: str | None = None
    #: Whether the alerts file was new or changed (False on a duplicate delivery).
    alerts_changed: bool = False
    #: Per node, GPU and source, the time range the rows cover (to find collisions across objects).
    spans: list[Span] = field(default_factory=list)
    #: Nothing was written: these bytes and settings (or a newer version of the key) were processed before.
    unchanged: bool = False
    #: Episode lifecycle changes this object made (firing, escalated, repeat), when a store is used.
    events: list[Event] = field(default_factory=list)
    #: What to send now: the batches of the object's node groups that were due (gpulake.alerts.grouping).
    notifications: list[Event] = field(default_factory=list)
    #: The claims to confirm once ``notifications`` are published (gpulake.alerts.grouping.confirm).
    claims: list[Claim] = field(default_factory=list)
    #: Where the outputs are (:attr:`alerts` reads them back from there).
    sink: Sink | None = field(default=None, repr=False, compare=False)

    @property
    def alerts(self) -> list[dict[str, object]]:
        """The object's alerts as its alerts files hold them now, day by day: an object's alerts are written
        window by window and never all held (ADR 0008)."""
        return list(self.read_alerts())

    def read_alerts(self) -> Iterator[dict[str, object]]:
        """:attr:`alerts` one at a time (one day's body held at a time)."""
        sink = self.sink
        for key in self.keys if sink is not None else ():
            if key.startswith(layout.ALERTS_PREFIX):
                for line in (sink.get(key) or b"").splitlines():
                    if line:
                        yield json.loads(line)

    @property
    def failed(self) -> str | None:
        """What the sender must fix (rejected or truncated), or None when the object landed whole."""
        return self.rejected or self.truncated


def _put_jsonl(sink: Sink, result: IngestResult, key: str, body: JsonLines) -> None:
    """Put a JSON Lines body from its spooled file (never whole in memory)."""
    with body.finished() as file:
        _put(sink, result, key, file, "application/x-ndjson")


def ingest(
    data: bytes | Opener,
    ctx: SourceContext,
    sink: Sink,
    *,
    version: str | None = None,
    format_name: str | None = None,
    alert_config: AlertConfig | None = None,
    sequencer: str | None = None,
    lifecycle: Lifecycle | None = None,
    max_inflated: SizeLimit | None = None,
) -> IngestResult:
    """Parse one object (its bytes, or an :data:`Opener` that streams them) and write its outputs.

    Metrics, alerts and quarantine go under keys derived from the object's key. A key has
    one set of outputs: a new version replaces the previous one's, the same bytes and
    settings again write nothing, and an older delivery (S3 ``sequencer``) than the one
    processed is ignored (:mod:`gpulake.dedupe`). ``version`` (ETag and
    version id; default: the content hash) is recorded in the manifest for people. With
    ``lifecycle``, each alert gains the ``episode_id`` of the stored episode it continues
    or opens, and ``result.events`` says what to notify. ``max_inflated`` caps the decompressed
    size, overall and per format (:mod:`gpulake.limits`; default: from this machine's or function's memory).
    """
    name = layout.object_name(ctx.key)
    settings = {"tz": ctx.tz, "node": ctx.node, "format": format_name, "alerts": alert_config}
    source = _Source(data if callable(data) else _pieces(data))
    previous = dedupe.load(sink, name)
    if previous and dedupe.superseded(previous, sequencer):
        return _unchanged(previous, name, sink)
    if previous and previous.fingerprint == dedupe.fingerprint(source.content(), settings):
        return _unchanged(previous, name, sink)  # a key seen before is hashed first: unchanged bytes are not parsed
    fold = ObjectFold(lifecycle, sink) if lifecycle is not None else None
    try:
        cap = max_inflated or size_limit()
        result = _utf8_or_cp1252(
            functools.partial(_windows_and_write, source, ctx, sink, name, format_name, alert_config, fold, cap)
        )
    except InputRejected as exc:  # windows folded before it still changed their episodes: they are sent
        result = _reject(exc, ctx.key, sink, name)
    if fold is not None:
        result.events = fold.events
        result.notifications, result.claims = fold.flush()
    content = source.content()  # hashed while parsing (read to the end here if parsing stopped early)
    _replace(sink, previous, result, dedupe.fingerprint(content, settings), version or content, sequencer)
    return result


class _Source:
    """An object's stored bytes, hashed (sha256) as they are read: its content version and fingerprint."""

    def __init__(self, opener: Opener) -> None:
        self.opener = opener
        self.digest: str | None = None

    def read(self) -> Iterator[bytes]:
        """The pieces from the start; a read to the end records the hash.

        Each piece is hashed on a second thread while the caller parses it (hashlib lets go of
        the GIL on large buffers): the hash is ~30% of a 100 MB dcgm object's parse time. The
        hasher may be :data:`HASH_AHEAD` pieces behind: it gets the GIL to start a piece only
        between the parser's calls, and waiting for each piece's hash before the next cost ~10%
        of the parse (``make bench``).
        """
        digest = hashlib.sha256()
        with ThreadPoolExecutor(1, thread_name_prefix="gpulake-sha256") as hasher:
            hashing: deque[Future[None]] = deque()  # one thread: the pieces go into the hash in order
            for piece in self.opener():
                if len(hashing) == HASH_AHEAD:
                    hashing.popleft().result()
                hashing.append(hasher.submit(digest.update, piece))
                yield piece
            for hashed in hashing:
                hashed.result()
        self.digest = digest.hexdigest()

    def content(self) -> str:
        """The content hash, reading the object (once more) if no read went to the end."""
        if self.digest is None:
            for _ in self.read():
                pass
        return str(self.digest)


def _pieces(data: bytes) -> Opener:
    """An opener over bytes already in memory, in pieces as a stream would give them."""
    return lambda: (data[start : start + PIECE] for start in range(0, len(data), PIECE))


def reject(exc: InputRejected, key: str, sink: Sink, *, version: str, sequencer: str | None = None) -> IngestResult:
    """Record that a whole object could not be read (one quarantine line, the reason); it replaces earlier outputs."""
    name = layout.object_name(key)
    previous = dedupe.load(sink, name)
    if previous and dedupe.superseded(previous, sequencer):
        return _unchanged(previous, name, sink)
    result = _reject(exc, key, sink, name)
    _replace(sink, previous, result, dedupe.fingerprint("", {"rejected": exc.problem}), version, sequencer)
    return result


def _replace(
    sink: Sink,
    previous: dedupe.Manifest | None,
    result: IngestResult,
    identity: str,
    version: str,
    sequencer: str | None,
) -> None:
    """Retire the previous version's outputs this one did not rewrite, then record this version."""
    dedupe.retire(sink, previous, result.keys)
    manifest = dedupe.Manifest(
        source_object=result.source_object,
        fingerprint=identity,
        version=version,
        sequencer=sequencer,
        outputs=result.keys,
        format=result.format,
        rows=result.rows,
        bad_rows=result.bad_rows,
        alert_count=result.alert_count,
        critical_alerts=result.critical_alerts,
        rejected=result.rejected,
        spans=result.spans,
    )
    dedupe.record(sink, result.name, manifest)


def _unchanged(previous: dedupe.Manifest, name: str, sink: Sink) -> IngestResult:
    """The result of the processing already done, read back from its manifest (nothing is read or written)."""
    return IngestResult(
        source_object=previous.source_object,
        name=name,
        format=previous.format,
        rows=previous.rows,
        bad_rows=previous.bad_rows,
        alert_count=previous.alert_count,
        critical_alerts=previous.critical_alerts,
        keys=list(previous.outputs),
        rejected=previous.rejected,
        spans=list(previous.spans),
        unchanged=True,
        sink=sink,
    )


def _utf8_or_cp1252(write: Callable[[str | None], IngestResult]) -> IngestResult:
    """``write`` reading the text as UTF-8, or again as Windows-1252 (GPU-Z's degree sign) when it is not
    UTF-8 throughout, as ``to_utf8`` decides."""
    try:
        return write(None)
    except NotUtf8:
        pass  # the retry runs after the handler, so the first attempt's frames (its open files) are let go
    return write("cp1252")


def _windows_and_write(
    source: _Source,
    ctx: SourceContext,
    sink: Sink,
    name: str,
    format_name: str | None,
    alert_config: AlertConfig | None,
    fold: ObjectFold | None,
    cap: SizeLimit,
    encoding: str | None,
) -> IngestResult:
    """The object window by window (one for most objects, ADR 0008), each as the upload it would have been:
    its rows cleaned and written a slice at a time (ADR 0007) into the object's per-day files, its alerts
    found, folded into the episodes and written into the object's per-day alerts bodies, then let go; the
    files are put at the end."""
    result = IngestResult(source_object=ctx.key, name=name, sink=sink)
    fmt, windows, text, limit = _parse(source, ctx, format_name, cap, encoding)
    result.format = fmt.name
    cleaned, earlier, files, alerts = InOrder(ctx.key), EarlierWindows(ctx.key), DailyParquet(), DailyJsonLines()
    carry = carryover.AcrossWindows(fold.lifecycle.store if fold is not None else None)
    bad_rows: list[BadRow] = []
    covered: list[Span] = []
    for parsed in windows:
        bad_rows += parsed.bad_rows
        kept = KeptRows(rules.reads_extra(alert_config))
        for rows in cleaned.rows(parsed.in_table_order()):
            rows = earlier.rows(rows)
            files.write(rows)
            kept.add(rows)
        table = kept.table()
        if table.num_rows:
            result.rows += table.num_rows
            covered += spans(table)
            found = _detect(table, kept, fmt.name, alert_config, carry, fold)
            result.alert_count += len(found)
            result.critical_alerts += sum(alert["severity"] == "critical" for alert in found)
            alerts.write(found)
            earlier.add(table)
        del kept, table  # before the next window is scanned
    if text.size > limit:  # the cut-off rest of a truncated object counts too
        raise too_large(ctx.key, limit)
    if text.truncated is not None:
        result.truncated = (
            f"{ctx.key}:{text.lines + 1}: {text.truncated}; the complete lines before it landed, upload the file again"
        )
        bad_rows.append(BadRow(text.lines + 1, TRUNCATED, text.rest.decode("utf-8", "replace")))
    replaced = cleaned.empty + cleaned.replaced + earlier.replaced
    result.bad_rows = len(bad_rows) + len(replaced)
    result.spans = merge_spans(covered)
    if result.rows:
        for day, body in files.close():
            _put(sink, result, layout.metrics_key(fmt.name, day, name), body, "application/vnd.apache.parquet")
        carry.record()
        _write_alerts(sink, result, name, alerts)
    if bad_rows or replaced:
        lines = itertools.chain((row.to_record(ctx.key) for row in bad_rows), replaced)
        _put_jsonl(sink, result, layout.quarantine_key(name), JsonLines(lines))
    return result


def _detect(
    table: pa.Table,
    kept: KeptRows,
    source: str,
    alert_config: AlertConfig | None,
    carry: carryover.AcrossWindows,
    fold: ObjectFold | None,
) -> list[dict[str, object]]:
    """A window's alerts, folded into the stored episodes when there is a store (one transaction where the
    store has them, SQLite)."""
    with carry.store.batch() if carry.store is not None else contextlib.nullcontext():
        alerts = detect(table, alert_config, carry.carried(carryover.ends(table, kept.extra)), kept.extra)
        if fold is not None:
            fold.apply(alerts, table, source)
    return alerts


def _parse(
    source: _Source, ctx: SourceContext, format_name: str | None, cap: SizeLimit, encoding: str | None
) -> tuple[Format, Iterator[ParseResult], Utf8Lines, int]:
    """Read, inflate, decode and detect; the windows parse as they are asked for, and the text stream says
    afterwards how it ended. Also returns the format's size cap."""
    text = Utf8Lines(Inflating(source.read(), ctx.key, cap.overall), encoding)
    chunks = iter(text)
    head: list[bytes] = []  # complete lines up to the sniffing size (and at least one with content)
    size, content = 0, False
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        content = content or formats.has_content(chunk)
        if content and size >= formats.SNIFF_BYTES:
            break
    if not content and text.truncated is not None:
        raise InputRejected(ctx.key, f"{text.truncated} and holds no complete line; upload the complete file again")
    fmt = formats.get(format_name) if format_name else formats.detect(b"".join(head), ctx.key)
    limit = cap.for_format(fmt.name)
    return fmt, fmt.parse_windows(_capped(itertools.chain(head, chunks), limit, ctx.key), ctx), text, limit


def _capped(chunks: Iterable[bytes], limit: int, source: str) -> Iterator[bytes]:
    """The text pieces, rejecting the object once they add up to more than the format's cap."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(source, limit)
        yield chunk


def _reject(exc: InputRejected, key: str, sink: Sink, name: str) -> IngestResult:
    result = IngestResult(source_object=key, name=name, rejected=str(exc))
    record = {"source_object": key, "line": exc.line, "reason": exc.problem, "rejected": True}
    _put_jsonl(sink, result, layout.quarantine_key(name), JsonLines([record]))
    return result


def _put(sink: Sink, result: IngestResult, key: str, body: Body, content_type: str) -> None:
    sink.put(key, body, content_type)
    result.keys.append(key)


def _write_alerts(sink: Sink, result: IngestResult, name: str, alerts: DailyJsonLines) -> None:
    """Put each day's alerts body; compared with the stored one by hash (neither is ever held whole), which
    tells whether the object's alerts changed."""
    for day, body in alerts.close():
        key = layout.alerts_key(day, name)
        if body.sha256() != sink.sha256(key):
            result.alerts_changed = True
        _put_jsonl(sink, result, key, body)
