"""One raw key, one set of processed outputs: the ingest stage that replaces a key's earlier version.

Output names derive from the raw key alone (``layout.object_name``), and a manifest
(``manifests/<name>.json``) records what the last processed version of the key was
and which outputs it wrote. With it, ingest can:

- skip a delivery whose bytes and settings are those already processed (a collector
  retry, an S3 notification delivered twice): no new outputs, no new alerts;
- skip a delivery older than the one processed (S3 events of one key may arrive out
  of order; their ``sequencer`` orders them);
- retire the outputs of the earlier version that the new one does not rewrite (a day
  it no longer covers): each is replaced by an empty object of its kind, so Athena,
  ``alerts`` and ``sync`` (which replaces a changed object's rows) all drop its rows
  without anything being deleted.

See ``docs/adr/0004-one-output-set-per-raw-key.md``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from gpulake.identity import Span
from gpulake.output import layout
from gpulake.output.parquet import to_parquet_bytes
from gpulake.schema import empty_metrics

if TYPE_CHECKING:
    from gpulake.output.sink import Sink


@dataclass(frozen=True)
class Manifest:
    """What the last processed version of one raw key was, and what it wrote."""

    source_object: str
    #: sha256 of the raw bytes and of every setting that shapes the outputs (see :func:`fingerprint`).
    fingerprint: str
    #: ETag and version id (S3) or content hash (local files), for people.
    version: str
    #: The S3 event ``sequencer`` of that version, when the delivery had one.
    sequencer: str | None
    outputs: list[str]
    format: str | None = None
    rows: int = 0
    bad_rows: int = 0
    #: Its alerts, and how many of them critical: a redelivery reports them without reading the alerts back.
    alert_count: int = 0
    critical_alerts: int = 0
    rejected: str | None = None
    spans: list[Span] = field(default_factory=list)

    def to_json(self) -> bytes:
        """Deterministic bytes (sorted keys), so re-processing the same input rewrites the same manifest."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Manifest:
        record = json.loads(body)
        record["spans"] = [Span(**span) for span in record.get("spans", [])]
        return cls(**record)


@cache
def code_version() -> str:
    """sha256 of the ``gpulake`` package's source: a deployed parser fix makes every object worth processing again."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(content: str, settings: dict[str, object]) -> str:
    """Identity of one processing: the raw bytes' hash, the settings (zone, node, format, alert limits) and the code.

    The same bytes with another ``tz`` metadata, or after a new gpulake release, must be
    processed again; the same bytes with the same settings and code need not be.
    """
    digest = hashlib.sha256(content.encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(code_version().encode())
    return digest.hexdigest()


def sequencer_key(sequencer: str) -> str:
    """A sort key for S3 event sequencers of one object key: AWS compares them right-padded with zeros."""
    return sequencer.upper().ljust(64, "0")


def load(sink: Sink, name: str) -> Manifest | None:
    """The manifest of the raw key whose outputs are called ``name``, or None before its first processing."""
    body = sink.get(layout.manifest_key(name))
    return Manifest.from_json(body) if body else None


def superseded(previous: Manifest | None, sequencer: str | None) -> bool:
    """Whether this delivery is older than the one already processed (out-of-order S3 events)."""
    if previous is None or previous.sequencer is None or sequencer is None:
        return False
    return sequencer_key(sequencer) < sequencer_key(previous.sequencer)


def retire(sink: Sink, previous: Manifest | None, written: list[str]) -> None:
    """Empty every output of the previous version that this version did not rewrite."""
    if previous is None:
        return
    for key in sorted(set(previous.outputs) - set(written)):
        if key.endswith(".parquet"):
            sink.put(key, to_parquet_bytes(empty_metrics()), "application/vnd.apache.parquet")
        else:
            sink.put(key, b"", "application/x-ndjson")


def record(sink: Sink, name: str, manifest: Manifest) -> None:
    """Write the manifest last: a crash before it means the next delivery processes the key again."""
    sink.put(layout.manifest_key(name), manifest.to_json(), "application/json")
